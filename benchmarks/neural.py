"""Benchmark: the neural models (vae, dae, autoencoder) next to ease, als and popular.

For each dataset (the synthetic benchmark set and the staged real Amazon sets): build it, then
run `deepcart test` on the `users` split in best mode for every model (the same library call:
:func:`deepcart.eval.evaluate.evaluate_models`, so the neural models early-stop on the split's
validation users) and print one Markdown table per dataset: NDCG@10 with its 95% bootstrap CI,
Recall@10, RMSE where the model predicts ratings, fit and recommend seconds. The issue's target
is checked at the end: vae reaches at least the NDCG@10 of ease on each dataset.

    .venv/bin/python benchmarks/neural.py --shared ../shared/data/amazon \\
        --workdir /tmp/deepcart-bench-neural

``--params '{"vae": {"epochs": 50}}'`` overrides hyperparameters per model (for tuning);
``--threads N`` holds torch to N CPU threads. TensorBoard logs go to ``<workdir>/runs``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from deepcart.data.build import build_dataset
from deepcart.data.split import SplitParams
from deepcart.data.synth import synthesize
from deepcart.eval.evaluate import EvalResult, evaluate_models
from deepcart.models import model_class

#: (tag, reviews file relative to the staged data); built with min 2 interactions / 2 ratings.
REAL = [
    ("music", "amazon2014_digital_music_prefix/reviews_Digital_Music_5.prefix.json"),
    ("magazine", "amazon2018_magazine_ratings/Magazine_Subscriptions.csv"),
    ("giftcards", "amazon2018_giftcards_5core/Gift_Cards_5.json"),
]
MODELS = ["vae", "dae", "autoencoder", "ease", "als", "popular"]


def _fmt(x: float, d: int = 4) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.{d}f}"


def table(results: list[EvalResult]) -> list[str]:
    lines = [
        "| model | NDCG@10 [95% CI] | Recall@10 | RMSE | fit s | recommend s |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lo, hi = r.ci["ndcg"]
        m = r.metrics
        lines.append(
            f"| {r.model} | {_fmt(m['ndcg'])} [{_fmt(lo)}, {_fmt(hi)}] | {_fmt(m['recall'])} | "
            f"{_fmt(m.get('rmse', math.nan))} | {_fmt(r.fit_seconds, 2)} | "
            f"{_fmt(r.recommend_seconds, 2)} |"
        )
    lines.append(f"\n{results[0].n_scored:,} test users scored, {results[0].n_skipped:,} skipped.")
    return lines


def build(args: argparse.Namespace, data: Path) -> list[str]:
    """Build the datasets that are not built yet; return their tags."""
    quiet = dict(echo=lambda s: None, progress=False)
    tags = []
    if "synthetic" in args.datasets:
        if not (data / "synthetic" / "manifest.json").is_file():
            synth = synthesize(
                args.workdir / "synthetic",
                n_users=args.synth_users,
                n_items=args.synth_items,
                n_reviews=args.synth_reviews,
                seed=0,
                progress=False,
            )
            build_dataset(
                reviews_file=synth.reviews_path,
                items_file=synth.meta_path,
                output_dir=data,
                tag="synthetic",
                min_interactions=5,
                min_ratings=5,
                **quiet,
            )
        tags.append("synthetic")
    for tag, rel in REAL:
        if tag not in args.datasets:
            continue
        path = args.shared / rel
        if not path.is_file():
            print(f"skipping {tag}: {path} not found")
            continue
        if not (data / tag / "manifest.json").is_file():
            build_dataset(
                reviews_file=path,
                items_file=None,
                output_dir=data,
                tag=tag,
                min_interactions=2,
                min_ratings=2,
                **quiet,
            )
        tags.append(tag)
    return tags


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path("../shared/data/amazon"))
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/deepcart-bench-neural"))
    ap.add_argument("--synth-users", type=int, default=10_000)
    ap.add_argument("--synth-items", type=int, default=5_000)
    ap.add_argument("--synth-reviews", type=int, default=150_000)
    ap.add_argument("--datasets", default="synthetic,music,magazine,giftcards")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--params", default="{}", help="JSON: model -> hyperparameters")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args()
    args.datasets = args.datasets.split(",")
    models = args.models.split(",")
    data = args.workdir / "processed"
    params: dict[str, dict] = json.loads(args.params)
    for m in models:
        if getattr(model_class(m), "neural", False):
            p = params.setdefault(m, {})
            p.setdefault("log_dir", str(args.workdir / "runs"))
            p.setdefault("progress", False)
            if args.threads is not None:
                p.setdefault("threads", args.threads)

    checks: list[str] = []
    for tag in build(args, data):
        started = time.perf_counter()
        results = evaluate_models(
            data_dir=data,
            tag=tag,
            model_types=models,
            split_params=SplitParams(),
            model_dir=args.workdir / "models-unused",
            reports_dir=args.workdir / "reports",
            params=params,
            echo=lambda s: None,
        )
        print(f"\n### {tag} ({time.perf_counter() - started:.1f} s)\n")
        print("\n".join(table(results)), flush=True)
        by = {r.model: r for r in results}
        if "vae" in by and "ease" in by:
            v, e = by["vae"].metrics["ndcg"], by["ease"].metrics["ndcg"]
            checks.append(
                f"{tag}: vae {v:.4f} vs ease {e:.4f} -> {'reaches' if v >= e else 'BELOW'}; "
                f"fit {by['vae'].fit_seconds:.1f} s vs ease {by['ease'].fit_seconds:.2f} s"
                + (f", als {by['als'].fit_seconds:.2f} s" if "als" in by else "")
            )
    if checks:
        print("\n## Checks\n")
        print("\n".join(f"- {c}" for c in checks))


if __name__ == "__main__":
    main()
