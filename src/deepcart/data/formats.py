"""The raw Amazon review formats `ingest` reads, and how each maps onto the canonical schema.

A :class:`Format` names the raw fields it reads (``raw_schema``, also the explicit schema handed to
the PyArrow JSON reader) and converts a table of those raw fields into the canonical columns of
:mod:`deepcart.data.schema`. Conversion is vectorised (``pyarrow.compute``); the per-record Python
code here (:func:`coerce_record`) only runs on the rare blocks that PyArrow refuses (a malformed
line, a field of an unexpected type), and it accepts exactly what the vectorised path accepts plus a
few harmless variants (a number where a string is expected, an integral float for an integer, the
Hugging Face loader's ``"None"`` prices and dict-of-lists ``images``).

Canonical mapping, by format (raw key -> canonical column):

=================  ============================================================================
amazon2023-reviews user_id, parent_asin, rating, timestamp (ms; pre-release ``sortTimestamp``),
                   title, text, helpful_vote (``helpfulVotes``), verified_purchase
                   (``verifiedPurchase``)
amazon2023-meta    parent_asin, title, main_category, store, price (number; ``"None"`` -> null),
                   average_rating, rating_number, categories, features, description,
                   image = first non-empty ``images[].large``
amazon2018-reviews reviewerID -> user_id, asin -> parent_asin, overall -> rating,
amazon2014-reviews unixReviewTime (s) -> timestamp (ms), summary -> title, reviewText -> text,
                   vote ``"1,234"`` -> helpful_vote 1234 (2014: ``helpful[0]``),
                   verified -> verified_purchase (2014: null)
amazon2018-meta    asin -> parent_asin, title, main_cat -> main_category, brand -> store,
                   price ``"$29.99"`` -> 29.99 (``""`` and ranges -> null), category -> categories,
                   feature -> features, description, image = first of imageURLHighRes, else of
                   imageURL; average_rating and rating_number null
amazon2014-meta    asin -> parent_asin, title, price, imUrl -> image, brand -> store,
                   categories[0] -> categories, categories[0][0] -> main_category,
                   description (a string) -> [description]; features null
=================  ============================================================================
"""

from __future__ import annotations

import ast
import json
import math
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deepcart.data.schema import ITEM_SCHEMA, REVIEW_SCHEMA

RATING_MIN = 1.0
RATING_MAX = 5.0
#: A timestamp below this is taken to be in seconds and multiplied by 1000 (1e11 ms is 1973).
SECONDS_LIMIT = 100_000_000_000
#: A CSV timestamp (ms, after scaling) must be below this in absolute value (float64 is exact).
TIMESTAMP_MS_LIMIT = 9.0e15
#: The shape of an Amazon item id: a B-prefixed ASIN or an ISBN-10.
ASIN_RE = re.compile(r"^(B[0-9A-Z]{9}|[0-9]{9}[0-9X])$")

_NUMBER_RE = r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$"
_PRICE_RE = re.compile(r"\d+(\.\d+)?")
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1

_STRING = pa.string()
_STRINGS = pa.list_(pa.string())


class BadRecord(Exception):
    """One record that cannot be ingested: a stable reason key and a message for the user."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


@dataclass(frozen=True)
class Check:
    """A per-row test over a converted table: ``mask`` is True where the row is bad."""

    key: str
    mask: pa.Array
    message: Callable[[int], str]


@dataclass(frozen=True)
class Converted:
    """A raw table converted to the canonical columns (rating still float64) and its checks."""

    table: pa.Table
    checks: list[Check] = field(default_factory=list)


@dataclass(frozen=True)
class Format:
    """One raw input format: what it reads and how it becomes canonical."""

    name: str
    kind: str
    raw_schema: pa.Schema
    convert: Callable[[pa.Table], Converted]
    #: canonical required column -> the raw key that feeds it (for messages)
    sources: Mapping[str, str]
    #: raw key holding the rating (its type errors are 'rating_not_a_number')
    rating_key: str | None = None
    #: lines are Python dict literals (2014 meta); always parsed line by line
    literal: bool = False


# --------------------------------------------------------------------------- arrow helpers


def _array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def column(
    table: pa.Table, name: str, type_: pa.DataType | None = None
) -> pa.Array | pa.ChunkedArray:
    """``table[name]``, or all nulls of ``type_`` when the table lacks it."""
    if name in table.column_names:
        return table[name]
    return pa.nulls(table.num_rows, type_ or _STRING)


def non_empty(arr: pa.Array) -> pa.Array:
    """Strings with '' turned into null."""
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)


def _numeric_strings(arr: pa.Array) -> pa.Array:
    """Trimmed strings, and a boolean mask of those that are plain decimal numbers."""
    trimmed = pc.utf8_trim_whitespace(arr)
    return trimmed, pc.fill_null(pc.match_substring_regex(trimmed, _NUMBER_RE), False)


def parse_numbers(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Strings -> float64 (null where not a number), and a mask of non-empty non-numbers."""
    trimmed, ok = _numeric_strings(arr)
    values = pc.cast(pc.if_else(ok, trimmed, pa.scalar(None, _STRING)), pa.float64())
    bad = pc.and_(pc.invert(ok), pc.fill_null(pc.not_equal(trimmed, ""), False))
    return values, bad


