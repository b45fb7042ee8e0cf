"""The `deepcart` command: argument parsing only; each command calls one library function.

Errors a user can cause surface as :class:`deepcart.errors.DeepCartError`; ``main`` prints them on
one line (``deepcart: error: ...``) and returns exit code 2. Library imports happen inside the
handlers so that ``deepcart --help`` stays fast and works without the optional extras.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepcart import __version__
from deepcart.data.paths import DEFAULT_DATA_DIR, DEFAULT_MODEL_DIR, DEFAULT_RAW_DIR
from deepcart.errors import DeepCartError, InputError


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show every option's default, keep hand-wrapped descriptions."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        # No "(default: None)" on a required option, nor a second default where the help
        # already states it in words.
        help_text = action.help or ""
        if action.required or "(default:" in help_text:
            return help_text
        return super()._get_help_string(action)


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _positive_int(text: str) -> int:
    """A count that must be at least 1 (--k, --top-k, --repeat, --nn-batch, --nn-epochs): 0 is
    refused as -1 is, by the parser, with the command's usage."""
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _path_or_uri(text: str) -> Path | str:
    """A local path, or a URI (s3a://, gs://, hdfs://, file://) kept as text (--engine spark)."""
    return text if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text) else Path(text)


def _csv_columns(text: str) -> list[str]:
    cols = [c.strip() for c in text.split(",")]
    allowed = {"user_id", "parent_asin", "rating", "timestamp"}
    if sorted(cols) != sorted(allowed):
        raise argparse.ArgumentTypeError(
            "expected the four names user_id,parent_asin,rating,timestamp in the file's order, "
            f"got {text!r}"
        )
    return cols


def _cut_points(text: str) -> tuple[int, int]:
    try:
        t1, t2 = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected two millisecond timestamps T1,T2, got {text!r}"
        ) from None
    return t1, t2


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {value}")
    return value


def _add_dataset(p: argparse.ArgumentParser, models: bool = True) -> None:
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="datasets root")
    p.add_argument("--data-tag", required=True, help="dataset tag (as given to build --tag)")
    if models:
        p.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR, help="models root")


def _add_split(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--split",
        choices=["users", "last-out", "timestamp", "random", "none"],
        default="users",
        help="evaluation protocol (docs/evaluation.md)",
    )
    p.add_argument("--seed", type=int, default=0, help="split seed")
    p.add_argument(
        "--holdout", type=_fraction, default=0.2, help="check fraction per val/test user"
    )
    p.add_argument(
        "--holdout-by", choices=["random", "time"], default="random", help="which rows to check"
    )
    p.add_argument(
        "--cut-points",
        type=_cut_points,
        default=None,
        help="T1,T2 in ms for --split timestamp (default: 1628643414042,1658002729837)",
    )


def _add_mode(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mode",
        choices=["best", "worst"],
        default="best",
        help="best: what the user will like; worst: engaged products the user would most hate",
    )


def _add_nn(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--nn-batch",
        type=_positive_int,
        default=None,
        metavar="B",
        help="neural models (autoencoder, dae, vae): users per mini-batch (their batch_size) "
        "(default: the model's own)",
    )
    p.add_argument(
        "--nn-epochs",
        type=_positive_int,
        default=None,
        metavar="E",
        help="neural models: the most training epochs (their epochs; early stopping may stop "
        "sooner) (default: the model's own)",
    )


def _nn_params(args: argparse.Namespace, types: list[str]) -> dict[str, dict[str, int]]:
    """``--nn-batch``/``--nn-epochs`` as the hyperparameters of each neural model in ``types``."""
    given = {
        name: value
        for name, value in (("batch_size", args.nn_batch), ("epochs", args.nn_epochs))
        if value is not None
    }
    if not given:
        return {}
    from deepcart.models import model_class, model_names

    names = model_names() if types == ["all"] else types
    neural = [t for t in names if getattr(model_class(t), "neural", False)]
    if not neural:
        raise InputError(
            "--nn-batch/--nn-epochs: apply to the neural models (autoencoder, dae, vae), "
            f"not to {', '.join(repr(t) for t in names)}"
        )
    return {t: dict(given) for t in neural}


