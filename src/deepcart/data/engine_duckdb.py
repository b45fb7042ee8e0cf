"""The build pipeline on DuckDB (the default engine).

The semantics, which every engine must reproduce row for row (docs/data-formats.md):

1. Deduplicate (user_id, parent_asin): keep the earliest review; equal timestamps keep the one
   that comes first in the input (the official rule: a stable sort by timestamp). Extra reviews
   (every input file after the first: ``--extra-reviews``, such as those the service stored)
   take precedence: a pair with an extra review keeps the latest extra one (latest timestamp,
   then last in the input), whatever the first file holds: a user's newest opinion wins.
2. Plain mode: drop items with fewer than ``min_ratings`` ratings and their reviews; then drop
   users with fewer than ``min_interactions`` of the remaining reviews and their reviews.
   k-core mode: repeat "keep reviews whose user has >= min_interactions and whose item has
   >= min_ratings reviews, both counted on the current set" until nothing changes.
3. Sample ``sample_n`` users (0 = all): the users with the smallest md5("<seed>:<user_id>"),
   a rule any engine computes identically.
4. Items: metadata rows (first occurrence per parent_asin) of the surviving reviewed items, plus
   a stub row (parent_asin only) for a reviewed item the metadata lacks.
Outputs are sorted (reviews by user_id, timestamp, parent_asin; items by parent_asin), so the same
inputs and seed give the same rows in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from deepcart.data.schema import ITEM_SCHEMA, REVIEW_SCHEMA, schema_for
from deepcart.fsutil import atomic_path

_REVIEW_COLS = ", ".join(REVIEW_SCHEMA.names)
_ITEM_COLS = ", ".join(ITEM_SCHEMA.names)

#: ``ord`` is ``(file_index << 40) + file_row_number``: at or above this, an extra review.
EXTRA_ORD = 1 << 40
_IS_EXTRA = f"(ord >= {EXTRA_ORD}::BIGINT)"
#: The dedup order (the first row wins): extra reviews first, the latest of them first; then the
#: first file's reviews, the earliest first. Spark's engine sorts by the same three keys.
_PRECEDENCE = (
    f"CASE WHEN {_IS_EXTRA} THEN 0 ELSE 1 END, "
    f"CASE WHEN {_IS_EXTRA} THEN -timestamp ELSE timestamp END, "
    f"CASE WHEN {_IS_EXTRA} THEN -ord ELSE ord END"
)


@dataclass(frozen=True)
class BuildParams:
    min_interactions: int
    min_ratings: int
    sample_n: int
    seed: int
    k_core: bool


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    rows = con.execute(sql).fetchall()
    return int(rows[0][0] or 0) if rows else 0


def _write(con: duckdb.DuckDBPyConnection, sql: str, kind: str, out: Path) -> int:
    schema = schema_for(kind)
    rows = 0
    with atomic_path(out) as tmp:
        reader = con.sql(sql).to_arrow_reader(batch_size=256 * 1024)
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch.cast(schema))
                rows += batch.num_rows
    return rows


def run_build(
    reviews: Path | list[Path],
    items: Path | None,
    out_reviews: Path,
    out_items: Path,
    params: BuildParams,
    *,
    temp_dir: Path,
    echo: Callable[[str], None] = print,
) -> dict[str, int]:
    """Run the build on canonical Parquet inputs; write the two outputs; return every count.

    ``reviews`` may be several files: the dataset's reviews, then extra reviews (such as those
    the service stored), read as one input in that order. A (user, item) pair keeps its latest
    extra review when it has one (a later timestamp, then a later place in the input), else its
    earliest review of the first file (module docstring, step 1).
    """
    files = [reviews] if isinstance(reviews, Path) else list(reviews)
    con = duckdb.connect()
    con.execute(f"SET temp_directory = {_quote(temp_dir)}")
    con.execute("SET preserve_insertion_order = true")
    counts: dict[str, int] = {}

    con.execute(
        " UNION ALL ".join(
            f"""SELECT {_REVIEW_COLS}, ({i}::BIGINT << 40) + file_row_number AS ord
            FROM read_parquet({_quote(f)}, file_row_number = true)"""
            for i, f in enumerate(files)
        ).join(["CREATE TEMP VIEW raw AS ", ""])
    )
    counts["reviews_read"] = _one(con, "SELECT count(*) FROM raw")
    # Narrow working set: only keys, never the text columns, until the final write.
    con.execute(
        f"""CREATE TEMP TABLE dedup AS
        SELECT user_id, parent_asin, ord FROM raw
        QUALIFY row_number() OVER (PARTITION BY user_id, parent_asin
                                   ORDER BY {_PRECEDENCE}) = 1"""
    )
    counts["ratings_found"] = _one(con, "SELECT count(*) FROM dedup")
    counts["duplicates_dropped"] = counts["reviews_read"] - counts["ratings_found"]
    counts.update(extra_reviews_read=0, extra_reviews_superseded=0, ratings_replaced=0)
    if len(files) > 1:
        con.execute(
            f"""CREATE TEMP TABLE extra_keys AS
            SELECT user_id, parent_asin, count(*) AS n FROM raw WHERE {_IS_EXTRA}
            GROUP BY user_id, parent_asin"""
        )
        counts["extra_reviews_read"] = _one(con, "SELECT sum(n) FROM extra_keys")
        # Earlier extra reviews of a pair, dropped for its latest one (a re-rating).
        counts["extra_reviews_superseded"] = _one(con, "SELECT sum(n - 1) FROM extra_keys")
        # Pairs of the first file whose review an extra review replaced.
        counts["ratings_replaced"] = _one(
            con,
            f"""SELECT count(*) FROM extra_keys SEMI JOIN
                (SELECT user_id, parent_asin FROM raw WHERE NOT {_IS_EXTRA})
                USING (user_id, parent_asin)""",
        )
    counts["users_found"] = _one(con, "SELECT count(DISTINCT user_id) FROM dedup")
    counts["items_found"] = _one(con, "SELECT count(DISTINCT parent_asin) FROM dedup")

    mi, mr = params.min_interactions, params.min_ratings
    if params.k_core:
        con.execute("CREATE TEMP TABLE cur AS SELECT * FROM dedup")
        rounds = 0
        while True:
            n_before = _one(con, "SELECT count(*) FROM cur")
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE nxt AS
                SELECT user_id, parent_asin, ord FROM (
                    SELECT *, count(*) OVER (PARTITION BY user_id) AS nu,
                              count(*) OVER (PARTITION BY parent_asin) AS ni
                    FROM cur)
                WHERE nu >= {mi} AND ni >= {mr}"""
            )
            n_after = _one(con, "SELECT count(*) FROM nxt")
            con.execute("DROP TABLE cur")
            con.execute("ALTER TABLE nxt RENAME TO cur")
            if n_after == n_before:
                break
            rounds += 1
        counts["k_core_rounds"] = rounds
        con.execute("ALTER TABLE cur RENAME TO filtered")
        counts["items_dropped_min_ratings"] = counts["items_found"] - _one(
            con, "SELECT count(DISTINCT parent_asin) FROM filtered"
        )
        counts["users_dropped_min_interactions"] = counts["users_found"] - _one(
            con, "SELECT count(DISTINCT user_id) FROM filtered"
        )
        counts["reviews_dropped_k_core"] = counts["ratings_found"] - _one(
            con, "SELECT count(*) FROM filtered"
        )
    else:
        con.execute(
            f"""CREATE TEMP TABLE by_item AS
            SELECT d.* FROM dedup d JOIN (
                SELECT parent_asin FROM dedup GROUP BY parent_asin HAVING count(*) >= {mr}
            ) USING (parent_asin)"""
        )
        n_by_item = _one(con, "SELECT count(*) FROM by_item")
        counts["items_dropped_min_ratings"] = counts["items_found"] - _one(
            con, "SELECT count(DISTINCT parent_asin) FROM by_item"
        )
        counts["reviews_dropped_no_item"] = counts["ratings_found"] - n_by_item
        con.execute(
            f"""CREATE TEMP TABLE filtered AS
            SELECT b.* FROM by_item b JOIN (
                SELECT user_id FROM by_item GROUP BY user_id HAVING count(*) >= {mi}
            ) USING (user_id)"""
        )
        # Includes users left with no review at all by the item filter.
        counts["users_dropped_min_interactions"] = counts["users_found"] - _one(
            con, "SELECT count(DISTINCT user_id) FROM filtered"
        )
        counts["reviews_dropped_no_user"] = n_by_item - _one(con, "SELECT count(*) FROM filtered")

    users_eligible = _one(con, "SELECT count(DISTINCT user_id) FROM filtered")
    counts["users_eligible"] = users_eligible
    if params.sample_n and params.sample_n < users_eligible:
        con.execute(
            f"""CREATE TEMP TABLE sampled_users AS
            SELECT user_id FROM (SELECT DISTINCT user_id FROM filtered)
            ORDER BY md5('{int(params.seed)}:' || user_id), user_id
            LIMIT {int(params.sample_n)}"""
        )
        before = _one(con, "SELECT count(*) FROM filtered")
        con.execute(
            """CREATE TEMP TABLE final_keys AS
            SELECT f.* FROM filtered f SEMI JOIN sampled_users s USING (user_id)"""
        )
        counts["users_dropped_not_sampled"] = users_eligible - params.sample_n
        counts["reviews_dropped_not_sampled"] = before - _one(
            con, "SELECT count(*) FROM final_keys"
        )
    else:
        con.execute("CREATE TEMP VIEW final_keys AS SELECT * FROM filtered")
        counts["users_dropped_not_sampled"] = 0
        counts["reviews_dropped_not_sampled"] = 0

    con.execute("CREATE TEMP TABLE final_items AS SELECT DISTINCT parent_asin FROM final_keys")
    n_final_items = _one(con, "SELECT count(*) FROM final_items")
    if items is not None:
        con.execute(
            f"""CREATE TEMP VIEW meta AS
            SELECT {_ITEM_COLS} FROM read_parquet({_quote(items)}, file_row_number = true)
            QUALIFY row_number() OVER (PARTITION BY parent_asin ORDER BY file_row_number) = 1"""
        )
        counts["meta_rows_read"] = _one(con, f"SELECT count(*) FROM read_parquet({_quote(items)})")
        counts["meta_items"] = _one(con, "SELECT count(*) FROM meta")
        counts["items_without_metadata"] = _one(
            con, "SELECT count(*) FROM final_items ANTI JOIN meta USING (parent_asin)"
        )
        meta_src = "meta"
    else:
        counts["meta_rows_read"] = 0
        counts["meta_items"] = 0
        counts["items_without_metadata"] = n_final_items
        stub_cols = ", ".join(
            f"NULL AS {c}" if c != "parent_asin" else "parent_asin" for c in ITEM_SCHEMA.names
        )
        con.execute(f"CREATE TEMP VIEW meta AS SELECT {stub_cols} FROM final_items LIMIT 0")
        meta_src = "meta"
    # Every item known before the final step (reviewed or in the metadata) that is not written.
    counts["items_dropped_no_review"] = (
        _one(
            con,
            f"""SELECT count(*) FROM (
              SELECT parent_asin FROM dedup UNION SELECT parent_asin FROM {meta_src})
            ANTI JOIN final_items USING (parent_asin)""",
        )
        - counts["items_dropped_min_ratings"]
    )

    counts["reviews_written"] = _write(
        con,
        f"""SELECT {", ".join("r." + c for c in REVIEW_SCHEMA.names)}
        FROM raw r SEMI JOIN final_keys k ON r.ord = k.ord
        ORDER BY r.user_id, r.timestamp, r.parent_asin, r.ord""",
        "reviews",
        out_reviews,
    )
    item_cols = ", ".join(
        "f.parent_asin" if c == "parent_asin" else f"m.{c}" for c in ITEM_SCHEMA.names
    )
    counts["items_written"] = _write(
        con,
        f"""SELECT {item_cols} FROM final_items f LEFT JOIN meta m USING (parent_asin)
        ORDER BY f.parent_asin""",
        "items",
        out_items,
    )
    counts["users_written"] = _one(con, "SELECT count(DISTINCT user_id) FROM final_keys")
    con.close()
    return counts