def to_int32(arr: pa.Array) -> pa.Array:
    """Integers -> int32, null where out of range."""
    if arr.type == pa.int32():
        return arr
    ok = pc.and_(pc.greater_equal(arr, -_INT32_MAX), pc.less_equal(arr, _INT32_MAX))
    return pc.cast(pc.if_else(ok, arr, pa.scalar(None, arr.type)), pa.int32())


def seconds_to_ms(arr: pa.Array) -> pa.Array:
    """Unix seconds (int64) -> milliseconds; values that would overflow become null."""
    arr = pc.cast(arr, pa.int64())
    ok = pc.less_equal(pc.abs(arr), _INT64_MAX // 1000)
    return pc.multiply(pc.if_else(ok, arr, pa.scalar(None, pa.int64())), 1000)


def auto_ms(values: pa.Array) -> pa.Array:
    """float64 timestamps -> int64 ms; values below 1e11 are seconds and are multiplied by 1000."""
    scaled = pc.if_else(pc.less(pc.abs(values), SECONDS_LIMIT), pc.multiply(values, 1000.0), values)
    ok = pc.less(pc.abs(scaled), TIMESTAMP_MS_LIMIT)  # float64 integers are exact below 2**53
    scaled = pc.if_else(ok, pc.round(scaled), pa.scalar(None, pa.float64()))
    return pc.cast(scaled, pa.int64())


def parse_prices(arr: pa.Array) -> pa.Array:
    """Price strings such as ``"$1,299.99"`` -> float64; '', ``"None"`` and ranges -> null."""
    text = pc.utf8_trim_whitespace(arr)
    text = pc.replace_substring_regex(text, r"^\$", "")
    text = pc.replace_substring(text, ",", "")
    ok = pc.fill_null(pc.match_substring_regex(text, r"^\d+(\.\d+)?$"), False)
    return pc.cast(pc.if_else(ok, text, pa.scalar(None, _STRING)), pa.float64())


def parse_price(value: Any) -> float | None:
    """The per-record twin of :func:`parse_prices` (also accepts numbers)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) and value >= 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip().removeprefix("$").replace(",", "")
    return float(text) if _PRICE_RE.fullmatch(text) else None


def parse_votes(arr: pa.Array) -> pa.Array:
    """Vote strings such as ``"1,234"`` -> int32; anything else -> null."""
    text = pc.replace_substring(pc.utf8_trim_whitespace(arr), ",", "")
    ok = pc.fill_null(pc.match_substring_regex(text, r"^\d{1,9}$"), False)
    return pc.cast(pc.if_else(ok, text, pa.scalar(None, _STRING)), pa.int32())


def first_element(lists: pa.Array | pa.ChunkedArray, *, skip_empty: bool = True) -> pa.Array:
    """Each list's first element (the first non-null, non-'' one when ``skip_empty``)."""
    lists = _array(lists)
    return _first_per_list(
        pc.list_flatten(lists), pc.list_parent_indices(lists), len(lists), skip_empty
    )


def _first_per_list(flat: pa.Array, parents: pa.Array, n: int, skip_empty: bool) -> pa.Array:
    """Given flattened list values and their list indices, the first value of each of n lists."""
    if skip_empty:
        ok = pc.is_valid(flat)
        if pa.types.is_string(flat.type):
            ok = pc.and_(ok, pc.fill_null(pc.not_equal(flat, ""), False))
        flat = flat.filter(ok)
        parents = parents.filter(ok)
    par = parents.to_numpy(zero_copy_only=False)
    idx = np.full(n, -1, dtype=np.int64)
    if len(par):
        starts = np.flatnonzero(np.r_[True, par[1:] != par[:-1]])
        idx[par[starts]] = starts
    return flat.take(pa.array(idx, mask=idx < 0))


def wrap_strings(arr: pa.Array) -> pa.Array:
    """A string column -> list<string> of one element; '' and null -> null."""
    arr = _array(non_empty(arr))
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    offsets = np.concatenate([[0], np.cumsum(valid)]).astype(np.int32)
    values = arr.filter(pa.array(valid))
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(~valid))


