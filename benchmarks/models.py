"""Benchmark: every model side by side on the synthetic default and the staged real datasets.

For each dataset: build it (raw files go through ingest), then `deepcart test --type all` in best
mode and in worst mode on the `users` split, and print one Markdown table per dataset and mode
(NDCG@10 with its 95% CI, RMSE where the model predicts ratings, fit and recommend seconds). The
"what must hold" checks of the models issue are printed at the end: ease, als and itemknn beat
popular on NDCG@10 (best mode), and the best worst-mode model beats naive-worst, the "lowest
average rating among engaged items" heuristic.

    python benchmarks/models.py --shared ../shared/data/amazon --workdir /tmp/deepcart-bench-models
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from deepcart.data.build import build_dataset
from deepcart.data.split import SplitParams
from deepcart.data.synth import synthesize
from deepcart.eval.evaluate import EvalResult, evaluate_models

#: (tag, reviews file relative to the staged data, min interactions, min ratings)
REAL = [
    ("giftcards", "amazon2018_giftcards_5core/Gift_Cards_5.json", 2, 2),
    ("fashion", "amazon2018_fashion_5core/AMAZON_FASHION_5.json", 2, 2),
    ("music", "amazon2014_digital_music_prefix/reviews_Digital_Music_5.prefix.json", 2, 2),
    ("magazine", "amazon2018_magazine_ratings/Magazine_Subscriptions.csv", 2, 2),
    ("beauty5", "amazon2023_all_beauty_benchmark/5core/rating_only/All_Beauty.csv", 2, 2),
]


def _fmt(x: float, d: int = 4) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.{d}f}"


def table(results: list[EvalResult]) -> list[str]:
    lines = [
        "| model | NDCG@10 [95% CI] | Recall@10 | MAP@10 | RMSE | fit s | recommend s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lo, hi = r.ci["ndcg"]
        m = r.metrics
        lines.append(
            f"| {r.model} | {_fmt(m['ndcg'])} [{_fmt(lo)}, {_fmt(hi)}] | {_fmt(m['recall'])} | "
            f"{_fmt(m['map'])} | {_fmt(m.get('rmse', math.nan))} | {_fmt(r.fit_seconds, 2)} | "
            f"{_fmt(r.recommend_seconds, 2)} |"
        )
    lines.append(f"\n{results[0].n_scored:,} test users scored, {results[0].n_skipped:,} skipped.")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path("../shared/data/amazon"))
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/deepcart-bench-models"))
    ap.add_argument("--synth-users", type=int, default=10_000)
    ap.add_argument("--synth-items", type=int, default=5_000)
    ap.add_argument("--synth-reviews", type=int, default=150_000)
    args = ap.parse_args()
    data = args.workdir / "processed"
    quiet = dict(echo=lambda s: None)
    datasets: list[str] = []

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
        progress=False,
        **quiet,
    )
    datasets.append("synthetic")
    for tag, rel, mi, mr in REAL:
        path = args.shared / rel
        if not path.is_file():
            print(f"skipping {tag}: {path} not found")
            continue
        build_dataset(
            reviews_file=path,
            items_file=None,
            output_dir=data,
            tag=tag,
            min_interactions=mi,
            min_ratings=mr,
            progress=False,
            **quiet,
        )
        datasets.append(tag)

    checks: list[str] = []
    for tag in datasets:
        for mode in ("best", "worst"):
            started = time.perf_counter()
            results = evaluate_models(
                data_dir=data,
                tag=tag,
                model_types=["all"],
                split_params=SplitParams(),
                model_dir=args.workdir / "models",
                reports_dir=args.workdir / "reports",
                mode=mode,
                min_engagement=5,
                **quiet,
            )
            print(f"\n### {tag}, {mode} mode ({time.perf_counter() - started:.1f} s)\n")
            print("\n".join(table(results)))
            by = {r.model.removesuffix("-worst"): r.metrics["ndcg"] for r in results}
            if mode == "best":
                for m in ("ease", "als", "itemknn"):
                    ok = by[m] > by["popular"]
                    checks.append(
                        f"{tag}: {m} {by[m]:.4f} vs popular {by['popular']:.4f} -> "
                        f"{'beats' if ok else 'DOES NOT beat'}"
                    )
            elif results[0].n_scored == 0:
                checks.append(f"{tag} worst: no test user has a held-out low rating; not scored")
            else:
                best = max((m for m in by if m != "naive"), key=lambda m: by[m])
                ok = by[best] > by["naive"]
                checks.append(
                    f"{tag} worst: best model {best} {by[best]:.4f} vs naive-worst (lowest "
                    f"average rating among engaged items) {by['naive']:.4f} -> "
                    f"{'beats' if ok else 'DOES NOT beat'}"
                )
    print("\n## Checks\n")
    print("\n".join(f"- {c}" for c in checks))


if __name__ == "__main__":
    main()