def _merge_params(params: dict, nn: dict[str, int]) -> dict:
    both = sorted(set(params) & set(nn))
    if both:
        raise InputError(
            f"--params: {', '.join(both)} given twice (also by --nn-batch/--nn-epochs)"
        )
    return {**params, **nn}


def _add_engine(p: argparse.ArgumentParser, choices: Sequence[str], help_: str) -> None:
    p.add_argument("--engine", choices=list(choices), default=choices[0], help=help_)
    p.add_argument(
        "--spark-master",
        default=None,
        help="Spark master URL for --engine spark (ignored under spark-submit, whose --master "
        "wins); needs the 'spark' extra and Java 17+ (docs/scale.md) (default: local[*])",
    )


def _spark_master(args: argparse.Namespace) -> str:
    """``--spark-master``, which only --engine spark takes (else the work would run here, on
    another engine, while the user meant a cluster)."""
    from deepcart.data.spark_session import DEFAULT_MASTER

    if args.spark_master is not None and args.engine != "spark":
        raise InputError(
            f"--spark-master: only with --engine spark (this is --engine {args.engine})"
        )
    return args.spark_master or DEFAULT_MASTER


def _add_server(
    p: argparse.ArgumentParser, models: list[str], *, type_default: str | None, port: int
) -> None:
    """The options ``serve`` and ``deploy`` share (each also a DEEPCART_* variable)."""
    p.add_argument(
        "--data-dir", action=_Given, type=Path, default=DEFAULT_DATA_DIR, help="datasets root"
    )
    p.add_argument(
        "--data-tag",
        action=_Given,
        default=argparse.SUPPRESS,
        help="dataset tag (required: this flag or DEEPCART_DATA_TAG)",
    )
    if type_default is None:
        p.add_argument(
            "--type",
            action=_Given,
            choices=models,
            default=argparse.SUPPRESS,
            help="model (required: this flag or DEEPCART_TYPE)",
        )
    else:
        p.add_argument("--type", action=_Given, choices=models, default=type_default, help="model")
    p.add_argument(
        "--model-dir", action=_Given, type=Path, default=DEFAULT_MODEL_DIR, help="models root"
    )
    p.add_argument("--host", action=_Given, default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", action=_Given, type=_non_negative_int, default=port, help="port")
    p.add_argument(
        "--db-url",
        action=_Given,
        default=argparse.SUPPRESS,
        help="SQLAlchemy URL of the review database (default: SQLite at "
        "<data-dir>/_reviews/<data-tag>.db)",
    )
    p.add_argument(
        "--min-engagement",
        action=_Given,
        type=_non_negative_int,
        default=10,
        help="worst mode: rank only items with at least this many ratings",
    )
    p.add_argument(
        "--cache-size",
        action=_Given,
        type=_non_negative_int,
        default=100_000,
        help="recommendation lists kept for users whose reviews did not change (0: off)",
    )
    p.add_argument(
        "--log-level",
        action=_Given,
        choices=["critical", "error", "warning", "info", "debug"],
        default="warning",
        help="server log level",
    )


def _add_scoring(p: argparse.ArgumentParser, repeat_help: str) -> None:
    """The options of the commands that score models on a split (test, tune)."""
    p.add_argument("--reports-dir", type=Path, default=Path("reports"), help="reports root")
    _add_mode(p)
    p.add_argument(
        "--min-engagement",
        type=_non_negative_int,
        default=10,
        help="worst mode: rank only items with at least this many training ratings",
    )
    _add_split(p)
    p.add_argument("--repeat", type=_positive_int, default=1, metavar="N", help=repeat_help)


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

    download_category(
        args.category,
        args.output_dir,
        base_url=args.base_url,
        what=args.what,
        progress=not args.quiet,
        timeout=args.timeout,
        echo=print,
    )
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from deepcart.data.ingest import ingest_file, output_path_for

    spark_master = _spark_master(args)

    first: dict[Path, Path] = {}
    for path in args.files:  # the later file would silently replace the earlier one's output
        out = output_path_for(path, args.output_dir)
        if out in first:
            raise InputError(
                f"{first[out]} and {path} would both be written to {out}; ingest them one at a "
                "time with different --output-dir"
            )
        first[out] = path
    if args.engine == "spark":
        from deepcart.data.engine_spark import ingest_files

        for report in ingest_files(
            args.files,
            args.output_dir,
            on_bad_lines=args.on_bad_lines,
            csv_columns=args.csv_columns,
            spark_master=spark_master,
        ):
            print(report.summary())
        return 0
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

    spark_master = _spark_master(args)

    build_dataset(
        reviews_file=args.reviews_file,
        items_file=None if str(args.items_file).lower() == "none" else args.items_file,
        output_dir=args.output_dir,
        tag=args.tag,
        min_interactions=args.min_interactions,
        min_ratings=args.min_ratings,
        sample_n=args.sample_n,
        seed=args.seed,
        k_core=args.k_core,
        on_bad_lines=args.on_bad_lines,
        extra_reviews=args.extra_reviews,
        progress=not args.quiet,
        echo=print,
        engine=args.engine,
        spark_master=spark_master,
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
        deploy=not args.no_deploy,
        port=args.port,
        echo=print,
    )
    return 0


def _split_params(args: argparse.Namespace):
    from deepcart.data.split import OFFICIAL_T1, OFFICIAL_T2, SplitParams

    # A flag the protocol does not read is refused rather than ignored (the split made would
    # not be the one asked for). --holdout and --holdout-by are told apart from their defaults.
    uses = {
        "--cut-points": (args.cut_points is not None, ("timestamp",)),
        "--holdout": (args.holdout != SplitParams.holdout, ("users", "random")),
        "--holdout-by": (args.holdout_by != SplitParams.holdout_by, ("users",)),
    }
    for flag, (given, protocols) in uses.items():
        if given and args.split not in protocols:
            raise InputError(
                f"{flag}: the {args.split} split does not use it (only --split "
                f"{' or '.join(protocols)} does); leave it out"
            )
    t1, t2 = args.cut_points if args.cut_points else (OFFICIAL_T1, OFFICIAL_T2)
    return SplitParams(
        protocol=args.split,
        seed=args.seed,
        holdout=args.holdout,
        holdout_by=args.holdout_by,
        t1=t1,
        t2=t2,
    )


def _cmd_split(args: argparse.Namespace) -> int:
    from deepcart.data.split import make_split

    make_split(args.data_dir, args.data_tag, _split_params(args), force=args.force)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from deepcart.models import parse_params
    from deepcart.training import train_model

    spark_master = _spark_master(args)

    params = parse_params(args.params)
    params = _merge_params(params, _nn_params(args, [args.type]).get(args.type, {}))
    if args.engine == "spark":
        if args.type != "als":
            raise InputError(f"--engine spark: trains --type als only, got --type {args.type}")
        from deepcart.models.als_spark import train_als_spark

        train_als_spark(
            data_dir=args.data_dir,
            tag=args.data_tag,
            split_params=_split_params(args),
            params=params,
            model_dir=args.model_dir,
            mode=args.mode,
            spark_master=spark_master,
        )
        return 0
    train_model(
        data_dir=args.data_dir,
        tag=args.data_tag,
        model_type=args.type,
        split_params=_split_params(args),
        params=params,
        model_dir=args.model_dir,
        mode=args.mode,
        progress=not args.quiet,
    )
    return 0


def _cmd_test(args: argparse.Namespace) -> int:
    from deepcart.eval.evaluate import evaluate_models
    from deepcart.eval.repeat import check_repeats, evaluate_repeated
    from deepcart.models import parse_params

    types = [t.strip() for t in args.type.split(",") if t.strip()]
    params = parse_params(args.params)
    if params and (len(types) != 1 or types == ["all"]):  # 'all' used to drop them unread
        raise InputError("--params: applies to a single --type, not to a list or 'all'")
    per_model = {types[0]: params} if params else {}
    for t, nn in _nn_params(args, types).items():
        per_model[t] = _merge_params(per_model.get(t, {}), nn)
    common = dict(
        data_dir=args.data_dir,
        tag=args.data_tag,
        model_types=types,
        split_params=_split_params(args),
        k=args.top_k,
        model_dir=args.model_dir,
        reports_dir=args.reports_dir,
        params=per_model or None,
        mode=args.mode,
        min_engagement=args.min_engagement,
        progress=not args.quiet,
    )
    if check_repeats(args.repeat, args.split) > 1:
        evaluate_repeated(repeats=args.repeat, **common)  # type: ignore[arg-type]
    else:
        evaluate_models(**common)  # type: ignore[arg-type]
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    from deepcart.eval.tune import parse_grid, tune_model
    from deepcart.models import parse_params

    params = _merge_params(
        parse_params(args.params), _nn_params(args, [args.type]).get(args.type, {})
    )
    tune_model(
        data_dir=args.data_dir,
        tag=args.data_tag,
        model_type=args.type,
        grid=parse_grid(args.grid, params),
        split_params=_split_params(args),
        params=params,
        k=args.top_k,
        metric=args.metric,
        repeats=args.repeat,
        mode=args.mode,
        min_engagement=args.min_engagement,
        reports_dir=args.reports_dir,
    )
    return 0


def _cmd_recommend(args: argparse.Namespace) -> int:
    from deepcart.recommend import recommend_users

    recommend_users(
        data_dir=args.data_dir,
        tag=args.data_tag,
        model_type=args.type,
        out=args.out,
        k=args.k,
        mode=args.mode,
        split=args.split,
        users_file=args.users,
        ratings_file=args.ratings,
        model_dir=args.model_dir,
        min_engagement=args.min_engagement,
    )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from deepcart.report import write_report

    out = write_report(args.data_dir, args.data_tag, out=args.out, reports_dir=args.reports_dir)
    print(f"Wrote the report of {args.data_tag!r} to {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


class _Given(argparse.Action):
    """Store a flag's value and note that it was given: given flags override the DEEPCART_*
    environment variables, which override the defaults (``deepcart serve``)."""

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        setattr(namespace, self.dest, values)
        namespace.__dict__.setdefault("given", set()).add(self.dest)


def _need_serve_extra(exc: ImportError) -> InputError:
    return InputError(f"the service needs the 'serve' extra (pip install 'deepcart[serve]'): {exc}")


def _given_settings(args: argparse.Namespace) -> dict[str, object]:
    """The service settings given as flags (the rest come from DEEPCART_* variables or the
    defaults), after a warning for each DEEPCART_* variable that is no setting."""
    from deepcart.serve.config import unknown_variables

    for line in unknown_variables():
        print(f"deepcart: warning: {line}", file=sys.stderr)
    return {name: getattr(args, name) for name in sorted(getattr(args, "given", set()))}


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from deepcart.serve.api import serve
        from deepcart.serve.config import load_settings
    except ImportError as exc:
        raise _need_serve_extra(exc) from None

    serve(load_settings(**_given_settings(args)))
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    try:
        from deepcart.serve.config import ENV_PREFIX, load_settings
        from deepcart.serve.deploy import DEFAULT_PORT, deploy
    except ImportError as exc:
        raise _need_serve_extra(exc) from None

    values = _given_settings(args)
    # The demo's own defaults, below a DEEPCART_* variable that is set.
    for name, default in (("type", "als"), ("port", DEFAULT_PORT)):
        if name not in values and ENV_PREFIX + name.upper() not in os.environ:
            values[name] = default
    deploy(load_settings(**values), share=args.share)
    return 0


def _cmd_export_reviews(args: argparse.Namespace) -> int:
    try:
        from deepcart.serve.store import export_reviews
    except ImportError as exc:
        raise _need_serve_extra(exc) from None
    n = export_reviews(data_dir=args.data_dir, tag=args.data_tag, out=args.out, db_url=args.db_url)
    print(
        f"Wrote {n:,} stored review{'' if n == 1 else 's'} to {args.out}; add them to the next "
        "build with: "
        f"deepcart build ... --extra-reviews {args.out}"
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
    p.add_argument("--users", type=_non_negative_int, default=3000, help="number of users")
    p.add_argument("--items", type=_non_negative_int, default=1500, help="number of items")
    p.add_argument("--reviews", type=_non_negative_int, default=40000, help="number of reviews")
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
        " (default: detected from the content)",
    )
    _add_engine(
        p,
        ["duckdb", "spark"],
        "duckdb: ingest the files one after another in this process; spark: the same ingest, "
        "one Spark task per file (files in parallel; docs/scale.md)",
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
        type=_path_or_uri,
        default=DEFAULT_RAW_DIR / "meta_Electronics.jsonl.gz",
        help="item metadata: raw file or ingested Parquet; 'none' to build without it; with "
        "--engine spark also a URI of ingested Parquet (s3a://, gs://, hdfs://)",
    )
    p.add_argument(
        "--reviews-file",
        type=_path_or_uri,
        default=DEFAULT_RAW_DIR / "Electronics.jsonl.gz",
        help="reviews: raw file or ingested Parquet; with --engine spark also a URI of "
        "ingested Parquet (s3a://, gs://, hdfs://)",
    )
    p.add_argument(
        "--extra-reviews",
        type=_path_or_uri,
        nargs="+",
        default=None,
        metavar="FILE",
        help="more reviews, e.g. those the service stored (deepcart export-reviews); they take "
        "precedence over --reviews-file for the same user and item, the latest of them winning "
        "(default: none)",
    )
    p.add_argument(
        "--min-interactions",
        type=_non_negative_int,
        default=5,
        help="drop users with fewer reviews",
    )
    p.add_argument(
        "--min-ratings", type=_non_negative_int, default=5, help="drop items with fewer ratings"
    )
    p.add_argument(
        "--sample-n", type=_non_negative_int, default=0, help="users to sample (0 = all)"
    )
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
    _add_engine(
        p,
        ["duckdb", "spark"],
        "where the dedup, filters and sampling run: DuckDB in this process, or Spark (the "
        "same dataset row for row; docs/scale.md)",
    )
    _add_common(p)
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser(
        "split",
        help="write (or show) the evaluation split of a dataset",
        description="Write <data-dir>/<tag>/splits/<protocol>/ (train, val_input, val_check, "
        "test_input, test_check) and print its summary; train and test do this on demand.\n\n"
        "example: deepcart split --data-tag quickstart --split users --holdout-by time",
        formatter_class=_Formatter,
    )
    _add_dataset(p, models=False)
    _add_split(p)
    p.add_argument("--force", action="store_true", help="recompute even if it exists")
    _add_common(p)
    p.set_defaults(func=_cmd_split)

    from deepcart.models import REGISTRY

    p = sub.add_parser(
        "train",
        help="fit a model on a split and save it",
        description="Fit --type on the training part of --split and save it to "
        "<model-dir>/<tag>/<split>/<type>/ (--split none: all data, the production model).\n\n"
        "example: deepcart train --data-tag quickstart --type popular",
        formatter_class=_Formatter,
    )
    _add_dataset(p)
    p.add_argument("--type", required=True, choices=list(REGISTRY), help="model")
    p.add_argument(
        "--params",
        default=None,
        help="hyperparameters as JSON, e.g. '{\"seed\": 1}' (default: the model's own)",
    )
    _add_nn(p)
    _add_mode(p)
    _add_split(p)
    _add_engine(
        p,
        ["local", "spark"],
        "local: fit in this process; spark: fit --type als with Spark MLlib and save the same "
        "artifact",
    )
    _add_common(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "test",
        help="evaluate models side by side on a split's test users",
        description="Evaluate one model, a comma-separated list or 'all': use the model train "
        "saved for this tag and split, or fit it first. Prints one table and writes "
        "reports/<tag>/<split>/<model>/{metrics.json,recs.parquet}. With --repeat N: the same "
        "on N splits (seeds --seed, --seed + 1, ...; reports under seed-<s>/), then each "
        "model's mean over them (reports/<tag>/<split>/repeats.json).\n\n"
        "example: deepcart test --data-tag quickstart --type all --top-k 10\n"
        "example: deepcart test --data-tag quickstart --type als,ease,popular --repeat 5",
        formatter_class=_Formatter,
    )
    _add_dataset(p)
    p.add_argument(
        "--type",
        required=True,
        help=f"model, comma-separated list or 'all' ({', '.join(REGISTRY)}; 'all' leaves out "
        "the neural ones without the 'neural' extra)",
    )
    p.add_argument("--top-k", type=_positive_int, default=10, help="K of the top-K metrics")
    p.add_argument(
        "--params",
        default=None,
        help="hyperparameters (JSON) for a single --type (default: the model's own)",
    )
    _add_nn(p)
    _add_scoring(
        p,
        "evaluate on N splits drawn with seeds --seed .. --seed + N - 1 and summarise "
        "(mean, standard error, paired t-test over the splits); --split users or random",
    )
    _add_common(p)
    p.set_defaults(func=_cmd_test)

    p = sub.add_parser(
        "tune",
        help="grid search of a model's hyperparameters on the split's validation users",
        description="Fit --type with every combination of --grid on the training users and "
        "score it on the validation users (never the test users); prints the table best first "
        "and the deepcart test command for the best, and writes "
        "reports/<tag>/<split>/tune/<model>.json.\n\n"
        "example: deepcart tune --data-tag quickstart --type ease --grid "
        "'{\"reg\": [50, 200, 1000]}'\n"
        "example: deepcart tune --data-tag quickstart --type als --grid "
        '\'{"factors": [32, 64], "regularization": [0.01, 0.1]}\' --repeat 3\n'
        "example: deepcart tune --data-tag quickstart --type vae --grid "
        '\'[{"hidden_dim": [600], "dropout": [0.5]}, {"hidden_dim": [0], "dropout": [0.1, 0.2]}]\'',
        formatter_class=_Formatter,
    )
    _add_dataset(p, models=False)
    p.add_argument("--type", required=True, help=f"the model ({', '.join(REGISTRY)})")
    p.add_argument(
        "--grid",
        required=True,
        help="JSON object: hyperparameter -> list of values, e.g. '{\"reg\": [100, 500]}'; "
        "or a list of such objects, tried one after the other",
    )
    p.add_argument(
        "--params",
        default=None,
        help="fixed hyperparameters (JSON) for every combination (default: the model's own)",
    )
    _add_nn(p)
    p.add_argument("--top-k", type=_positive_int, default=10, help="K of the top-K metrics")
    p.add_argument(
        "--metric",
        choices=["ndcg", "map", "recall", "precision", "hit_rate", "mrr"],  # eval.TOPN
        default="ndcg",
        help="rank the combinations by this metric at K",
    )
    _add_scoring(
        p,
        "score every combination on N splits (seeds --seed .. --seed + N - 1) and rank by the "
        "mean; --split users or random",
    )
    _add_common(p)
    p.set_defaults(func=_cmd_tune)

    p = sub.add_parser(
        "recommend",
        help="write the top-K for every known user (or a list) to Parquet or CSV",
        description="Use the production model (trained with --split none) unless --split names "
        "another, and write user_id, parent_asin, rank, score for every known user or the "
        "listed ones; in worst mode each row carries its most helpful low-rated review. "
        "--ratings folds in users described by a file of ratings (new users, or known users "
        "with newer ratings) as the service does with submitted reviews.\n\n"
        "example: deepcart recommend --data-tag quickstart --type als --k 10 "
        "--out recs.parquet\n"
        "example: deepcart recommend --data-tag quickstart --type als --ratings stored.parquet "
        "--out recs.parquet",
        formatter_class=_Formatter,
    )
    _add_dataset(p)
    p.add_argument("--type", required=True, choices=list(REGISTRY), help="model")
    p.add_argument("--k", type=_positive_int, default=10, help="recommendations per user")
    _add_mode(p)
    p.add_argument(
        "--split",
        choices=["none", "users", "last-out", "timestamp", "random"],
        default="none",
        help="which trained model: none = the production model on all data",
    )
    p.add_argument(
        "--users",
        type=Path,
        default=None,
        help="file of user ids (default: every known user and every user of --ratings)",
    )
    p.add_argument(
        "--ratings",
        type=Path,
        default=None,
        help="Parquet or CSV with user_id, parent_asin, rating (e.g. from export-reviews): "
        "merged over the users' training ratings (the last row of a user and product wins); "
        "ratings of products the model does not know are skipped and counted",
    )
    p.add_argument("--out", type=Path, required=True, help="output file, .parquet or .csv")
    p.add_argument(
        "--min-engagement",
        type=_non_negative_int,
        default=10,
        help="worst mode: rank only items with at least this many ratings",
    )
    _add_common(p)
    p.set_defaults(func=_cmd_recommend)

    p = sub.add_parser(
        "quickstart",
        help="the first thing to run: synthesize a small category and build a dataset from it",
        description="Synthesize a small Electronics category, build the 'quickstart' dataset, "
        "evaluate the classic models, train the production ALS model (best and worst mode), say "
        "what to run next, and start the web demo (deepcart deploy) until Ctrl-C; --no-deploy "
        "returns instead.\n\nexample: deepcart quickstart",
        formatter_class=_Formatter,
    )
    p.add_argument("--workdir", type=Path, default=Path("."), help="root for data/ and models/")
    p.add_argument("--users", type=_non_negative_int, default=3000, help="synthetic users")
    p.add_argument("--items", type=_non_negative_int, default=1500, help="synthetic items")
    p.add_argument("--reviews", type=_non_negative_int, default=40000, help="synthetic reviews")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--tag", default="quickstart", help="dataset tag")
    p.add_argument("--port", type=_non_negative_int, default=7860, help="port of the web demo")
    p.add_argument(
        "--no-deploy",
        action="store_true",
        help="do not start the web demo at the end (return instead; for scripts)",
    )
    _add_common(p)
    p.set_defaults(func=_cmd_quickstart)

    p = sub.add_parser(
        "report",
        help="write a self-contained HTML report of a dataset (and its model comparison)",
        description="Chart the dataset: ratings, the long tail, reviews over time, price and "
        "categories, verified purchases, the worst products with their most helpful complaint, "
        "the build's funnel; add the model comparison where deepcart test left metrics. One HTML "
        "file, images embedded, nothing fetched from outside (needs the 'report' extra).\n\n"
        "example: deepcart report --data-tag quickstart",
        formatter_class=_Formatter,
    )
    _add_dataset(p, models=False)
    p.add_argument("--reports-dir", type=Path, default=Path("reports"), help="reports root")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="HTML file to write (default: <reports-dir>/<data-tag>/index.html)",
    )
    _add_common(p)
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "serve",
        help="serve recommendations over HTTP and keep the reviews users submit (FastAPI)",
        description="Serve the production model (trained with --split none) of --type on the "
        "dataset --data-tag: recommendations for known and new users, worst mode (with the "
        "<type>-worst model), reviews stored in a database and folded in at once. OpenAPI docs "
        "at /docs. Every option can also be set as a DEEPCART_* environment variable "
        "(DEEPCART_DATA_TAG, DEEPCART_PORT, ...); a given flag wins. The reload endpoints need "
        "DEEPCART_ADMIN_TOKEN (environment only). Needs the 'serve' extra.\n\n"
        "example: deepcart serve --data-tag quickstart --type als --port 8000",
        formatter_class=_Formatter,
    )
    _add_server(p, list(REGISTRY), type_default=None, port=8000)
    p.add_argument(
        "--workers",
        action=_Given,
        type=_non_negative_int,
        default=1,
        help="server processes (a reload reaches every one within a second)",
    )
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser(
        "deploy",
        help="the web demo: a gallery to browse, rate and re-rank, plus the whole API",
        description="Serve the web demo at / and the whole API (deepcart serve's endpoints, "
        "docs at /docs) from one server, on the production model of --type for --data-tag "
        "(worst mode with the <type>-worst model). Each browser is an anonymous visitor whose "
        "ratings are stored like any review and survive reloads. Nothing is fetched from another "
        "host but product images (a local placeholder when they do not load). --share asks a "
        "relay for a public https link through the system's ssh (DEEPCART_SHARE_SERVER, default "
        "nokey@localhost.run); without network it says so in one line and keeps serving "
        "locally. Options can also be DEEPCART_* variables; a given flag wins. Needs the 'serve' "
        "extra.\n\nexample: deepcart deploy --data-tag quickstart --type als --port 7860",
        formatter_class=_Formatter,
    )
    _add_server(p, list(REGISTRY), type_default="als", port=7860)
    p.add_argument(
        "--share",
        action="store_true",
        help="also ask for a public https link (an ssh reverse tunnel; see above)",
    )
    p.set_defaults(func=_cmd_deploy)

    p = sub.add_parser(
        "export-reviews",
        help="write the reviews the service stored as reviews Parquet (for build --extra-reviews)",
        description="Write every review stored by deepcart serve for --data-tag as canonical "
        "reviews Parquet, to add to the next build with --extra-reviews (the loop closes).\n\n"
        "example: deepcart export-reviews --data-tag quickstart --out reviews.parquet",
        formatter_class=_Formatter,
    )
    _add_dataset(p, models=False)
    p.add_argument(
        "--db-url",
        default=None,
        help="SQLAlchemy URL of the review database (default: SQLite at "
        "<data-dir>/_reviews/<data-tag>.db)",
    )
    p.add_argument("--out", type=Path, required=True, help="output file (.parquet)")
    _add_common(p)
    p.set_defaults(func=_cmd_export_reviews)

    for command in sub.choices.values():  # main's errors for an unknown option name the command
        command.set_defaults(command_parser=command)
    return parser