def _table(names: Iterable[str], arrays: Iterable[pa.Array | pa.ChunkedArray]) -> pa.Table:
    chunked = [a if isinstance(a, pa.ChunkedArray) else pa.chunked_array([a]) for a in arrays]
    return pa.Table.from_arrays(chunked, names=list(names))


# --------------------------------------------------------------------------- conversions


def _reviews_2023(t: pa.Table) -> Converted:
    ts = pc.coalesce(column(t, "timestamp", pa.int64()), column(t, "sortTimestamp", pa.int64()))
    # The format's timestamps are ms; one below 1e11 (1973 in ms) is seconds, as in a CSV.
    ts = pc.if_else(pc.less(pc.abs(ts), SECONDS_LIMIT), pc.multiply(ts, 1000), ts)
    votes = pc.coalesce(
        column(t, "helpful_vote", pa.int64()), column(t, "helpfulVotes", pa.int64())
    )
    verified = pc.coalesce(
        column(t, "verified_purchase", pa.bool_()), column(t, "verifiedPurchase", pa.bool_())
    )
    return Converted(
        _table(
            REVIEW_SCHEMA.names,
            [
                non_empty(column(t, "user_id")),
                non_empty(column(t, "parent_asin")),
                pc.cast(column(t, "rating", pa.float64()), pa.float64()),
                pc.cast(ts, pa.int64()),
                column(t, "title"),
                column(t, "text"),
                to_int32(votes),
                verified,
            ],
        )
    )


def _reviews_2018(t: pa.Table) -> Converted:
    raw_votes = column(t, "vote")
    helpful = column(t, "helpful", pa.list_(pa.int64()))
    votes = pc.coalesce(parse_votes(raw_votes), to_int32(first_element(helpful, skip_empty=False)))
    # 2018 files leave "vote" out when a review has no helpful votes
    no_votes = pc.and_(pc.is_null(raw_votes), pc.is_null(helpful))
    votes = pc.if_else(no_votes, pa.scalar(0, pa.int32()), votes)
    return Converted(
        _table(
            REVIEW_SCHEMA.names,
            [
                non_empty(column(t, "reviewerID")),
                non_empty(column(t, "asin")),
                pc.cast(column(t, "overall", pa.float64()), pa.float64()),
                seconds_to_ms(column(t, "unixReviewTime", pa.int64())),
                column(t, "summary"),
                column(t, "reviewText"),
                votes,
                column(t, "verified", pa.bool_()),
            ],
        )
    )


def _items(t: pa.Table, **cols: pa.Array) -> Converted:
    n = t.num_rows
    arrays = [cols.get(f.name, pa.nulls(n, f.type)) for f in ITEM_SCHEMA]
    return Converted(_table(ITEM_SCHEMA.names, arrays))


def _meta_2023(t: pa.Table) -> Converted:
    images = _array(column(t, "images", pa.list_(pa.struct([("large", _STRING)]))))
    large = pc.struct_field(pc.list_flatten(images), "large")
    image = _first_per_list(large, pc.list_parent_indices(images), t.num_rows, skip_empty=True)
    price = column(t, "price", pa.float64())
    if pa.types.is_string(price.type):
        price = parse_prices(price)
    return _items(
        t,
        parent_asin=non_empty(column(t, "parent_asin")),
        title=column(t, "title"),
        main_category=column(t, "main_category"),
        store=column(t, "store"),
        price=pc.cast(price, pa.float64()),
        average_rating=pc.cast(column(t, "average_rating", pa.float64()), pa.float32()),
        rating_number=to_int32(pc.cast(column(t, "rating_number", pa.int64()), pa.int64())),
        categories=column(t, "categories", _STRINGS),
        features=column(t, "features", _STRINGS),
        description=column(t, "description", _STRINGS),
        image=image,
    )


