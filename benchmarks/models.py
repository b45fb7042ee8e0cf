"""Benchmark: every model side by side on the synthetic default and the staged real datasets.

For each dataset: build it (raw files go through ingest), then `deepcart test` with every classic
model (all but the neural ones, which have their own benchmark: `benchmarks/neural.py`) in best
mode and in worst mode on the `users` split, and print one Markdown table per dataset and mode
(NDCG@10 with its 95% CI and the p-value of a paired t-test of its per-user NDCG@10 against
popular's in best mode and naive-worst's in worst mode, RMSE where the model predicts ratings,
fit and recommend seconds). The
"what must hold" checks of the models issue are printed at the end, with the paired test's p and
the number of test users scored: ease, als and itemknn beat popular on NDCG@10 (best mode), and
in worst mode they beat naive-worst, the "lowest average rating among engaged items" heuristic,
on worst mode's relevance (held-out ratings <= 2).

    python benchmarks/models.py --shared ../shared/data/amazon --workdir /tmp/deepcart-bench-models

It prints the date and the load average first (the machine may be shared: times are noisy).
"""

from __future__ import annotations

import argparse
import math
import time

from bench_data import DATASETS, add_dataset_args, build_datasets, load_average
from bench_data import fmt as _fmt

from deepcart.data.split import SplitParams, make_split
from deepcart.data.splitdata import load_split_data
from deepcart.eval import metrics as M
from deepcart.eval.evaluate import EvalResult, evaluate_models
from deepcart.models import NEEDS_TORCH, model_names


def table(results: list[EvalResult], reference: str) -> list[str]:
    """The Markdown table; "p vs <reference>": paired t-test of per-user NDCG@10."""
    ref = next((r for r in results if r.model.removesuffix("-worst") == reference), None)
    lines = [
        f"| model | NDCG@10 [95% CI] | p vs {reference} | Recall@10 | MAP@10 | RMSE | fit s "
        "| recommend s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lo, hi = r.ci["ndcg"]
        m = r.metrics
        p = math.nan
        if ref is not None and r is not ref and r.n_scored:
            p = M.paired_test(r.per_user["ndcg"], ref.per_user["ndcg"])
        lines.append(
            f"| {r.model} | {_fmt(m['ndcg'])} [{_fmt(lo)}, {_fmt(hi)}] | {_fmt(p, 2)} | "
            f"{_fmt(m['recall'])} | {_fmt(m['map'])} | {_fmt(m.get('rmse', math.nan))} | "
            f"{_fmt(r.fit_seconds, 2)} | {_fmt(r.recommend_seconds, 2)} |"
        )
    lines.append(f"\n{results[0].n_scored:,} test users scored, {results[0].n_skipped:,} skipped.")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_dataset_args(ap, "/tmp/deepcart-bench-models", DATASETS)
    args = ap.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}, load average {load_average()}")
    classic = [m for m in model_names() if m not in NEEDS_TORCH]
    data = args.workdir / "processed"
    quiet = dict(echo=lambda s: None)
    datasets = build_datasets(args)

    checks: list[str] = []
    for tag in datasets:
        for mode in ("best", "worst"):
            started = time.perf_counter()
            results = evaluate_models(
                data_dir=data,
                tag=tag,
                model_types=classic,
                split_params=SplitParams(),
                model_dir=args.workdir / "models",
                reports_dir=args.workdir / "reports",
                mode=mode,
                min_engagement=5,
                **quiet,
            )
            print(
                f"\n### {tag}, {mode} mode ({time.perf_counter() - started:.1f} s; "
                f"load average {load_average()})\n"
            )
            if mode == "best":
                split = make_split(data, tag, SplitParams(), echo=lambda s: None)
                print(f"Training data: {load_split_data(split).describe()}.\n")
            print("\n".join(table(results, "popular" if mode == "best" else "naive")))
            by = {r.model.removesuffix("-worst"): r for r in results}
            n = results[0].n_scored
            if mode == "worst" and n == 0:
                checks.append(f"{tag} worst: no test user has a held-out low rating; not scored")
                continue
            ref = "popular" if mode == "best" else "naive"
            ref_name = "popular" if mode == "best" else "naive-worst"
            for m in ("ease", "als", "itemknn"):
                a, b = by[m].metrics["ndcg"], by[ref].metrics["ndcg"]
                p = M.paired_test(by[m].per_user["ndcg"], by[ref].per_user["ndcg"])
                checks.append(
                    f"{tag} {mode}: {m} {a:.4f} vs {ref_name} {b:.4f} -> "
                    f"{'beats' if a > b else 'DOES NOT beat'} (p {_fmt(p, 3)}, {n} test users)"
                )
    print("\n## Checks\n")
    print("\n".join(f"- {c}" for c in checks))


if __name__ == "__main__":
    main()