def _torch_out_of_memory(exc: RuntimeError) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "can't allocate memory" in str(exc)


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is how Ctrl-C surfaced: DuckDB turns the signal into its own
    ``InterruptException`` or a ``RuntimeError("Query interrupted")`` (reading a result as
    Arrow), and the KeyboardInterrupt never comes; or an error raised while one was handled."""
    if type(exc).__name__ == "InterruptException":
        return True
    if isinstance(exc, RuntimeError) and str(exc).strip() == "Query interrupted":
        return True
    return _after_interrupt(exc)


def _after_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while a Ctrl-C was being handled: cleaning up after an
    interrupted Spark call (py4j reconnecting to a JVM that is cancelling its jobs) can fail."""
    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__context__
    return False


class _StdoutUntilClosed:
    """``sys.stdout`` that goes quiet once its reader is gone (``deepcart build ... | head``):
    the work goes on to its end, its output is dropped. A plain BrokenPipeError would end the
    command half way (a build without its manifest) with a traceback."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._gone = False

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._close()
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._close()

    def _close(self) -> None:
        self._gone = True
        try:  # what is still buffered, and the flush at exit, go to /dev/null: no warning
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except OSError:
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _real_stdout() -> bool:
    """Whether ``sys.stdout`` is a file descriptor (a terminal or a pipe), not a capture."""
    try:
        sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return False
    return not isinstance(sys.stdout, _StdoutUntilClosed)


def main(argv: Sequence[str] | None = None) -> int:
    if not _real_stdout():
        return _main(argv)
    before = sys.stdout
    sys.stdout = _StdoutUntilClosed(before)  # type: ignore[assignment]
    try:
        return _main(argv)
    finally:
        sys.stdout = before


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse would print the top-level usage: the command's is the useful one
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except DeepCartError as exc:
        print(f"deepcart: error: {exc}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as exc:  # sizes asked for (hyperparameters) beyond memory
        if _interrupted(exc):
            print("deepcart: interrupted", file=sys.stderr)
            return 130
        # torch reports a failed allocation as a RuntimeError (OutOfMemoryError on a GPU).
        if not isinstance(exc, MemoryError) and not _torch_out_of_memory(exc):
            raise
        reason = (str(exc) or "no detail").splitlines()[0]
        print(
            f"deepcart: error: out of memory ({reason}); use smaller sizes or a smaller dataset",
            file=sys.stderr,
        )
        return 2
    except FileNotFoundError as exc:  # a path the user named that vanished mid-run
        print(f"deepcart: error: {InputError(f'file not found: {exc.filename}')}", file=sys.stderr)
        return 2
    except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        if exc.filename is None:  # not about a path: a bug to see
            raise
        # A path the user named that this user may not read, or a file where a folder goes.
        print(f"deepcart: error: cannot use {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deepcart: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not _interrupted(exc):
            raise
        print("deepcart: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