def _meta_2018(t: pa.Table) -> Converted:
    image = pc.coalesce(
        first_element(column(t, "imageURLHighRes", _STRINGS)),
        first_element(column(t, "imageURL", _STRINGS)),
    )
    return _items(
        t,
        parent_asin=non_empty(column(t, "asin")),
        title=column(t, "title"),
        main_category=column(t, "main_cat"),
        store=column(t, "brand"),
        price=parse_prices(column(t, "price")),
        categories=column(t, "category", _STRINGS),
        features=column(t, "feature", _STRINGS),
        description=column(t, "description", _STRINGS),
        image=image,
    )


def _meta_2014(t: pa.Table) -> Converted:
    cats = first_element(column(t, "categories", pa.list_(_STRINGS)), skip_empty=False)
    return _items(
        t,
        parent_asin=non_empty(column(t, "asin")),
        title=column(t, "title"),
        main_category=first_element(cats),
        store=column(t, "brand"),
        price=column(t, "price", pa.float64()),
        categories=cats,
        description=wrap_strings(column(t, "description")),
        image=non_empty(column(t, "imUrl")),
    )


_REVIEW_SOURCES_2023 = {
    "user_id": "user_id",
    "parent_asin": "parent_asin",
    "rating": "rating",
    "timestamp": "timestamp",
}
_REVIEW_SOURCES_OLD = {
    "user_id": "reviewerID",
    "parent_asin": "asin",
    "rating": "overall",
    "timestamp": "unixReviewTime",
}

_REVIEWS_2023_RAW = pa.schema(
    [
        ("user_id", _STRING),
        ("parent_asin", _STRING),
        ("rating", pa.float64()),
        ("timestamp", pa.int64()),
        ("sortTimestamp", pa.int64()),
        ("title", _STRING),
        ("text", _STRING),
        ("helpful_vote", pa.int64()),
        ("helpfulVotes", pa.int64()),
        ("verified_purchase", pa.bool_()),
        ("verifiedPurchase", pa.bool_()),
    ]
)
_REVIEWS_OLD_RAW = pa.schema(
    [
        ("reviewerID", _STRING),
        ("asin", _STRING),
        ("overall", pa.float64()),
        ("unixReviewTime", pa.int64()),
        ("summary", _STRING),
        ("reviewText", _STRING),
        ("vote", _STRING),
        ("helpful", pa.list_(pa.int64())),
        ("verified", pa.bool_()),
    ]
)
_META_2023_RAW = pa.schema(
    [
        ("parent_asin", _STRING),
        ("title", _STRING),
        ("main_category", _STRING),
        ("store", _STRING),
        ("price", pa.float64()),
        ("average_rating", pa.float64()),
        ("rating_number", pa.int64()),
        ("categories", _STRINGS),
        ("features", _STRINGS),
        ("description", _STRINGS),
        ("images", pa.list_(pa.struct([("large", _STRING)]))),
    ]
)
_META_2018_RAW = pa.schema(
    [
        ("asin", _STRING),
        ("title", _STRING),
        ("main_cat", _STRING),
        ("brand", _STRING),
        ("price", _STRING),
        ("category", _STRINGS),
        ("feature", _STRINGS),
        ("description", _STRINGS),
        ("imageURLHighRes", _STRINGS),
        ("imageURL", _STRINGS),
    ]
)
_META_2014_RAW = pa.schema(
    [
        ("asin", _STRING),
        ("title", _STRING),
        ("price", pa.float64()),
        ("imUrl", _STRING),
        ("brand", _STRING),
        ("categories", pa.list_(_STRINGS)),
        ("description", _STRING),
    ]
)

REVIEWS_2023 = Format(
    "amazon2023-reviews",
    "reviews",
    _REVIEWS_2023_RAW,
    _reviews_2023,
    _REVIEW_SOURCES_2023,
    "rating",
)
REVIEWS_2018 = Format(
    "amazon2018-reviews", "reviews", _REVIEWS_OLD_RAW, _reviews_2018, _REVIEW_SOURCES_OLD, "overall"
)
REVIEWS_2014 = Format(
    "amazon2014-reviews", "reviews", _REVIEWS_OLD_RAW, _reviews_2018, _REVIEW_SOURCES_OLD, "overall"
)
META_2023 = Format(
    "amazon2023-meta", "items", _META_2023_RAW, _meta_2023, {"parent_asin": "parent_asin"}
)
META_2018 = Format("amazon2018-meta", "items", _META_2018_RAW, _meta_2018, {"parent_asin": "asin"})
META_2014 = Format(
    "amazon2014-meta", "items", _META_2014_RAW, _meta_2014, {"parent_asin": "asin"}, literal=True
)

