"""Benchmark: the neural models (vae, dae, autoencoder) next to ease, als and popular.

For each dataset (the synthetic benchmark set and the staged real Amazon sets): build it, then
run `deepcart test` on the `users` split in best mode for every model (the same library call:
:func:`deepcart.eval.evaluate.evaluate_models`, so the neural models early-stop on the split's
validation users) and print one Markdown table per dataset: NDCG@10 with its 95% bootstrap CI,
the p-value of a paired t-test of its per-user NDCG@10 against ease's, Recall@10, RMSE where the
model predicts ratings (svd for reference), fit and recommend seconds. The issue's target
is checked at the end: vae reaches at least the NDCG@10 of ease on each dataset.

    .venv/bin/python benchmarks/neural.py --shared ../shared/data/amazon \\
        --workdir /tmp/deepcart-bench-neural

``--params '{"vae": {"epochs": 50}}'`` overrides hyperparameters per model (for tuning);
``--threads N`` holds torch to N CPU threads. TensorBoard logs go to ``<workdir>/runs``. It prints
the date and the load average first and with each table (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import math
import time

from bench_data import add_dataset_args, build_datasets, load_average
from bench_data import fmt as _fmt

from deepcart.data.split import SplitParams
from deepcart.eval import metrics as M
from deepcart.eval.evaluate import EvalResult, evaluate_models
from deepcart.models import model_class

MODELS = ["vae", "dae", "autoencoder", "ease", "als", "svd", "popular"]


def table(results: list[EvalResult]) -> list[str]:
    lines = [
        "| model | NDCG@10 [95% CI] | p vs ease | Recall@10 | RMSE | fit s | recommend s |",
        "|---|---|---|---|---|---|---|",
    ]
    ease = next((r for r in results if r.model == "ease"), None)
    for r in results:
        p = math.nan
        if ease is not None and r is not ease:
            p = M.paired_test(r.per_user["ndcg"], ease.per_user["ndcg"])
        lo, hi = r.ci["ndcg"]
        m = r.metrics
        lines.append(
            f"| {r.model} | {_fmt(m['ndcg'])} [{_fmt(lo)}, {_fmt(hi)}] | {_fmt(p, 2)} | "
            f"{_fmt(m['recall'])} | "
            f"{_fmt(m.get('rmse', math.nan))} | {_fmt(r.fit_seconds, 2)} | "
            f"{_fmt(r.recommend_seconds, 2)} |"
        )
    lines.append(f"\n{results[0].n_scored:,} test users scored, {results[0].n_skipped:,} skipped.")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    datasets = ["synthetic", "music", "magazine", "giftcards"]
    add_dataset_args(ap, "/tmp/deepcart-bench-neural", datasets)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--params", default="{}", help="JSON: model -> hyperparameters")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}, load average {load_average()}")
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
    for tag in build_datasets(args):
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
        seconds = time.perf_counter() - started
        print(f"\n### {tag} ({seconds:.1f} s; load average {load_average()})\n")
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
