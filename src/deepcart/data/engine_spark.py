"""The build pipeline on Apache Spark (``--engine spark``): DuckDB's semantics, row for row.

The semantics are those of :mod:`deepcart.data.engine_duckdb` (docs/data-formats.md): dedup
keeping the earliest review (ties: first in the input) unless the pair has extra reviews (the
latest of those wins), the plain or k-core filters, sampling by
``md5("<seed>:<user_id>")``, items with their first metadata row or a stub. :func:`run_build` has
the DuckDB engine's signature and returns the same counts; ``tests/data/test_engine_spark.py``
checks that both engines write identical tables and counts.

Input order. DuckDB breaks dedup ties by ``ord = (file_index << 40) + file_row_number``. Spark's
``monotonically_increasing_id`` is not that (it encodes the partition, and a file may be split
across partitions). Spark's Parquet reader exposes ``_metadata.row_index``, the row's position in
its file whatever the split, so ``ord`` is the same expression, computed by the executors while
they read: no staging copy of the input, no single-partition read. Its cost is one extra long
column in the narrow working set (keys and ``ord`` only; the text columns are read again only for
the final write). The item metadata's "first occurrence" uses the same row index.

Outputs. Spark writes the sorted result into a staging directory
(:func:`deepcart.data.spark_session.staging_uri`): a global sort range-partitions the rows, so
part ``n`` holds the n-th range, each sorted. The driver then streams the parts, in part order,
into the single Parquet file of the tagged dataset with a ``pyarrow.parquet.ParquetWriter`` in the
canonical schema (``schema_for(kind)``, kind metadata included), checking on the way that every
part starts at or after the end of the one before. That last pass is sequential on the driver and
reads the output once (bounded memory: one record batch at a time); it is the price of the
dataset's single-file format, which every later stage reads.

Intermediate results (the deduplicated keys, each k-core round, ...) are persisted in executor
memory and disk and counted once (the count is a report number anyway), and released at the end.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from deepcart.data.engine_duckdb import EXTRA_ORD, BuildParams
from deepcart.data.schema import ITEM_SCHEMA, REVIEW_SCHEMA, schema_for
from deepcart.data.spark_session import DEFAULT_MASTER, arrow_filesystem, get_spark, staging_uri
from deepcart.data.spark_session import to_uri as _to_uri
from deepcart.errors import DataFormatError, DeepCartError, InputError
from deepcart.fsutil import atomic_path, make_dirs

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from deepcart.data.ingest import IngestReport

log = logging.getLogger(__name__)

__all__ = ["BuildParams", "describe_uri", "ingest_files", "run_build"]

_BATCH_ROWS = 256 * 1024


def _spark_type(t: pa.DataType) -> str:
    if pa.types.is_list(t):
        return f"array<{_spark_type(t.value_type)}>"
    return {
        pa.string(): "string",
        pa.float32(): "float",
        pa.float64(): "double",
        pa.int32(): "int",
        pa.int64(): "bigint",
        pa.bool_(): "boolean",
    }[t]


def _read(spark: SparkSession, path: Path | str, schema: pa.Schema, file_index: int) -> DataFrame:
    """The canonical columns of one Parquet file, plus ``ord``: DuckDB's
    ``(file_index << 40) + file_row_number``."""
    from pyspark.sql import functions as F

    df = spark.read.parquet(_to_uri(path))
    missing = [n for n in schema.names if n not in df.columns]
    if missing:
        raise InputError(f"{path}: not canonical Parquet (missing columns {', '.join(missing)})")
    cols = [F.col(f"`{f.name}`").cast(_spark_type(f.type)).alias(f.name) for f in schema]
    ord_ = (F.lit(file_index).cast("bigint") * F.lit(1 << 40)) + F.col("_metadata.row_index")
    return df.select(*cols, ord_.alias("ord"))


def _count(df: DataFrame) -> int:
    return int(df.count())


def _since(started: float) -> float:
    return time.perf_counter() - started


def _tally(df: DataFrame, key: str) -> DataFrame:
    """``key`` and its number of rows ``n`` in ``df``."""
    from pyspark.sql import functions as F

    return df.groupBy(key).agg(F.count(F.lit(1)).alias("n"))


def _passing(tally: DataFrame, minimum: int, key: str, keep_n: bool = False) -> DataFrame:
    """The keys of ``tally`` with at least ``minimum`` rows."""
    from pyspark.sql import functions as F

    passing = tally.where(F.col("n") >= minimum)
    return passing if keep_n else passing.select(key)


def _rows_and_sum(tally: DataFrame) -> tuple[int, int]:
    """The number of keys in ``tally`` and the sum of their counts ``n``."""
    from pyspark.sql import functions as F

    row = tally.agg(F.count(F.lit(1)), F.sum("n")).first()
    return (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)


def run_build(
    reviews: Path | list[Path],
    items: Path | None,
    out_reviews: Path,
    out_items: Path,
    params: BuildParams,
    *,
    temp_dir: Path,
    echo: Callable[[str], None] = print,
    spark_master: str = DEFAULT_MASTER,
    spark: SparkSession | None = None,
) -> dict[str, int]:
    """Run the build on canonical Parquet inputs with Spark; write the two outputs; return every
    count (the same keys and values as :func:`deepcart.data.engine_duckdb.run_build`).

    ``reviews`` may be several files, read as one input in that order: a pair with reviews from
    the extra files (all but the first) keeps the latest of those, else the earliest of the first
    file's (ties: the first in the input). Inputs may be local paths or URIs Spark reads
    (``s3a://``, ``gs://``, ...).
    ``spark``: a session to use; else the active one, or a new one for ``spark_master``.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    spark = spark or get_spark(spark_master)
    files = [reviews] if isinstance(reviews, Path | str) else list(reviews)
    counts: dict[str, int] = {}
    holding: list[DataFrame] = []

    def keep(df: DataFrame, count: bool = True) -> tuple[DataFrame, list[int]]:
        """Persist ``df`` (memory and disk); with ``count``, materialise it and return its number
        of rows (one job); else it is materialised where it is first used."""
        from pyspark import StorageLevel

        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        holding.append(df)
        if not count:
            return df, []
        started = time.perf_counter()
        n = _count(df)
        log.debug("spark build: step %d (%d rows) in %.1f s", len(holding), n, _since(started))
        return df, [n]

    raw = _read(spark, files[0], REVIEW_SCHEMA, 0)
    for i, f in enumerate(files[1:], start=1):
        raw = raw.unionByName(_read(spark, f, REVIEW_SCHEMA, i))
    staging: str | None = None
    try:
        # Dedup on the narrow key set: per (user, item) the first row in DuckDB's order (extra
        # reviews first, the latest of them first; then the earliest of the first file). min of
        # a struct compares field by field, so this is "ORDER BY <those keys> ... = 1" as a hash
        # aggregate instead of a window sort.
        extra = F.col("ord") >= F.lit(EXTRA_ORD)
        first = F.min(
            F.struct(
                F.when(extra, 0).otherwise(1).alias("p"),
                F.when(extra, -F.col("timestamp")).otherwise(F.col("timestamp")).alias("t"),
                F.when(extra, -F.col("ord")).otherwise(F.col("ord")).alias("o"),
                F.col("ord").alias("ord"),
            )
        ).alias("m")
        dedup, (n_dedup,) = keep(
            raw.select("user_id", "parent_asin", "timestamp", "ord")
            .groupBy("user_id", "parent_asin")
            .agg(first)
            .select("user_id", "parent_asin", F.col("m.ord").alias("ord"))
        )
        counts["reviews_read"] = _count(raw)
        counts["ratings_found"] = n_dedup
        counts["duplicates_dropped"] = counts["reviews_read"] - counts["ratings_found"]
        counts.update(extra_reviews_read=0, extra_reviews_superseded=0, ratings_replaced=0)
        if len(files) > 1:
            keys = ["user_id", "parent_asin"]
            extra_keys, (n_pairs,) = keep(
                raw.where(extra).groupBy(*keys).agg(F.count(F.lit(1)).alias("n"))
            )
            row = extra_keys.agg(F.sum("n")).first()
            counts["extra_reviews_read"] = int(row[0] or 0) if row else 0
            counts["extra_reviews_superseded"] = counts["extra_reviews_read"] - n_pairs
            counts["ratings_replaced"] = _count(
                extra_keys.join(raw.where(~extra).select(*keys), keys, "left_semi")
            )
        # Filters are "keep the keys whose per-user / per-item count passes": a group-by count
        # (combined map-side, so only one row per key and task is shuffled) and a semi join
        # (broadcast when the passing keys are small, as items usually are).
        user_n, (n_users,) = keep(_tally(dedup, "user_id"))
        item_n, (n_items,) = keep(_tally(dedup, "parent_asin"))
        counts["users_found"] = n_users
        counts["items_found"] = n_items

        mi, mr = params.min_interactions, params.min_ratings
        if params.k_core:
            # Counts over windows, not group-by + joins: each round's plan then holds the
            # previous round once (the joins would hold it three times: 3^rounds plan nodes).
            by_user, by_item = Window.partitionBy("user_id"), Window.partitionBy("parent_asin")
            cur, n_before = dedup, n_dedup
            rounds = 0
            while True:
                nxt, (n_after,) = keep(
                    cur.withColumn("nu", F.count(F.lit(1)).over(by_user))
                    .withColumn("ni", F.count(F.lit(1)).over(by_item))
                    .where((F.col("nu") >= mi) & (F.col("ni") >= mr))
                    .select("user_id", "parent_asin", "ord")
                )
                if cur is not dedup:
                    cur.unpersist()
                cur = nxt
                if n_after == n_before:
                    break
                rounds += 1
                n_before = n_after
            counts["k_core_rounds"] = rounds
            filtered, n_filtered = cur, n_after
            row = filtered.agg(
                F.count_distinct(F.col("user_id")), F.count_distinct(F.col("parent_asin"))
            ).first()
            users_eligible, n_items_left = (int(row[0]), int(row[1])) if row else (0, 0)
            counts["items_dropped_min_ratings"] = counts["items_found"] - n_items_left
            counts["users_dropped_min_interactions"] = counts["users_found"] - users_eligible
            counts["reviews_dropped_k_core"] = counts["ratings_found"] - n_filtered
        else:
            items_ok = _passing(item_n, mr, "parent_asin", keep_n=True)
            n_items_left, n_by_item = _rows_and_sum(items_ok)
            counts["items_dropped_min_ratings"] = counts["items_found"] - n_items_left
            counts["reviews_dropped_no_item"] = counts["ratings_found"] - n_by_item
            kept_items = dedup.join(items_ok.select("parent_asin"), "parent_asin", "left_semi")
            users_ok, _ = keep(
                _passing(_tally(kept_items, "user_id"), mi, "user_id", keep_n=True), count=False
            )
            users_eligible, n_filtered = _rows_and_sum(users_ok)
            filtered, _ = keep(
                kept_items.join(users_ok.select("user_id"), "user_id", "left_semi"), count=False
            )
            # Includes users left with no review at all by the item filter.
            counts["users_dropped_min_interactions"] = counts["users_found"] - users_eligible
            counts["reviews_dropped_no_user"] = n_by_item - n_filtered

        counts["users_eligible"] = users_eligible
        users_written = users_eligible
        if params.sample_n and params.sample_n < users_eligible:
            # md5 of the UTF-8 bytes of "<seed>:<user_id>" as lowercase hex, then the user id:
            # byte-wise string order in both engines, so the same users.
            key = F.md5(F.concat(F.lit(f"{int(params.seed)}:"), F.col("user_id")))
            sampled = (
                filtered.select("user_id")
                .distinct()
                .orderBy(key, F.col("user_id"))
                .limit(int(params.sample_n))
            )
            final_keys, (n_final,) = keep(filtered.join(sampled, "user_id", "left_semi"))
            users_written = int(params.sample_n)  # each sampled user has a surviving review
            counts["users_dropped_not_sampled"] = users_eligible - params.sample_n
            counts["reviews_dropped_not_sampled"] = n_filtered - n_final
        else:
            final_keys = filtered
            counts["users_dropped_not_sampled"] = 0
            counts["reviews_dropped_not_sampled"] = 0

        final_items, (n_final_items,) = keep(final_keys.select("parent_asin").distinct())
        if items is not None:
            meta_raw = _read(spark, items, ITEM_SCHEMA, 0)
            first_row = Window.partitionBy("parent_asin").orderBy("ord")
            meta = (
                meta_raw.withColumn("rn", F.row_number().over(first_row))
                .where(F.col("rn") == 1)
                .drop("rn", "ord")
            )
            meta_keys, (counts["meta_items"],) = keep(meta.select("parent_asin"))
            counts["meta_rows_read"] = _count(meta_raw)
            counts["items_without_metadata"] = _count(
                final_items.join(meta_keys, "parent_asin", "left_anti")
            )
        else:
            counts["meta_rows_read"] = 0
            counts["meta_items"] = 0
            counts["items_without_metadata"] = n_final_items
            meta = None
            meta_keys = None
        known = dedup.select("parent_asin")
        if meta_keys is not None:
            known = known.union(meta_keys)
        # Every item known before the final step (reviewed or in the metadata) not written.
        counts["items_dropped_no_review"] = (
            _count(known.distinct().join(final_items, "parent_asin", "left_anti"))
            - counts["items_dropped_min_ratings"]
        )

        staging = staging_uri(spark, temp_dir)
        reviews_out = (
            raw.join(final_keys.select("ord"), "ord", "left_semi")
            .orderBy("user_id", "timestamp", "parent_asin", "ord")
            .select(*REVIEW_SCHEMA.names)
        )
        counts["reviews_written"] = _write(
            reviews_out,
            f"{staging}/reviews",
            "reviews",
            out_reviews,
            ("user_id", "timestamp", "parent_asin"),
        )
        if meta is not None:
            items_out = final_items.join(meta, "parent_asin", "left")
        else:
            items_out = final_items.select(
                "parent_asin",
                *(
                    F.lit(None).cast(_spark_type(f.type)).alias(f.name)
                    for f in ITEM_SCHEMA
                    if f.name != "parent_asin"
                ),
            )
        counts["items_written"] = _write(
            items_out.orderBy("parent_asin").select(*ITEM_SCHEMA.names),
            f"{staging}/items",
            "items",
            out_items,
            ("parent_asin",),
        )
        counts["users_written"] = users_written
    finally:
        if staging is not None:
            _remove(staging)
        try:
            for df in holding:
                df.unpersist()
        except Exception as exc:  # after Ctrl-C or a failed job the JVM may not answer: the
            # error that stopped the build is the one to report (the cache goes with the JVM)
            log.debug("spark build: could not release the cached steps: %s", exc)
    return counts


def describe_uri(uri: str, kind: str, flag: str) -> dict[str, Any]:
    """The manifest record of an input named by URI (``s3a://``, ``gs://``, ``hdfs://``,
    ``file://``): it must be canonical Parquet of ``kind`` (raw files are ingested first, on a
    machine that can read them); its bytes are read once, by the driver, for the sha256, as for
    a local input."""
    import pyarrow.fs as pafs

    from deepcart.data.schema import canonical_problem

    try:
        fs, path = arrow_filesystem(uri)
        info = fs.get_file_info(path)
        if info.type != pafs.FileType.File:
            raise InputError(f"{flag}: no such file: {uri}")
        with fs.open_input_file(path) as fh:
            try:
                schema = pq.read_schema(fh)
            except pa.ArrowInvalid:  # raw JSON or CSV
                schema = None
        problem = "not a Parquet file" if schema is None else canonical_problem(schema, kind)
        if problem is not None:
            raise InputError(
                f"{flag}: {uri} is not canonical DeepCart {kind} Parquet ({problem}); a file "
                "named by URI must be ingested first (deepcart ingest, then copy the Parquet there)"
            )
        digest = hashlib.sha256()
        with fs.open_input_stream(path) as fh:
            while block := fh.read(1 << 22):
                digest.update(block)
    except InputError:
        raise
    except Exception as exc:  # no credentials, no such bucket, a filesystem pyarrow lacks
        raise InputError(f"{flag}: cannot read {uri} ({exc})") from None
    return {
        "path": uri,
        "bytes": int(info.size),
        "sha256": digest.hexdigest(),
        "format": "deepcart-parquet",
    }


def _write(df: DataFrame, staged: str, kind: str, out: Path, sort_keys: Sequence[str]) -> int:
    """Write the sorted ``df`` through ``staged`` (Spark part files) into the single Parquet file
    ``out`` in the canonical schema; return the number of rows."""
    started = time.perf_counter()
    df.write.mode("overwrite").parquet(staged)
    log.debug("spark build: %s sorted and staged in %.1f s", kind, _since(started))
    started = time.perf_counter()
    fs, root = arrow_filesystem(staged)
    import pyarrow.fs as pafs

    parts = sorted(
        (
            info.path
            for info in fs.get_file_info(pafs.FileSelector(root))
            if info.type == pafs.FileType.File
            and info.base_name.startswith("part-")
            and info.base_name.endswith(".parquet")
        ),
        key=lambda p: p.rsplit("/", 1)[-1],
    )
    schema = schema_for(kind)
    rows = 0
    last: tuple[Any, ...] | None = None
    with atomic_path(out) as tmp:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for part in parts:
                with fs.open_input_file(part) as fh:
                    pf = pq.ParquetFile(fh)
                    for batch in pf.iter_batches(batch_size=_BATCH_ROWS):
                        if batch.num_rows == 0:
                            continue
                        table = pa.Table.from_batches([batch]).cast(schema)
                        head = tuple(table[k][0].as_py() for k in sort_keys)
                        if last is not None and head < last:  # pragma: no cover - Spark bug
                            raise DeepCartError(
                                f"spark engine: staged part {part} is out of order "
                                f"({head} after {last}); please report this"
                            )
                        last = tuple(table[k][-1].as_py() for k in sort_keys)
                        writer.write_table(table)
                        rows += table.num_rows
    log.debug("spark build: %s combined (%d parts) in %.1f s", kind, len(parts), _since(started))
    return rows


def _remove(uri: str) -> None:
    try:
        fs, root = arrow_filesystem(uri)
        fs.delete_dir(root)
    except Exception as exc:  # staging left behind is harmless; say so and go on
        log.warning("could not remove the Spark staging directory %s: %s", uri, exc)


# --------------------------------------------------------------------------- ingest


def _ingest_task(args: tuple[str, str, str, list[str] | None]) -> dict[str, Any]:
    """One file's ingest inside a Spark task (runs on an executor's Python worker)."""
    from deepcart.data.ingest import ingest_file

    path, output_dir, on_bad_lines, csv_columns = args
    try:
        r = ingest_file(path, output_dir, on_bad_lines=on_bad_lines, csv_columns=csv_columns)
    except DataFormatError as exc:
        return {"error": "DataFormatError", "path": exc.path, "line": exc.line, "msg": exc.reason}
    except DeepCartError as exc:
        return {"error": type(exc).__name__, "msg": str(exc)}
    return {
        "source": str(r.source),
        "output": str(r.output),
        "kind": r.kind,
        "source_format": r.source_format,
        "lines_read": r.lines_read,
        "rows_written": r.rows_written,
        "skipped": dict(r.skipped),
    }


def ingest_files(
    paths: Sequence[str | Path],
    output_dir: str | Path,
    *,
    on_bad_lines: str = "error",
    csv_columns: Sequence[str] | None = None,
    spark_master: str = DEFAULT_MASTER,
    spark: SparkSession | None = None,
) -> list[IngestReport]:
    """``ingest_file`` for each path, one Spark task per file (files in parallel).

    Each task runs the same single-pass PyArrow ingest as ``--engine duckdb`` (same validation,
    same line numbers, same outputs); Spark only distributes the files. On a cluster the inputs
    and ``output_dir`` must be on a filesystem every executor mounts, and deepcart must be
    installed in the executors' Python. The first file's error (in the order given) is raised.
    """
    from deepcart.data.ingest import IngestReport, output_path_for

    if on_bad_lines not in ("error", "skip"):
        raise InputError(f"--on-bad-lines: expected 'error' or 'skip', got {on_bad_lines!r}")
    local = [Path(p) for p in paths]
    for p in local:  # before Spark starts; the messages of ingest_file
        if not p.exists():
            raise InputError(f"{p}: no such file")
        if not p.is_file():
            raise InputError(f"{p}: not a file")
    out = make_dirs(output_dir, "--output-dir").resolve()
    if not local:
        return []
    spark = spark or get_spark(spark_master)
    cols = list(csv_columns) if csv_columns is not None else None
    tasks = [(str(p.resolve()), str(out), on_bad_lines, cols) for p in local]
    results = spark.sparkContext.parallelize(tasks, len(tasks)).map(_ingest_task).collect()
    reports = []
    for given, (resolved, *_), res in zip(local, tasks, results, strict=True):
        if res.get("error") == "DataFormatError":  # name the file as the user did
            where = str(given) if res["path"] == resolved else res["path"]
            raise DataFormatError(where, res["line"], res["msg"])
        if "error" in res:  # the paths as the user named them, as the local ingest says
            shown = str(Path(output_dir))
            msg = str(res["msg"]).replace(resolved, str(given))
            msg = msg.replace(str(out) + os.sep, "" if shown == "." else shown + os.sep)
            raise InputError(msg)
        reports.append(
            IngestReport(
                source=given,
                output=output_path_for(given, output_dir),
                kind=res["kind"],
                source_format=res["source_format"],
                lines_read=res["lines_read"],
                rows_written=res["rows_written"],
                skipped=res["skipped"],
            )
        )
    return reports