_META_2018_KEYS = {"main_cat", "imageURL", "imageURLHighRes", "feature", "category", "also_buy"}
_META_2018_KEYS |= {"also_view", "tech1", "tech2", "rank", "similar_item", "fit", "date"}
_META_2014_KEYS = {"imUrl", "salesRank", "related", "categories"}


def detect_json_format(keys: set[str]) -> Format | None:
    """The format whose records carry ``keys`` (the union over a sample of records), or None."""
    if "reviewerID" in keys:
        return REVIEWS_2014 if "helpful" in keys and "verified" not in keys else REVIEWS_2018
    if "user_id" in keys and ({"rating", "parent_asin", "timestamp", "sortTimestamp"} & keys):
        return REVIEWS_2023
    if "parent_asin" in keys:
        return META_2023
    if "asin" in keys:
        if keys & _META_2014_KEYS and not keys & _META_2018_KEYS:
            return META_2014
        return META_2018
    return None


# --------------------------------------------------------------------------- per-record path


def parse_line(text: str, literal: bool) -> dict[str, Any]:
    """One JSON (or, for ``literal``, Python-literal) line -> a dict, or :class:`BadRecord`."""
    try:
        obj = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        if not literal:
            reason = f"not valid JSON ({exc.msg}: column {exc.colno})"
            raise BadRecord("invalid_json", reason) from None
        try:
            with warnings.catch_warnings():  # e.g. "invalid escape sequence" in old strings
                warnings.simplefilter("ignore")
                obj = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc2:
            detail = getattr(exc2, "msg", None) or str(exc2) or type(exc2).__name__
            col = getattr(exc2, "offset", None)
            where = f": column {col}" if col else ""
            raise BadRecord(
                "invalid_literal", f"not a valid Python dict literal or JSON ({detail}{where})"
            ) from None
    except RecursionError:
        raise BadRecord("invalid_json", "not valid JSON (nested too deeply)") from None
    if not isinstance(obj, dict):
        what = "JSON object" if not literal else "dict"
        raise BadRecord("not_an_object", f"not a {what} (got {type(obj).__name__})")
    return obj


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # printable, always
    return text if len(text) <= 40 else text[:37] + "..."


def _valid_str(value: str) -> str:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text without unpaired surrogates") from None
    return value


