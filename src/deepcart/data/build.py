"""`deepcart build`: raw files or ingested Parquet -> a tagged dataset.

The tagged dataset is ``<output_dir>/<tag>/`` with ``reviews.parquet``, ``items.parquet`` and
``manifest.json`` (parameters, every printed count, input checksums, DeepCart version). The whole
directory is built beside its final place and swapped in at the end, so a failed build never
leaves a half dataset under the tag. The filtering semantics live in the engine modules
(:mod:`deepcart.data.engine_duckdb`, the default, and :mod:`deepcart.data.engine_spark`, which
reproduces it row for row on Spark); ``engine`` picks one and is recorded in the manifest.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from deepcart import __version__
from deepcart.data.engine_duckdb import BuildParams
from deepcart.data.paths import DatasetPaths, dataset_paths
from deepcart.data.schema import canonical_problem
from deepcart.errors import InputError
from deepcart.fsutil import check_input_file, make_dirs, sha256_file

MANIFEST_VERSION = 1
ENGINES = ("duckdb", "spark")


@dataclass
class BuildReport:
    tag: str
    paths: DatasetPaths
    counts: dict[str, int]
    manifest: dict[str, Any] = field(repr=False)


def _is_canonical_parquet(path: Path, kind: str) -> bool:
    """Whether the engines can read ``path`` as it is; anything else (raw files, and Parquet
    with the kind recorded but other types or nullable required columns, whose rows ingest
    checks line by line) is ingested first."""
    try:
        schema = pq.read_schema(path)
    except Exception:  # not a Parquet file at all: a raw file for ingest
        return False
    return canonical_problem(schema, kind) is None


def _resolve_input(
    path: Path | str,
    kind: str,
    flag: str,
    tmp: Path,
    on_bad_lines: str,
    progress: bool,
    echo: Callable[[str], None],
) -> tuple[Path | str, dict[str, Any]]:
    """Return a canonical Parquet file for ``path`` (ingesting a raw file first) and its record;
    a local ``path`` is one :func:`build_dataset` checked is a file."""
    if isinstance(path, str):  # a URI (s3a://, gs://, ...): the Spark engine reads it in place
        from deepcart.data.engine_spark import describe_uri

        return path, describe_uri(path, kind, flag)
    record: dict[str, Any] = {
        "path": str(path),
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
    }
    if _is_canonical_parquet(path, kind):
        record["format"] = "deepcart-parquet"
        return path, record
    from deepcart.data.ingest import ingest_file

    report = ingest_file(path, tmp, on_bad_lines=on_bad_lines, progress=progress)
    if report.kind != kind:
        raise InputError(f"{flag}: {path} holds {report.kind}, expected {kind}")
    if report.skipped:  # the ingested file is the build's scratch: the manifest keeps the counts
        echo(f"{report.summary(output=False)} (in the manifest's inputs)")
    record.update(
        format=report.source_format,
        lines_read=report.lines_read,
        rows_ingested=report.rows_written,
        lines_skipped=dict(sorted(report.skipped.items())),
    )
    return Path(report.output), record


def _local_or_uri(path: str | Path, flag: str, engine: str) -> Path | str:
    """A local path as a Path; a URI (``scheme://...``) kept as a string, for the Spark engine."""
    from deepcart.data.spark_session import is_uri

    if not is_uri(path):
        return Path(path)
    if engine != "spark":
        raise InputError(f"{flag}: {path} is a URI; only --engine spark reads URIs")
    return str(path)


def _report_lines(counts: dict[str, int], p: BuildParams) -> list[str]:
    c = counts
    lines = [
        f"Found {c['users_found']:,} users with {c['ratings_found']:,} ratings "
        f"of {c['items_found']:,} items."
    ]
    if c["duplicates_dropped"]:
        kept = "the earliest"
        if c.get("extra_reviews_read"):
            kept += ", or the latest extra review"
        lines.append(
            f"Dropped {c['duplicates_dropped']:,} reviews (duplicate user and item; kept {kept})"
        )
    if c.get("ratings_replaced"):
        lines.append(
            f"Replaced {c['ratings_replaced']:,} ratings of the reviews file by the users' later "
            "opinions from --extra-reviews"
        )
    if p.k_core:
        lines.append(
            f"k-core filtering (users >= {p.min_interactions}, items >= {p.min_ratings} ratings): "
            f"{c['k_core_rounds']} rounds"
        )
        lines.append(f"Dropped {c['items_dropped_min_ratings']:,} items (<{p.min_ratings} ratings)")
        lines.append(
            f"Dropped {c['users_dropped_min_interactions']:,} users (reviews <{p.min_interactions})"
        )
        lines.append(
            f"Dropped {c['reviews_dropped_k_core']:,} reviews (no user or item associated)"
        )
    else:
        lines.append(f"Dropped {c['items_dropped_min_ratings']:,} items (<{p.min_ratings} ratings)")
        lines.append(f"Dropped {c['reviews_dropped_no_item']:,} reviews (no item associated)")
        lines.append(
            f"Dropped {c['users_dropped_min_interactions']:,} users (reviews <{p.min_interactions})"
        )
        lines.append(f"Dropped {c['reviews_dropped_no_user']:,} reviews (no user associated)")
    if p.sample_n:
        lines.append(
            f"Sampled {c['users_eligible'] - c['users_dropped_not_sampled']:,} of "
            f"{c['users_eligible']:,} users (seed {p.seed}); dropped "
            f"{c['reviews_dropped_not_sampled']:,} reviews of the others"
        )
    lines.append(f"Dropped {c['items_dropped_no_review']:,} items (no review associated)")
    return lines


def build_dataset(
    *,
    reviews_file: str | Path,
    items_file: str | Path | None,
    output_dir: str | Path,
    tag: str,
    min_interactions: int = 5,
    min_ratings: int = 5,
    sample_n: int = 0,
    seed: int = 0,
    k_core: bool = False,
    on_bad_lines: str = "error",
    extra_reviews: list[str | Path] | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    engine: str = "duckdb",
    spark_master: str = "local[*]",
) -> BuildReport:
    """Build the dataset tagged ``tag`` under ``output_dir`` and return its counts and manifest.

    ``engine``: ``"duckdb"`` (default, in process) or ``"spark"`` (the same semantics on Spark,
    :mod:`deepcart.data.engine_spark`; ``spark_master`` picks the cluster, unless a session is
    already active)."""
    if engine not in ENGINES:
        raise InputError(f"--engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    for name, value in (
        ("--min-interactions", min_interactions),
        ("--min-ratings", min_ratings),
        ("--sample-n", sample_n),
    ):
        if value < 0:
            raise InputError(f"{name}: expected a non-negative integer, got {value}")
    if on_bad_lines not in ("error", "skip"):
        raise InputError(f"--on-bad-lines: expected 'error' or 'skip', got {on_bad_lines!r}")
    final = dataset_paths(output_dir, tag)
    reviews_file = _local_or_uri(reviews_file, "--reviews-file", engine)
    items_path = (
        _local_or_uri(items_file, "--items-file", engine) if items_file is not None else None
    )
    params = BuildParams(min_interactions, min_ratings, sample_n, seed, k_core)
    if engine == "spark":
        from deepcart.data.spark_session import check_spark, get_spark

        check_spark(spark_master)  # the master URL, pyspark, Java: before any other work
    extras = [_local_or_uri(e, "--extra-reviews", engine) for e in extra_reviews or []]
    named = [("--reviews-file", reviews_file), ("--items-file", items_path)]
    for flag, path in [*named, *(("--extra-reviews", e) for e in extras)]:
        if isinstance(path, Path):  # the cheap checks, before a Spark start (seconds)
            check_input_file(path, flag)
    out_root = make_dirs(output_dir, "--output-dir")
    if engine == "spark":
        get_spark(spark_master)  # the JVM (seconds) once the cheap checks passed

    work = Path(tempfile.mkdtemp(prefix=f".{tag}.building-", dir=out_root))
    try:
        staging = DatasetPaths(work / "dataset")
        staging.root.mkdir()
        ingest_tmp = work / "ingest"
        spill = work / "spill"
        spill.mkdir()
        echo(
            f"Generating dataset based on {items_path if items_path else '(no item metadata)'} "
            f"and {reviews_file}..."
        )
        rev_parquet, rev_record = _resolve_input(
            reviews_file, "reviews", "--reviews-file", ingest_tmp, on_bad_lines, progress, echo
        )
        inputs: dict[str, Any] = {"reviews": rev_record}
        review_files = [rev_parquet]
        for n, (given, extra) in enumerate(zip(extra_reviews or [], extras, strict=True)):
            extra_parquet, record = _resolve_input(
                extra,
                "reviews",
                "--extra-reviews",
                ingest_tmp / f"extra{n}",
                on_bad_lines,
                progress,
                echo,
            )
            review_files.append(extra_parquet)
            inputs.setdefault("extra_reviews", []).append(record)
            echo(f"Adding extra reviews from {given}...")
        items_parquet = None
        if items_path is not None:
            items_parquet, inputs["items"] = _resolve_input(
                items_path, "items", "--items-file", ingest_tmp, on_bad_lines, progress, echo
            )
        if engine == "spark":
            from deepcart.data.engine_spark import run_build

            engine_options: dict[str, Any] = {"spark_master": spark_master}
        else:
            from deepcart.data.engine_duckdb import run_build

            engine_options = {}
        counts = run_build(
            review_files,
            items_parquet,
            staging.reviews,
            staging.items,
            params,
            temp_dir=spill,
            echo=echo,
            **engine_options,
        )
        for line in _report_lines(counts, params):
            echo(line)
        _check_not_empty(counts, params, reviews_file)
        echo(f"Writing {counts['reviews_written']:,} reviews as {final.reviews}...")
        no_meta = counts["items_without_metadata"]
        echo(
            f"Writing {counts['items_written']:,} items as {final.items}..."
            + (f" ({no_meta:,} without metadata)" if no_meta else "")
        )
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "deepcart_version": __version__,
            "tag": tag,
            "engine": engine,
            "params": {
                "min_interactions": min_interactions,
                "min_ratings": min_ratings,
                "sample_n": sample_n,
                "seed": seed,
                "k_core": k_core,
                "on_bad_lines": on_bad_lines,
                "extra_reviews": [str(e) for e in extra_reviews or []],
            },
            "inputs": inputs,
            "counts": counts,
            "report": _report_lines(counts, params),
            "files": {"reviews": final.reviews.name, "items": final.items.name},
        }
        staging.manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        _swap_in(staging.root, final.root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    echo(f"Wrote '{tag}' dataset to {out_root}.")
    return BuildReport(tag=tag, paths=final, counts=counts, manifest=manifest)


def _check_not_empty(counts: dict[str, int], p: BuildParams, reviews_file: Path | str) -> None:
    """Refuse a dataset without reviews (models cannot train on it), naming the step that left
    none: the input itself, ``--min-ratings``, ``--min-interactions`` or ``--k-core``."""
    if counts["reviews_written"]:
        return
    c = counts
    if not c["ratings_found"]:
        raise InputError(f"--reviews-file: {reviews_file} holds no reviews; nothing to build")
    found = (
        f"{c['ratings_found']:,} ratings by {c['users_found']:,} users "
        f"of {c['items_found']:,} items"
    )
    if p.k_core:
        raise InputError(
            f"--k-core (--min-interactions {p.min_interactions}, --min-ratings {p.min_ratings}) "
            f"left no reviews (found {found}); lower them"
        )
    if c["reviews_dropped_no_item"] == c["ratings_found"]:
        raise InputError(
            f"--min-ratings {p.min_ratings} left no reviews: each of the {c['items_found']:,} "
            f"items has fewer ratings (found {found}); lower it"
        )
    left = c["ratings_found"] - c["reviews_dropped_no_item"]
    raise InputError(
        f"--min-interactions {p.min_interactions} left no reviews: each user has fewer of the "
        f"{left:,} ratings that --min-ratings {p.min_ratings} kept (found {found}); lower it"
    )


def _swap_in(new: Path, final: Path) -> None:
    """Put the directory ``new`` at ``final``, replacing an older dataset as atomically as a
    directory allows: the old one is renamed aside first and removed only after the swap."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(new, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load_manifest(paths: DatasetPaths) -> dict[str, Any]:
    """The manifest of a built dataset."""
    try:
        manifest = json.loads(paths.manifest.read_text())
    except FileNotFoundError:
        raise InputError(f"no dataset manifest at {paths.manifest}") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise InputError(f"{paths.manifest}: not valid JSON ({exc}); rebuild the dataset") from None
    if not isinstance(manifest, dict):
        raise InputError(f"{paths.manifest}: expected a JSON object; rebuild the dataset")
    return manifest
