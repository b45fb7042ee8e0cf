"""Review mining for worst mode: the review that proves a product is bad.

For every item with at least one low rating (``rating <= LOW``), the most helpful low-rated
review: most helpful votes first, then the longer text, then the earliest, then user_id (so the
choice is deterministic). Its title and an excerpt of its text go with a worst-mode
recommendation.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from deepcart.errors import InputError
from deepcart.modes import LOW

EXCERPT_CHARS = 280


def excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    """The first ``limit`` characters of ``text``, cut at a word boundary, with an ellipsis."""
    if not text:
        return ""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] or flat[:limit]
    return cut.rstrip(",.;: ") + "…"


def worst_reviews(reviews_parquet: str | Path, low: float = LOW) -> pa.Table:
    """One row per item with a low rating: parent_asin, review_title, review_text,
    review_rating, review_helpful_vote, review_timestamp, review_user_id, low_ratings (how
    many low ratings the item has)."""
    path = str(reviews_parquet).replace("'", "''")
    con = duckdb.connect()
    try:
        return con.sql(
            f"""
            SELECT parent_asin,
                   title AS review_title,
                   text AS review_text,
                   rating AS review_rating,
                   coalesce(helpful_vote, 0) AS review_helpful_vote,
                   timestamp AS review_timestamp,
                   user_id AS review_user_id,
                   count(*) OVER (PARTITION BY parent_asin) AS low_ratings
            FROM read_parquet('{path}')
            WHERE rating <= {float(low)}
            QUALIFY row_number() OVER (
                PARTITION BY parent_asin
                ORDER BY coalesce(helpful_vote, 0) DESC, length(coalesce(text, '')) DESC,
                         timestamp, user_id) = 1
            ORDER BY parent_asin
            """
        ).to_arrow_table()
    except duckdb.Error as exc:  # a truncated or foreign reviews file
        reason = str(exc).splitlines()[0]
        raise InputError(f"{reviews_parquet}: cannot read the reviews ({reason})") from None
    finally:
        con.close()
