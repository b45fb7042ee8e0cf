"""The dataset's statistics for the report: small aggregates computed by DuckDB over Parquet.

Memory stays bounded by the number of distinct values (items, months, counts), never by the
number of reviews; review texts are read only for the handful of worst products.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from deepcart.data.mining import worst_reviews
from deepcart.errors import InputError
from deepcart.modes import LOW

#: How many categories a breakdown shows (the rest are summed as "other").
TOP_CATEGORIES = 12
#: Price bands in USD, [low, high); None: no upper bound.
PRICE_BANDS = ((0, 10), (10, 25), (25, 50), (50, 100), (100, 250), (250, None))


def _sql_str(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


@dataclass
class Tail:
    """A count distribution (reviews per item or per user) from its frequency table."""

    entities: int
    total: int
    mean: float
    median: float
    max: int
    top20_share: float  # share of all reviews held by the top 20% of entities
    ranks: list[int] = field(default_factory=list)  # step points of the rank-frequency curve
    values: list[int] = field(default_factory=list)


def tail(freq: list[tuple[int, int]]) -> Tail:
    """``freq``: (count, how many entities have that count)."""
    freq = sorted(freq, reverse=True)
    entities = sum(m for _, m in freq)
    total = sum(n * m for n, m in freq)
    if not entities:
        return Tail(0, 0, math.nan, math.nan, 0, math.nan)
    top = math.ceil(0.2 * entities)
    taken = held = 0
    ranks: list[int] = []
    values: list[int] = []
    median_rank = (entities + 1) // 2
    median = math.nan
    for n, m in freq:
        if taken < top:
            held += n * min(m, top - taken)
        if taken < median_rank <= taken + m:
            median = float(n)
        ranks += [taken + 1, taken + m]
        values += [n, n]
        taken += m
    return Tail(
        entities=entities,
        total=total,
        mean=total / entities,
        median=median,
        max=freq[0][0],
        top20_share=held / total if total else math.nan,
        ranks=ranks,
        values=values,
    )


class DatasetStats:
    """DuckDB views over one tagged dataset; every method returns small aggregates."""

    def __init__(self, reviews: Path, items: Path) -> None:
        self.reviews_path = reviews
        self.con = duckdb.connect()
        for name, path in (("reviews", reviews), ("items", items)):
            try:
                self.con.execute(
                    f"CREATE VIEW {name} AS SELECT * FROM read_parquet({_sql_str(path)})"
                )
            except duckdb.Error as exc:  # a truncated or foreign file in the dataset folder
                self.con.close()
                reason = str(exc).splitlines()[0]
                raise InputError(
                    f"{path}: not a readable Parquet file ({reason}); rebuild the dataset"
                ) from None

    def close(self) -> None:
        self.con.close()

    def rows(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()

    def one(self, sql: str) -> tuple:
        return self.con.execute(sql).fetchone()

    def overview(self) -> dict[str, Any]:
        r = self.one(
            """SELECT count(*), count(DISTINCT user_id), count(DISTINCT parent_asin),
                      min(timestamp), max(timestamp), avg(rating),
                      count(*) FILTER (WHERE rating <= 2), count(verified_purchase),
                      count(*) FILTER (WHERE verified_purchase),
                      sum(coalesce(helpful_vote, 0)), count(text), median(length(text))
               FROM reviews"""
        )
        keys = ("reviews users items first last mean_rating low verified_known verified "
                "helpful with_text median_text_chars").split()  # fmt: skip
        out = dict(zip(keys, r, strict=True))
        out["items_with_metadata"], out["items_with_price"] = self.one(
            "SELECT count(title), count(price) FROM items"
        )
        return out

    def ratings(self) -> list[tuple[float, int]]:
        return self.rows("SELECT rating, count(*) FROM reviews GROUP BY 1 ORDER BY 1")

    def tail(self, column: str) -> Tail:
        return tail(
            self.rows(
                f"SELECT n, count(*) FROM (SELECT count(*) AS n FROM reviews GROUP BY {column}) "
                "GROUP BY n"
            )
        )

    def months(self) -> list[tuple[datetime, int, float]]:
        return self.rows(
            """SELECT date_trunc('month', epoch_ms(timestamp)) AS m, count(*), avg(rating)
               FROM reviews GROUP BY m ORDER BY m"""
        )

    def prices(self) -> list[float]:
        col = self.con.execute("SELECT price FROM items WHERE price > 0").fetchnumpy()["price"]
        return [float(x) for x in col]

    def price_bands(self) -> list[tuple[str, int, int, float]]:
        cases = []
        for lo, hi in PRICE_BANDS:
            label = f"${lo}+" if hi is None else f"${lo}-{hi}"
            cond = f"i.price >= {lo}" + ("" if hi is None else f" AND i.price < {hi}")
            cases.append(f"WHEN {cond} THEN '{label}'")
        order = ", ".join(
            f"'{'$' + str(lo) + '+' if hi is None else f'${lo}-{hi}'}'" for lo, hi in PRICE_BANDS
        )
        return self.rows(
            f"""WITH per_item AS (
                    SELECT parent_asin, count(*) AS n, sum(rating) AS s
                    FROM reviews GROUP BY parent_asin)
                SELECT CASE {" ".join(cases)} ELSE 'no price' END AS band,
                       count(*) AS items, sum(p.n) AS reviews, sum(p.s) / sum(p.n) AS mean
                FROM per_item p LEFT JOIN items i USING (parent_asin)
                GROUP BY band
                ORDER BY list_position([{order}, 'no price'], band)"""
        )

    def categories(self, expr: str) -> list[tuple[str, int, int, float]]:
        """(category, items, reviews, mean rating) by ``expr`` over the item table, the largest
        TOP_CATEGORIES by reviews and the rest summed as 'other'."""
        rows = self.rows(
            f"""WITH per_item AS (
                    SELECT parent_asin, count(*) AS n, sum(rating) AS s
                    FROM reviews GROUP BY parent_asin)
                SELECT coalesce({expr}, '(unknown)') AS c, count(*), sum(p.n), sum(p.s)
                FROM per_item p LEFT JOIN items i USING (parent_asin)
                GROUP BY c ORDER BY 3 DESC, 1"""
        )
        head, rest = rows[:TOP_CATEGORIES], rows[TOP_CATEGORIES:]
        if rest:
            head.append(
                (
                    f"other ({len(rest)} categories)",
                    sum(r[1] for r in rest),
                    sum(r[2] for r in rest),
                    sum(r[3] for r in rest),
                )
            )
        return [(c, items, n, s / n) for c, items, n, s in head]

    def verified(self) -> list[tuple[bool | None, float, int, float]]:
        return self.rows(
            """SELECT verified_purchase, rating, count(*), avg(coalesce(helpful_vote, 0))
               FROM reviews GROUP BY 1, 2 ORDER BY 1, 2"""
        )

    def worst_products(self, min_engagement: int, n: int) -> list[dict[str, Any]]:
        """The ``n`` items with at least ``min_engagement`` ratings and the lowest mean rating
        (more ratings first on a tie), each with its most helpful low-rated review."""
        rows = self.con.execute(
            f"""SELECT s.parent_asin, s.n, s.mean, s.low, i.title, i.store, i.main_category,
                       i.price
                FROM (SELECT parent_asin, count(*) AS n, avg(rating) AS mean,
                             count(*) FILTER (WHERE rating <= {float(LOW)}) AS low
                      FROM reviews GROUP BY parent_asin HAVING count(*) >= ?) s
                LEFT JOIN items i USING (parent_asin)
                ORDER BY s.mean, s.n DESC, s.parent_asin
                LIMIT ?""",
            [min_engagement, n],
        ).fetchall()
        keys = "parent_asin n mean low title store main_category price".split()
        products = [dict(zip(keys, r, strict=True)) for r in rows]
        if not products:
            return products
        # worst_reviews over these items' reviews only: its selection rule, bounded memory.
        with tempfile.TemporaryDirectory(prefix="deepcart-report-") as tmp:
            subset = Path(tmp) / "worst.parquet"
            self.con.execute(
                f"COPY (SELECT * FROM reviews WHERE parent_asin IN "
                f"(SELECT unnest(?::VARCHAR[]))) TO {_sql_str(subset)} (FORMAT parquet)",
                [[p["parent_asin"] for p in products]],
            )
            mined = {r["parent_asin"]: r for r in worst_reviews(subset).to_pylist()}
        for p in products:
            p["complaint"] = mined.get(p["parent_asin"])
        return products


#: The build counts the funnel needs (``manifest.json``'s ``counts``) and those it reads if there.
FUNNEL_COUNTS = ("reviews_read", "items_dropped_min_ratings", "users_dropped_min_interactions",
                 "items_dropped_no_review", "reviews_written", "items_written")  # fmt: skip
FUNNEL_OPTIONAL = ("duplicates_dropped", "reviews_dropped_k_core", "reviews_dropped_no_item",
                   "reviews_dropped_no_user", "users_dropped_not_sampled",
                   "reviews_dropped_not_sampled", "users_written")  # fmt: skip


def check_manifest(manifest: dict[str, Any], path: Path) -> None:
    """An InputError naming ``path`` where the parts of a manifest the report reads have the
    wrong shape: ``counts`` (when there: an object with every count of :data:`FUNNEL_COUNTS`,
    whole numbers >= 0), ``params`` (an object) and ``report`` (a list of strings)."""

    def bad(what: str) -> InputError:
        return InputError(f"{path}: {what}; rebuild the dataset")

    def kind(value: Any) -> str:
        return "null" if value is None else type(value).__name__

    params = manifest.get("params", {})
    if not isinstance(params, dict):
        raise bad(f"'params': expected a JSON object, got {kind(params)}")
    report = manifest.get("report", [])
    if not isinstance(report, list) or not all(isinstance(x, str) for x in report):
        raise bad("'report': expected a list of strings (the lines build printed)")
    if "counts" not in manifest:
        return  # nothing to draw the funnel from: the report says so
    counts = manifest["counts"]
    if not isinstance(counts, dict):
        raise bad(f"'counts': expected a JSON object, got {kind(counts)}")
    missing = [key for key in FUNNEL_COUNTS if key not in counts]
    if missing:
        raise bad(f"'counts': missing {', '.join(missing)}")
    for key in FUNNEL_COUNTS + FUNNEL_OPTIONAL:
        value = counts.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad(f"'counts': {key}: expected a whole number >= 0, got {value!r}")


def funnel(counts: dict[str, int], params: dict[str, Any]) -> tuple[list, list]:
    """(chart steps: label and reviews left, table rows: step, count key, count, what)."""
    c = counts
    left = c["reviews_read"]
    steps = [("read", left)]
    table = [("read", "reviews_read", left, "reviews in the input")]

    def drop(label: str, key: str, what: str) -> None:
        nonlocal left
        left -= c.get(key, 0)
        steps.append((label, left))
        table.append((label, key, c.get(key, 0), what))

    drop("deduplicated", "duplicates_dropped", "duplicate (user, item) reviews dropped")
    if params.get("k_core"):
        table.append(
            ("k-core", "items_dropped_min_ratings", c["items_dropped_min_ratings"],
             f"items dropped (<{params.get('min_ratings')} ratings)")
        )  # fmt: skip
        table.append(
            ("k-core", "users_dropped_min_interactions", c["users_dropped_min_interactions"],
             f"users dropped (<{params.get('min_interactions')} reviews)")
        )  # fmt: skip
        drop("k-core", "reviews_dropped_k_core", "reviews dropped (no user or item associated)")
    else:
        table.append(
            ("item filter", "items_dropped_min_ratings", c["items_dropped_min_ratings"],
             f"items dropped (<{params.get('min_ratings')} ratings)")
        )  # fmt: skip
        drop("item filter", "reviews_dropped_no_item", "reviews dropped (no item associated)")
        table.append(
            ("user filter", "users_dropped_min_interactions", c["users_dropped_min_interactions"],
             f"users dropped (<{params.get('min_interactions')} reviews)")
        )  # fmt: skip
        drop("user filter", "reviews_dropped_no_user", "reviews dropped (no user associated)")
    if params.get("sample_n"):
        table.append(
            ("sampling", "users_dropped_not_sampled", c.get("users_dropped_not_sampled", 0),
             "users not sampled")
        )  # fmt: skip
        drop("sampling", "reviews_dropped_not_sampled", "reviews of the users not sampled")
    table.append(
        ("items", "items_dropped_no_review", c["items_dropped_no_review"],
         "items dropped (no review associated)")
    )  # fmt: skip
    steps.append(("written", c["reviews_written"]))
    table.append(("written", "reviews_written", c["reviews_written"], "reviews written"))
    table.append(("written", "users_written", c.get("users_written"), "users written"))
    table.append(("written", "items_written", c["items_written"], "items written"))
    return steps, table
