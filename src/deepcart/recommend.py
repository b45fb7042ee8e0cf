"""`deepcart recommend`: the top-K for every known user (or a list of them), written to a file.

Uses the production model (trained with ``--split none``) unless another split is named. Known
users are the users of that split's training data; their seen items are excluded. In worst mode
only engaged items are ranked and each recommendation carries its most helpful low-rated review.

With a ratings file (``--ratings``: user_id, parent_asin, rating) users are folded in as the
service folds in a user's submitted reviews: a user's row is their training row with the file's
ratings merged over it (:func:`deepcart.data.matrix.merged_row`), and a user the model does not
know is folded in from the file's ratings alone.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import scipy.sparse as sp

from deepcart.data.matrix import IdIndex, interactions, merged_row, positions
from deepcart.data.mining import excerpt, worst_reviews
from deepcart.data.paths import (
    DEFAULT_DATA_DIR,
    DEFAULT_MODEL_DIR,
    check_outside_dataset,
    require_dataset,
)
from deepcart.data.schema import USER_ID, rating_value
from deepcart.data.split import load_split, read_split_meta
from deepcart.errors import InputError
from deepcart.fsutil import atomic_path, check_input_file
from deepcart.models.base import Recommender, read_model_meta
from deepcart.modes import (
    MIN_ENGAGEMENT,
    candidates,
    check_mode,
    cold_start_lists,
    cold_start_top,
    linked_counts,
    model_input,
    nothing_to_go_on,
    recommend_in_mode,
    require_engaged,
)
from deepcart.training import model_path


@dataclass(frozen=True)
class RatingsSummary:
    """What ``--ratings`` read and what became of it: ``read`` = ``used`` + the skipped rows
    (``unknown_items``: of a product the model does not know; ``not_listed``: of a user that
    ``--users`` does not list; ``replaced``: a later row of the file rates the same user and
    product). ``users``: users whose rows the file changed (or made); ``users_skipped``: users of
    the file unknown to the model without a single used rating, left out."""

    path: Path
    read: int
    used: int
    unknown_items: int
    not_listed: int
    replaced: int
    users: int
    users_skipped: int


@dataclass
class RecommendResult:
    out: Path
    n_users: int
    n_rows: int
    unknown_users: int
    seconds: float
    ratings: RatingsSummary | None = None


def load_model_items(path: Path) -> tuple[Recommender, IdIndex]:
    """A saved model and the parent_asin of each of its item indices."""
    model = Recommender.load(path)
    try:
        ids = pq.read_table(path / "items.parquet")["parent_asin"].combine_chunks()
    except FileNotFoundError:
        raise InputError(f"{path}: missing items.parquet (retrain the model)") from None
    except (OSError, ValueError, KeyError) as exc:  # not Parquet, or no parent_asin column
        raise InputError(
            f"{path}/items.parquet: not the model's item list ({exc}); retrain the model"
        ) from None
    if len(ids) != model.n_items_:
        raise InputError(
            f"{path}: items.parquet lists {len(ids)} items, the model {model.n_items_}"
        )
    return model, IdIndex(ids)


def recommendation_table(
    item_indices: np.ndarray,
    scores: np.ndarray,
    items: IdIndex,
    *,
    user_ids: Sequence[str] | pa.Array | None = None,
    catalog: pa.Table | None = None,
    columns: Sequence[str] = ("title",),
) -> pa.Table:
    """The ``(item_indices, scores)`` that ``Recommender.recommend`` returned, as a table of ids.

    One row per recommendation, best first within each user: ``user_id`` (``user_ids[i]``
    for row ``i``, from a list or an Arrow array; without ``user_ids``, a ``row`` column, the
    row's position), ``parent_asin`` (through ``items``, the model's item index), ``rank``
    (1 = best) and ``score``; padding (index -1) is left out. With ``catalog`` (a table with a
    ``parent_asin`` column, such as the dataset's ``items.parquet``), its ``columns`` are added
    (null for an item it does not list).

    Raises :class:`~deepcart.errors.InputError` naming the argument when the shapes disagree, an
    index is outside ``items``, or ``catalog`` lacks a column.
    """
    idx, sc = np.asarray(item_indices), np.asarray(scores)
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise InputError(
            f"item_indices: expected a 2-d integer array (n_users, k), got {idx.dtype} "
            f"with shape {idx.shape}"
        )
    if sc.shape != idx.shape:
        raise InputError(f"scores: expected shape {idx.shape} like item_indices, got {sc.shape}")
    if idx.size and (idx.min() < -1 or idx.max() >= len(items)):
        raise InputError(
            f"item_indices: expected indices in [0, {len(items)}) or -1 (padding), got values "
            f"from {idx.min()} to {idx.max()}; were they made with another model's items?"
        )
    n, k = idx.shape
    if user_ids is not None and len(user_ids) != n:
        raise InputError(f"user_ids: expected {n} ids (one per row), got {len(user_ids)}")
    valid = (idx >= 0).ravel()
    rows = np.repeat(np.arange(n), k)[valid]
    if user_ids is None:
        who = ("row", pa.array(rows, pa.int64()))
    else:
        ids = user_ids if isinstance(user_ids, pa.Array) else pa.array(user_ids, pa.string())
        who = ("user_id", ids.take(pa.array(rows)))
    table = pa.table(
        {
            who[0]: who[1],
            "parent_asin": items.ids.take(pa.array(idx.ravel()[valid])),
            "rank": pa.array(np.tile(np.arange(1, k + 1), n)[valid], pa.int32()),
            "score": pa.array(sc.ravel()[valid], pa.float64()),
        }
    )
    if catalog is not None:
        clash = [c for c in columns if c in table.column_names]
        if clash:
            raise InputError(
                f"columns: {', '.join(clash)} is already a column of the table "
                f"({', '.join(table.column_names)}); name catalog columns to add"
            )
        missing = [c for c in ("parent_asin", *columns) if c not in catalog.column_names]
        if missing:
            raise InputError(
                f"catalog: has no column {', '.join(missing)}; it has "
                f"{', '.join(catalog.column_names)}"
            )
        known = catalog["parent_asin"]
        if isinstance(known, pa.ChunkedArray):
            known = known.combine_chunks()
        at = pc.index_in(table["parent_asin"], value_set=known)
        for c in columns:
            table = table.append_column(c, catalog[c].take(at))
    return table


def train_command(
    tag: str,
    split: str,
    model_type: str,
    mode: str,
    model_dir: str | Path = DEFAULT_MODEL_DIR,
    data_dir: str | Path | None = None,
) -> str:
    """The ``deepcart train`` line that (re)makes this model; folders only where not default."""
    flags = f" --split {split}" + (" --mode worst" if mode == "worst" else "")
    if data_dir is not None and Path(data_dir) != DEFAULT_DATA_DIR:
        flags += f" --data-dir {data_dir}"
    if Path(model_dir) != DEFAULT_MODEL_DIR:
        flags += f" --model-dir {model_dir}"
    return f"deepcart train --data-tag {tag} --type {model_type}{flags}"


def require_model(
    model_dir: str | Path,
    tag: str,
    split: str,
    model_type: str,
    mode: str,
    data_dir: str | Path | None = None,
) -> Path:
    path = model_path(model_dir, tag, split, model_type, mode)
    if not (path / "model.json").is_file():
        raise InputError(
            f"no trained {model_type!r} model for dataset {tag!r} at {path}; train it with: "
            f"{train_command(tag, split, model_type, mode, model_dir, data_dir)}"
        )
    return path


def check_fitted(
    path: Path,
    meta: dict[str, Any],
    *,
    model_type: str,
    mode: str,
    tag: str,
    split: str,
    split_id: str,
    retrain: str,
) -> None:
    """That the model saved at ``path`` (``meta``: its ``model.json``) is a ``model_type`` of
    ``mode``, fit on the dataset's current ``split`` (``split_id``); else one line that ends
    with ``retrain``, the command that makes it again. ``recommend`` and the service check the
    models they load with it."""
    if meta.get("model") != model_type:
        raise InputError(
            f"{path}: holds a {meta.get('model')!r} model, not {model_type!r}; {retrain}"
        )
    extra = meta.get("extra", {})
    if extra.get("mode", "best") != mode:
        raise InputError(
            f"{path}: holds a {extra.get('mode')!r}-mode model, expected {mode!r}; {retrain}"
        )
    if extra.get("split_id") != split_id:
        raise InputError(
            f"{path}: was fit on another version of dataset {tag!r} (split "
            f"{extra.get('split_id')!r}; the dataset's {split!r} split is {split_id!r}); {retrain}"
        )


def read_user_list(path: str | Path) -> list[str]:
    """User ids from a text file (one per line), a CSV with a user_id column, or Parquet."""
    p = check_input_file(path, "--users", "a file of user ids")
    if p.suffix == ".parquet":
        try:
            table = pq.read_table(p)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise InputError(f"--users: {p} is not a readable Parquet file: {exc}") from None
        if "user_id" not in table.column_names:
            raise InputError(f"--users: {p} has no user_id column")
        column = table["user_id"]
        if pa.types.is_dictionary(column.type):  # e.g. a pandas categorical column
            column = column.cast(column.type.value_type)
        if pa.types.is_integer(column.type):  # numeric ids: match them as the text they are
            column = column.cast(pa.string())
        elif not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            raise InputError(f"--users: {p}: user_id column holds {column.type}, expected strings")
        ids = [u for u in column.to_pylist() if u is not None]
    else:
        try:
            text = p.read_text(encoding="utf-8-sig")  # a byte order mark is not part of an id
        except UnicodeDecodeError:
            raise InputError(
                f"--users: {p} is not a UTF-8 text file (one user id a line, a CSV with a "
                "user_id column, or .parquet)"
            ) from None
        lines = [line for line in text.splitlines() if line.strip()]
        ids = [line.strip() for line in lines]
        if lines and "user_id" in lines[0]:  # a CSV: the user_id column, wherever it is
            try:
                rows = list(csv.reader(lines))
            except csv.Error as exc:
                raise InputError(f"--users: {p} is not a readable CSV ({exc})") from None
            names = [name.strip() for name in rows[0]]
            if "user_id" in names:
                col = names.index("user_id")
                ids = [row[col].strip() for row in rows[1:] if col < len(row) and row[col].strip()]
        looks_csv = p.suffix.lower() == ".csv" or (lines and "," in lines[0])
        if looks_csv and ids and ids[0] == lines[0].strip():  # no user_id column found
            # Its lines would be taken whole as ids (a user id holds no comma): none would match.
            raise InputError(
                f"--users: {p}: a CSV needs a user_id column; its first line is "
                f"{lines[0].strip()[:80]!r} (or list one id a line)"
            )
    if not ids:
        raise InputError(f"--users: {p} lists no user ids")
    return ids


RATINGS_COLUMNS = ("user_id", "parent_asin", "rating")


def read_ratings(path: str | Path) -> tuple[list[str], list[str], list[float]]:
    """The (user_id, parent_asin, rating) rows of a ratings file, in file order.

    A ``.parquet`` file (such as ``deepcart export-reviews`` writes) or, any other name, a CSV
    with a header; the columns user_id, parent_asin and rating may be anywhere among others.
    Raises :class:`~deepcart.errors.InputError` naming the file, the line (CSV, counting the
    header as line 1) or row (Parquet, from 1) and the field: a missing column, an empty
    user_id or parent_asin, a user id the service would refuse, a rating that is not a number
    from 1 to 5.
    """
    p = check_input_file(path, "--ratings", "a Parquet or CSV file")
    if p.suffix == ".parquet":
        columns, where = _parquet_columns(p)
    else:
        columns, where = _csv_columns(p)
    users, asins, ratings = columns
    out_ratings: list[float] = []
    for i, (user, asin, rating) in enumerate(zip(users, asins, ratings, strict=True)):
        if not user:
            raise InputError(f"--ratings: {where(i)}: user_id: empty, expected a user id")
        if not USER_ID.fullmatch(user):
            raise InputError(
                f"--ratings: {where(i)}: user_id: expected 1 to 128 letters, digits or "
                f"_ . : @ + = - (a user id the service accepts), got {user!r}"
            )
        if not asin:
            raise InputError(f"--ratings: {where(i)}: parent_asin: empty, expected a product id")
        value = _rating(rating)
        if value is None:
            raise InputError(
                f"--ratings: {where(i)}: rating: expected a number from 1 to 5, got {rating!r}"
            )
        out_ratings.append(value)
    return users, asins, out_ratings


def _rating(value: object) -> float | None:
    """A rating as a float (a CSV's text too), or None when it is not a number from 1 to 5."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    return rating_value(value)


_Columns = tuple[list[Any], list[Any], list[Any]]


def _parquet_columns(p: Path) -> tuple[_Columns, Callable[[int], str]]:
    try:
        schema = pq.read_schema(p)
        missing = [c for c in RATINGS_COLUMNS if c not in schema.names]
        if missing:
            raise InputError(
                f"--ratings: {p}: no {', '.join(missing)} column (it has "
                f"{', '.join(schema.names) or 'none'}); expected user_id, parent_asin, rating"
            )
        table = pq.read_table(p, columns=list(RATINGS_COLUMNS))
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(f"--ratings: {p} is not a readable Parquet file: {exc}") from None
    cols = []
    for name in RATINGS_COLUMNS:
        column = table[name]
        if pa.types.is_dictionary(column.type):  # e.g. a pandas categorical column
            column = column.cast(column.type.value_type)
        if name != "rating" and pa.types.is_integer(column.type):  # numeric ids, as text
            column = column.cast(pa.string())
        values = column.to_pylist()
        if name != "rating" and values and not all(isinstance(v, str | None) for v in values):
            raise InputError(f"--ratings: {p}: {name} column holds {column.type}, expected text")
        cols.append(values)
    return (cols[0], cols[1], cols[2]), lambda i: f"{p}: row {i + 1}"


def _csv_columns(p: Path) -> tuple[_Columns, Callable[[int], str]]:
    users: list[str] = []
    asins: list[str] = []
    ratings: list[str] = []
    lines: list[int] = []
    line = 1
    try:
        # A byte order mark is not part of the first column's name.
        with p.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, strict=True)  # an unclosed quote is an error, not EOF
            header = next(reader, None)
            names = [name.strip() for name in header or []]
            missing = [c for c in RATINGS_COLUMNS if c not in names]
            if missing:
                raise InputError(
                    f"--ratings: {p}:1: no {', '.join(missing)} column in the header (it has "
                    f"{', '.join(names) or 'none'}); expected a CSV with user_id, parent_asin, "
                    "rating columns, or .parquet"
                )
            at = [names.index(c) for c in RATINGS_COLUMNS]
            line = reader.line_num + 1
            for record in reader:
                start, line = line, reader.line_num + 1
                if not record:  # a blank line
                    continue
                u, a, r = (record[c].strip() if c < len(record) else "" for c in at)
                users.append(u)
                asins.append(a)
                ratings.append(r)
                lines.append(start)
    except UnicodeDecodeError:
        raise InputError(
            f"--ratings: {p} is not a UTF-8 CSV file (expected a CSV with a header, or .parquet)"
        ) from None
    except csv.Error as exc:
        raise InputError(f"--ratings: {p}:{line}: not a readable CSV ({exc})") from None
    return (users, asins, ratings), lambda i: f"{p}:{lines[i]}"


def fold_in_rows(
    path: str | Path,
    ratings: tuple[list[str], list[str], list[float]],
    x: sp.csr_matrix,
    users: IdIndex,
    items: IdIndex,
    listed: Sequence[str] | None = None,
) -> tuple[dict[str, sp.csr_matrix], RatingsSummary]:
    """The rating rows of the users of the ratings file ``path``, whose rows ``ratings`` are
    (:func:`read_ratings`): their training rows in ``x`` (rows ``users``, columns ``items``)
    with the file's ratings merged over them, the last row of a user and product winning, as the
    service folds in stored reviews.

    Ratings of products ``items`` does not know are skipped; with ``listed`` (the ``--users``
    list), so are the rows of users it does not list. Returns ``{user_id: 1 x n_items row}``
    for every user with a used rating, and what became of the file's rows.
    """
    user_col, asin_col, rating_col = ratings
    cols = items.lookup(pa.array(asin_col, pa.string())) if asin_col else np.zeros(0, np.int64)
    wanted = None if listed is None else set(listed)
    per_user: dict[str, dict[int, float]] = {}
    unknown_items = not_listed = considered = 0
    for user, j, rating in zip(user_col, cols.tolist(), rating_col, strict=True):
        if j < 0:
            unknown_items += 1
        elif wanted is not None and user not in wanted:
            not_listed += 1
        else:
            considered += 1
            per_user.setdefault(user, {})[j] = rating  # a later row of the pair wins
    used = sum(len(r) for r in per_user.values())
    names = list(per_user)
    known = users.lookup(pa.array(names, pa.string())) if names else np.zeros(0, np.int64)
    rows = {
        user: merged_row(x, int(row) if row >= 0 else None, per_user[user].items())
        for user, row in zip(names, known.tolist(), strict=True)
    }
    file_users = dict.fromkeys(user_col)
    skipped_users = 0
    if listed is None:
        strangers = [u for u in file_users if u not in rows]
        if strangers:
            skipped_users = int((users.lookup(pa.array(strangers, pa.string())) < 0).sum())
    summary = RatingsSummary(
        path=Path(path),
        read=len(user_col),
        used=used,
        unknown_items=unknown_items,
        not_listed=not_listed,
        replaced=considered - used,
        users=len(rows),
        users_skipped=skipped_users,
    )
    return rows, summary


def _ratings_line(s: RatingsSummary) -> str:
    reasons = [
        (s.unknown_items, "of products the model does not know"),
        (s.not_listed, "of users --users does not list"),
        (s.replaced, "replaced by a later row of the same user and product"),
    ]
    skipped = s.read - s.used
    why = "; ".join(f"{n:,} {text}" for n, text in reasons if n)
    line = (
        f"Read {_plural(s.read, 'rating')} from {s.path}: {s.used:,} used"
        + (f", {skipped:,} skipped ({why})" if skipped else "")
        + f"; {_plural(s.users, 'user')} folded in"
    )
    if s.users_skipped:
        line += (
            f"; skipping {_plural(s.users_skipped, 'user')} of the file unknown to the model "
            "with no rating of a product it knows"
        )
    return line


def recommend_users(
    *,
    data_dir: str | Path,
    tag: str,
    model_type: str,
    out: str | Path,
    k: int = 10,
    mode: str = "best",
    split: str = "none",
    users_file: str | Path | None = None,
    ratings_file: str | Path | None = None,
    model_dir: str | Path = DEFAULT_MODEL_DIR,
    min_engagement: int = MIN_ENGAGEMENT,
    echo: Callable[[str], None] = print,
) -> RecommendResult:
    """``deepcart recommend``: the top-``k`` of every known user, or of those ``users_file``
    lists, written to ``out``. With ``ratings_file`` (:func:`read_ratings`) its users are
    folded in (:func:`fold_in_rows`) and, without ``users_file``, recommended for too; a listed
    user the model does not know is recommended for when the file rates a product it knows."""
    check_mode(mode)
    out = Path(out)
    if out.suffix not in (".parquet", ".csv"):
        raise InputError(f"--out: expected a .parquet or .csv file name, got {out}")
    if k < 1:
        raise InputError(f"--k: expected a positive integer, got {k}")
    paths = require_dataset(data_dir, tag)
    check_outside_dataset(out, data_dir, tag, "the recommendations")
    path = require_model(model_dir, tag, split, model_type, mode, data_dir)
    # The inputs first: a bad row of a file is reported before the model and split load.
    wanted = None
    if users_file is not None:
        wanted = list(dict.fromkeys(read_user_list(users_file)))  # each listed user once
    ratings = read_ratings(ratings_file) if ratings_file is not None else None
    retrain = f"retrain it with: {train_command(tag, split, model_type, mode, model_dir, data_dir)}"
    split_json = paths.splits(split) / "split.json"
    current = read_split_meta(split_json).get("split_id") if split_json.is_file() else None
    if current is None:  # build replaced the dataset (and its splits) since the fit
        raise InputError(
            f"{path}: was fit on a {split!r} split that dataset {tag!r} no longer has (missing "
            f"or damaged {split_json}; rebuilt since?); {retrain}"
        )
    check_fitted(
        path, read_model_meta(path), model_type=model_type, mode=mode, tag=tag, split=split,
        split_id=current, retrain=retrain,
    )  # fmt: skip
    model, items = load_model_items(path)
    train = load_split(data_dir, tag, split).read("train")
    x_all, users = interactions(train, items)
    folded: dict[str, sp.csr_matrix] = {}
    summary = None
    if ratings is not None:
        folded, summary = fold_in_rows(ratings_file, ratings, x_all, users, items, wanted)
        echo(_ratings_line(summary))
    extra = pa.array(list(folded), pa.string())
    unknown = 0
    if wanted is not None:
        ids = pa.array(wanted, pa.string())
        keep = (users.lookup(ids) >= 0) | (positions(ids, extra) >= 0)
        unknown = int((~keep).sum())
        ids = ids.filter(pa.array(keep))
        if unknown:
            echo(
                f"Skipping {unknown:,} of {len(wanted):,} listed users unknown to the model"
                + (" with no rating of a product it knows in --ratings" if summary else "")
            )
    elif folded:  # every known user and every user of the file, in id order
        ids = IdIndex.from_values(pa.concat_arrays([users.ids.cast(pa.string()), extra])).ids
    else:
        ids = users.ids
    trained = users.lookup(ids)  # each user's training row (-1: none)
    rows = trained
    if folded:  # the file's users take their folded-in rows, stacked under the training rows
        at = positions(ids, extra)
        rows = np.where(at >= 0, len(users) + at, trained)
        x = sp.vstack([x_all, *folded.values()], format="csr")[rows]
    else:
        x = x_all[rows]
    allowed = candidates(x_all, mode, min_engagement)
    require_engaged(x_all, allowed, min_engagement)
    k = min(k, model.n_items_)  # a list holds each item once: a larger --k only pads
    started = time.perf_counter()
    recs, scores = recommend_in_mode(model, x, k, mode, allowed=allowed)
    known = trained >= 0  # their own training rows, to leave out of the counts
    own = (sp.diags(known.astype(np.float32)) @ x_all[np.where(known, trained, 0)]).tocsr()
    own.eliminate_zeros()  # a user the model was not fit on: an empty row, not zero ratings
    recs, scores, lost = _cold_start_where_lost(
        recs, scores, x, own, x_all, model, mode, min_engagement
    )
    if len(lost):
        echo(
            f"{_plural(len(lost), 'user')} with nothing for the model to go on"
            + (
                " (no low rating of a product that other users rated low alongside another)"
                if mode == "worst"
                else ""
            )
            + ": the cold-start list (fallback column true)"
        )
    seconds = time.perf_counter() - started
    table = recommendation_table(recs, scores, items, user_ids=ids)
    fallback = np.zeros(x.shape[0], dtype=bool)
    fallback[lost] = True
    per_row = np.repeat(fallback, recs.shape[1])[(recs >= 0).ravel()]  # as the table's rows
    table = table.append_column("fallback", pa.array(per_row, pa.bool_()))
    if mode == "worst":
        table = _with_worst_reviews(table, paths.reviews)
    with atomic_path(out, suffix=out.suffix) as tmp:
        if out.suffix == ".parquet":
            pq.write_table(table, tmp, compression="zstd")
        else:
            pacsv.write_csv(table, tmp)
    echo(
        f"Wrote {_plural(table.num_rows, 'recommendation')} for {_plural(len(rows), 'user')} "
        f"to {out} ({seconds:.2f} s, {len(rows) / max(seconds, 1e-9):,.0f} users/s)"
    )
    return RecommendResult(out, len(rows), table.num_rows, unknown, seconds, summary)


def _cold_start_where_lost(
    recs: np.ndarray,
    scores: np.ndarray,
    x: sp.csr_matrix,
    own: sp.csr_matrix,
    x_all: sp.csr_matrix,
    model: Recommender,
    mode: str,
    min_engagement: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lists of the users whose rows ``x`` give the model nothing to go on
    (:func:`deepcart.modes.nothing_to_go_on`; ``own``: each user's own training row) replaced
    by the cold-start list less what they rated, as the service serves them (the model's would
    be a tie in index order); and the positions of those users."""
    counts = linked_counts(model_input(x_all, mode, model.feedback))
    lost = np.flatnonzero(nothing_to_go_on(x, own, counts, mode, model.feedback))
    if not len(lost):
        return recs, scores, lost
    ranked = cold_start_lists(x_all, min_engagement)[mode]
    recs, scores = recs.copy(), scores.copy()
    k = recs.shape[1]
    for r in lost:
        idx, sc = cold_start_top(ranked, x.indices[x.indptr[r] : x.indptr[r + 1]], k)
        recs[r], scores[r] = -1, -np.inf
        recs[r, : len(idx)], scores[r, : len(idx)] = idx, sc
    return recs, scores, lost


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _with_worst_reviews(table: pa.Table, reviews: Path) -> pa.Table:
    mined = worst_reviews(reviews)
    idx = pc.index_in(table["parent_asin"], value_set=mined["parent_asin"])
    take = mined.take(idx)
    texts = take["review_text"].to_pylist()
    return (
        table.append_column("review_title", take["review_title"])
        .append_column("review_excerpt", pa.array([excerpt(t) if t else None for t in texts]))
        .append_column("review_rating", take["review_rating"])
        .append_column("review_helpful_vote", take["review_helpful_vote"])
    )
