"""The canonical Parquet schemas every DeepCart dataset uses.

Whatever the source (2023, 2018 or 2014 JSON, ratings-only CSV), `ingest` writes reviews and items
in these schemas, and every later stage (build, split, models, service, the Spark engine) reads
only these columns. A file's kind is recorded in its Parquet schema metadata under
``deepcart.kind`` (``reviews`` or ``items``).
"""

from __future__ import annotations

import pyarrow as pa

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
