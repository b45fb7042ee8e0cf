"""The canonical Parquet schemas every DeepCart dataset uses.

Whatever the source (2023, 2018 or 2014 JSON, ratings-only CSV), `ingest` writes reviews and items
in these schemas, and every later stage (build, split, models, service, the Spark engine) reads
only these columns. A file's kind is recorded in its Parquet schema metadata under
``deepcart.kind`` (``reviews`` or ``items``).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pyarrow as pa

#: A user id the service and ``recommend --ratings`` accept: 1-128 letters, digits or
#: ``_ . : @ + = -`` (Amazon's are 28 capitals and digits).
USER_ID_PATTERN = r"^[A-Za-z0-9_.:@+=\-]{1,128}$"
#: :data:`USER_ID_PATTERN` compiled, for ``fullmatch``.
USER_ID = re.compile(USER_ID_PATTERN.strip("^$"))
#: A product id (Amazon's parent_asin: 10 capitals and digits).
ASIN_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"


def rating_value(value: object) -> float | None:
    """``value`` as a rating (a float from 1 to 5), or None when it is not a number (a bool is
    not) or not finite or outside 1..5."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    rating = float(value)
    return rating if math.isfinite(rating) and 1.0 <= rating <= 5.0 else None


KIND_KEY = b"deepcart.kind"
SOURCE_KEY = b"deepcart.source_format"

#: One row per review. ``timestamp`` is Unix milliseconds; ``rating`` is 1.0 to 5.0.
REVIEW_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("parent_asin", pa.string(), nullable=False),
        pa.field("rating", pa.float32(), nullable=False),
        pa.field("timestamp", pa.int64(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("text", pa.string()),
        pa.field("helpful_vote", pa.int32()),
        pa.field("verified_purchase", pa.bool_()),
    ]
)

#: One row per product. ``image`` is the first large image URL; ``description`` keeps paragraphs.
ITEM_SCHEMA = pa.schema(
    [
        pa.field("parent_asin", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("main_category", pa.string()),
        pa.field("store", pa.string()),
        pa.field("price", pa.float64()),
        pa.field("average_rating", pa.float32()),
        pa.field("rating_number", pa.int32()),
        pa.field("categories", pa.list_(pa.string())),
        pa.field("features", pa.list_(pa.string())),
        pa.field("description", pa.list_(pa.string())),
        pa.field("image", pa.string()),
    ]
)

REQUIRED_REVIEW_FIELDS = ("user_id", "parent_asin", "rating", "timestamp")
REQUIRED_ITEM_FIELDS = ("parent_asin",)


def schema_for(kind: str) -> pa.Schema:
    """The canonical schema for ``kind`` ('reviews' or 'items'), with its kind in the metadata."""
    base = {"reviews": REVIEW_SCHEMA, "items": ITEM_SCHEMA}.get(kind)
    if base is None:
        raise ValueError(f"kind must be 'reviews' or 'items', got {kind!r}")
    return base.with_metadata({KIND_KEY: kind.encode()})


def _same_type(got: pa.DataType, want: pa.DataType) -> bool:
    if pa.types.is_list(want):  # whatever its item field is named ("item", "element")
        return pa.types.is_list(got) and got.value_type == want.value_type
    return got == want


def canonical_problem(schema: pa.Schema, kind: str) -> str | None:
    """Why a Parquet file with ``schema`` cannot be read as canonical ``kind`` as it is (by the
    build engines, without ``ingest``'s checks), or None when it can: its kind recorded, every
    canonical column with its type, and the required columns declared without nulls."""
    if (schema.metadata or {}).get(KIND_KEY) != kind.encode():
        return f"not DeepCart {kind} Parquet"
    for want in schema_for(kind):
        if want.name not in schema.names:
            return f"no column {want.name}"
        got = schema.field(want.name)
        if not _same_type(got.type, want.type):
            return f"column {want.name} is {got.type}, expected {want.type}"
        if got.nullable and not want.nullable:
            return f"column {want.name} may hold nulls"
    return None


def parquet_kind(schema: pa.Schema) -> str | None:
    """The DeepCart kind recorded in a Parquet file's schema, or None for a foreign file."""
    meta = schema.metadata or {}
    kind = meta.get(KIND_KEY)
    if kind is not None:
        return kind.decode()
    names = set(schema.names)
    if set(REVIEW_SCHEMA.names) <= names:
        return "reviews"
    if set(ITEM_SCHEMA.names) <= names:
        return "items"
    return None
