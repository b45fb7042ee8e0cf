"""The `deepcart` command: argument parsing only; each command calls one library function.

Errors a user can cause surface as :class:`deepcart.errors.DeepCartError`; ``main`` prints them on
one line (``deepcart: error: ...``) and returns exit code 2. Library imports happen inside the
handlers so that ``deepcart --help`` stays fast and works without the optional extras.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from deepcart import __version__
from deepcart.data.paths import DEFAULT_DATA_DIR, DEFAULT_RAW_DIR
from deepcart.errors import DeepCartError, InputError


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show every option's default, keep hand-wrapped descriptions."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _csv_columns(text: str) -> list[str]:
    cols = [c.strip() for c in text.split(",")]
    allowed = {"user_id", "parent_asin", "rating", "timestamp"}
    if sorted(cols) != sorted(allowed):
        raise argparse.ArgumentTypeError(
            "expected the four names user_id,parent_asin,rating,timestamp in the file's order, "
            f"got {text!r}"
        )
    return cols


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="log diagnostics to stderr")


# --------------------------------------------------------------------------- handlers


def _cmd_synth(args: argparse.Namespace) -> int:
    from deepcart.data.synth import synthesize

    res = synthesize(
        args.output_dir,
        category=args.category,
        n_users=args.users,
        n_items=args.items,
        n_reviews=args.reviews,
        seed=args.seed,
        progress=not args.quiet,
    )
    print(res.summary())
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from deepcart.data.download import download_category

    paths = download_category(
        args.category,
        args.output_dir,
        base_url=args.base_url,
        what=args.what,
        progress=not args.quiet,
        timeout=args.timeout,
    )
    for p in paths:
        print(f"Downloaded {p}")
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from deepcart.data.ingest import ingest_file

    for path in args.files:
        report = ingest_file(
            path,
            args.output_dir,
            on_bad_lines=args.on_bad_lines,
            csv_columns=args.csv_columns,
            progress=not args.quiet,
        )
        print(report.summary())
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from deepcart.data.build import build_dataset

    build_dataset(
        reviews_file=args.reviews_file,
        items_file=args.items_file,
        output_dir=args.output_dir,
        tag=args.tag,
        min_interactions=args.min_interactions,
        min_ratings=args.min_ratings,
        sample_n=args.sample_n,
        seed=args.seed,
        k_core=args.k_core,
        on_bad_lines=args.on_bad_lines,
        progress=not args.quiet,
        echo=print,
    )
    return 0


def _cmd_quickstart(args: argparse.Namespace) -> int:
    from deepcart.quickstart import quickstart

    quickstart(
        workdir=args.workdir,
        users=args.users,
        items=args.items,
        reviews=args.reviews,
        seed=args.seed,
        tag=args.tag,
        progress=not args.quiet,
        echo=print,
    )
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepcart",
        description="Recommendations and anti-recommendations from Amazon product reviews.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"deepcart {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "synth",
        help="write a synthetic category in the exact Amazon Reviews 2023 format",
        description="Write DIR/<Category>.jsonl.gz (reviews) and DIR/meta_<Category>.jsonl.gz "
        "(items) with every field of the official 2023 files.\n\n"
        "example: deepcart synth --users 5000 --items 2000 --reviews 60000 --output-dir data/raw",
        formatter_class=_Formatter,
    )
    p.add_argument("--category", default="Electronics", help="category name used in file names")
    p.add_argument("--users", type=_positive_int, default=3000, help="number of users")
    p.add_argument("--items", type=_positive_int, default=1500, help="number of items")
    p.add_argument("--reviews", type=_positive_int, default=40000, help="number of reviews")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    p.add_argument("--output-dir", type=Path, default=DEFAULT_RAW_DIR, help="where to write")
    _add_common(p)
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser(
        "download",
        help="download the official Amazon Reviews 2023 raw files of a category",
        description="Fetch <Category>.jsonl.gz and meta_<Category>.jsonl.gz with resume, a size "
        "check and an atomic rename.\n\n"
        "example: deepcart download --category Electronics --output-dir data/raw",
        formatter_class=_Formatter,
    )
    from deepcart.data.download import DEFAULT_BASE_URL

    p.add_argument("--category", default="Electronics", help="category, e.g. All_Beauty")
    p.add_argument("--output-dir", type=Path, default=DEFAULT_RAW_DIR, help="where to write")
    p.add_argument("--base-url", default=DEFAULT_BASE_URL, help="root of the raw/ tree")
    p.add_argument(
        "--what",
        nargs="+",
        choices=["reviews", "meta"],
        default=["reviews", "meta"],
        help="which files to fetch",
    )
    p.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds")
    _add_common(p)
    p.set_defaults(func=_cmd_download)

    p = sub.add_parser(
        "ingest",
        help="convert raw review/meta files (2023, 2018, 2014 JSON; CSV) to canonical Parquet",
        description="Convert raw files to Parquet in the canonical schema (docs/data-formats.md). "
        "The format is detected from the content.\n\n"
        "example: deepcart ingest data/raw/Electronics.jsonl.gz data/raw/meta_Electronics.jsonl.gz"
        " --output-dir data/ingested",
        formatter_class=_Formatter,
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="raw input files")
    p.add_argument("--output-dir", type=Path, default=Path("data/ingested"), help="where to write")
    p.add_argument(
        "--on-bad-lines",
        choices=["error", "skip"],
        default="error",
        help="stop at the first bad line (error) or skip bad lines and count them by reason",
    )
    p.add_argument(
        "--csv-columns",
        type=_csv_columns,
        default=None,
        help="column order of a headerless ratings CSV, e.g. parent_asin,user_id,rating,timestamp"
        " (detected from the content when omitted)",
    )
    _add_common(p)
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser(
        "build",
        help="build a tagged dataset: dedup, filters, sampling (the original's pipeline)",
        description="Deduplicate (user, item) keeping the earliest review, drop items with fewer "
        "than --min-ratings ratings, users with fewer than --min-interactions, orphaned reviews, "
        "sample --sample-n users, drop items left without reviews; write "
        "<output-dir>/<tag>/{reviews,items}.parquet and manifest.json.\n\n"
        "example: deepcart build --min-interactions 10 --min-ratings 100 --sample-n 10000 "
        "--tag small",
        formatter_class=_Formatter,
    )
    p.add_argument(
        "--items-file",
        type=Path,
        default=DEFAULT_RAW_DIR / "meta_Electronics.jsonl.gz",
        help="item metadata: raw file or ingested Parquet",
    )
    p.add_argument(
        "--reviews-file",
        type=Path,
        default=DEFAULT_RAW_DIR / "Electronics.jsonl.gz",
        help="reviews: raw file or ingested Parquet",
    )
    p.add_argument(
        "--min-interactions", type=_positive_int, default=5, help="drop users with fewer reviews"
    )
    p.add_argument(
        "--min-ratings", type=_positive_int, default=5, help="drop items with fewer ratings"
    )
    p.add_argument("--sample-n", type=_positive_int, default=0, help="users to sample (0 = all)")
    p.add_argument("--output-dir", type=Path, default=DEFAULT_DATA_DIR, help="datasets root")
    p.add_argument("--tag", required=True, help="dataset tag (name)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument(
        "--k-core",
        action="store_true",
        help="repeat the user and item filters until nothing changes (official k-core)",
    )
    p.add_argument(
        "--on-bad-lines",
        choices=["error", "skip"],
        default="error",
        help="for raw inputs: stop at the first bad line or skip bad lines",
    )
    _add_common(p)
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser(
        "quickstart",
        help="the first thing to run: synthesize a small category and build a dataset from it",
        description="Synthesize a small Electronics category, build the 'quickstart' dataset and "
        "say what to run next.\n\nexample: deepcart quickstart",
        formatter_class=_Formatter,
    )
    p.add_argument("--workdir", type=Path, default=Path("."), help="root for data/ and models/")
    p.add_argument("--users", type=_positive_int, default=3000, help="synthetic users")
    p.add_argument("--items", type=_positive_int, default=1500, help="synthetic items")
    p.add_argument("--reviews", type=_positive_int, default=40000, help="synthetic reviews")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--tag", default="quickstart", help="dataset tag")
    _add_common(p)
    p.set_defaults(func=_cmd_quickstart)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except DeepCartError as exc:
        print(f"deepcart: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:  # a path the user named that vanished mid-run
        print(f"deepcart: error: {InputError(f'file not found: {exc.filename}')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deepcart: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