def _coerce(value: Any, type_: pa.DataType) -> Any:
    """A JSON value -> the Python value PyArrow builds for ``type_``; ValueError if impossible."""
    if value is None:
        return None
    if pa.types.is_string(type_):
        if isinstance(value, str):
            return _valid_str(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return json.dumps(value)
        raise ValueError("a string")
    if pa.types.is_floating(type_):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ValueError("a number")
    if pa.types.is_integer(type_):
        if isinstance(value, bool):
            raise ValueError("an integer")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and -_INT64_MAX <= value <= _INT64_MAX:
            return value
        raise ValueError("an integer")
    if pa.types.is_boolean(type_):
        if isinstance(value, bool):
            return value
        raise ValueError("true or false")
    if pa.types.is_list(type_):
        inner = type_.value_type
        if isinstance(value, str) and pa.types.is_string(inner):
            return [_valid_str(value)]
        if pa.types.is_struct(inner) and isinstance(value, dict):
            # the Hugging Face loader's dict of lists: {"large": [...], "thumb": [...]}
            names = [f.name for f in inner]
            cols = {k: value.get(k) or [] for k in names}
            if not all(isinstance(v, list) for v in cols.values()):
                raise ValueError("a list")
            length = max((len(v) for v in cols.values()), default=0)
            value = [
                {k: (v[i] if i < len(v) else None) for k, v in cols.items()} for i in range(length)
            ]
        if not isinstance(value, list):
            raise ValueError("a list")
        if pa.types.is_list(inner) and value and all(isinstance(v, str) for v in value):
            value = [value]  # a flat category path where a list of paths is expected
        return [_coerce(v, inner) for v in value]
    if pa.types.is_struct(type_):
        if not isinstance(value, dict):
            raise ValueError("an object")
        return {f.name: _coerce(value.get(f.name), f.type) for f in type_}
    raise ValueError(str(type_))  # pragma: no cover - every raw schema type is handled above


def coerce_record(fmt: Format, obj: Mapping[str, Any]) -> dict[str, Any]:
    """The raw fields of one parsed record, typed as ``fmt.raw_schema``, or :class:`BadRecord`."""
    out: dict[str, Any] = {}
    for f in fmt.raw_schema:
        value = obj.get(f.name)
        if value is None:
            continue
        if f.name == "price" and pa.types.is_floating(f.type):
            out["price"] = parse_price(value)  # "None", "$9.99", 9.99 -> a number or null
            continue
        if f.name == "price" and not isinstance(value, str):
            value = None if isinstance(value, bool | list | dict) else json.dumps(value)
        try:
            out[f.name] = _coerce(value, f.type)
        except (ValueError, TypeError) as exc:
            if f.name == fmt.rating_key:
                reason = f"rating {_show(value)} is not a number"
                raise BadRecord("rating_not_a_number", reason) from None
            raise BadRecord(
                f"bad_type:{f.name}", f"field {f.name!r}: expected {exc}, got {_show(value)}"
            ) from None
    return out


# --------------------------------------------------------------------------- ratings CSV

CSV_COLUMNS = ("user_id", "parent_asin", "rating", "timestamp")
CSV_ALIASES = {
    "user_id": ("user", "userid", "user_id", "reviewerid"),
    "parent_asin": ("item", "itemid", "item_id", "asin", "parent_asin"),
    "rating": ("rating", "overall"),
    "timestamp": ("timestamp", "unixreviewtime", "time"),
}


def is_number(text: str) -> bool:
    return re.fullmatch(_NUMBER_RE, text.strip()) is not None


def convert_ratings_csv(t: pa.Table) -> Converted:
    """String columns user_id, parent_asin, rating, timestamp -> canonical reviews, with checks."""
    raw_rating = column(t, "rating")
    raw_ts = column(t, "timestamp")
    rating, rating_bad = parse_numbers(raw_rating)
    ts, ts_bad = parse_numbers(raw_ts)
    ts_ms = auto_ms(ts)
    # a number auto_ms cannot turn into int64 ms (|ms| >= 9e15, about the year 287,000)
    ts_range_bad = pc.and_(pc.is_valid(ts), pc.is_null(ts_ms))
    n = t.num_rows
    table = _table(
        REVIEW_SCHEMA.names,
        [
            non_empty(column(t, "user_id")),
            non_empty(column(t, "parent_asin")),
            rating,
            ts_ms,
            pa.nulls(n, _STRING),
            pa.nulls(n, _STRING),
            pa.nulls(n, pa.int32()),
            pa.nulls(n, pa.bool_()),
        ],
    )
    checks = [
        Check(
            "rating_not_a_number",
            rating_bad,
            lambda i: f"rating {raw_rating[i].as_py()!r} is not a number",
        ),
        Check(
            "bad_timestamp",
            ts_bad,
            lambda i: f"timestamp {raw_ts[i].as_py()!r} is not a number",
        ),
        Check(
            "timestamp_out_of_range",
            ts_range_bad,
            lambda i: (
                f"timestamp {raw_ts[i].as_py()!r} is out of range (Unix seconds or milliseconds, "
                "below 9e15 ms in absolute value)"
            ),
        ),
    ]
    return Converted(table, checks)


def looks_like_items(values: list[str]) -> tuple[float, int]:
    """(fraction of ``values`` shaped like an ASIN, number of distinct values)."""
    if not values:
        return 0.0, 0
    hits = sum(1 for v in values if ASIN_RE.match(v.strip()))
    return hits / len(values), len(set(values))


# --------------------------------------------------------------------------- canonical checks


def standard_checks(fmt_sources: Mapping[str, str], table: pa.Table) -> list[Check]:
    """Required columns non-null (and non-empty), then rating within 1..5."""
    checks: list[Check] = []
    for name, raw in fmt_sources.items():
        col = table[name]
        label = f"{raw!r}" if raw == name else f"{raw!r} ({name})"
        checks.append(
            Check(
                f"missing_field:{name}",
                pc.is_null(col),
                lambda i, label=label: f"missing required field {label}",
            )
        )
    if "rating" in table.column_names:
        rating = table["rating"]
        in_range = pc.and_(pc.greater_equal(rating, RATING_MIN), pc.less_equal(rating, RATING_MAX))
        bad = pc.and_(pc.is_valid(rating), pc.invert(pc.fill_null(in_range, False)))
        checks.append(
            Check(
                "rating_out_of_range",
                bad,
                lambda i: f"rating {rating[i].as_py()!r} outside 1..5",
            )
        )
    return checks
