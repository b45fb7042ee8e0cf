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
``--threads N`` holds torch to N CPU threads. ``--split-seeds 0,1,2,3,4`` repeats everything on
splits drawn with other seeds (other test users, other held-out items) and then prints, per
dataset, each model's mean NDCG@10 over the splits with its standard error, and vae minus ease
on each split: on sets with a few dozen test users one split's ranking of two models is noise.
TensorBoard logs go to ``<workdir>/runs``. It prints the date and the load average first and
with each table (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
from bench_data import add_dataset_args, build_datasets, load_average
from bench_data import fmt as _fmt

from deepcart.data.split import SplitParams
from deepcart.eval import metrics as M
from deepcart.eval.evaluate import EvalResult, evaluate_models
from deepcart.eval.repeat import summarize_runs
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


def over_splits(runs: list[list[EvalResult]], seeds: list[int]) -> list[str]:
    """Each model's NDCG@10 on every split, its mean and the standard error of that mean."""
    lines = [
        "| model | "
        + " | ".join(f"seed {s}" for s in seeds)
        + " | mean [+- s.e.] | fit s (mean) |",
        "|---|" + "---|" * len(seeds) + "---|---|",
    ]
    for r in summarize_runs(runs):
        lines.append(
            f"| {r.model} | "
            + " | ".join(_fmt(v) for v in r.per_split["ndcg"])
            + f" | {_fmt(r.mean['ndcg'])} [+- {_fmt(r.se['ndcg'])}] | {_fmt(r.fit_seconds, 2)} |"
        )
    return lines


def check(tag: str, runs: list[list[EvalResult]]) -> list[str]:
    """The issue's target on one dataset: vae's NDCG@10 against ease's (mean over the splits)."""
    by = [{r.model: r for r in results} for results in runs]
    if "vae" not in by[0] or "ease" not in by[0]:
        return []
    v = np.array([b["vae"].metrics["ndcg"] for b in by])
    e = np.array([b["ease"].metrics["ndcg"] for b in by])
    fit = {m: np.mean([b[m].fit_seconds for b in by]) for m in ("vae", "ease", "als") if m in by[0]}
    line = (
        f"{tag}: vae {v.mean():.4f} vs ease {e.mean():.4f} -> "
        f"{'reaches' if v.mean() >= e.mean() else 'BELOW'}"
    )
    if len(runs) > 1:
        d = v - e
        line += (
            f" (mean of {len(runs)} splits; vae - ease {d.mean():+.4f} +- "
            f"{d.std(ddof=1) / math.sqrt(len(d)):.4f} s.e., vae >= ease on "
            f"{int((d >= 0).sum())} of {len(d)})"
        )
    line += f"; fit {fit['vae']:.1f} s vs ease {fit['ease']:.2f} s" + (
        f", als {fit['als']:.2f} s" if "als" in fit else ""
    )
    return [line]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    datasets = ["synthetic", "music", "magazine", "giftcards"]
    add_dataset_args(ap, "/tmp/deepcart-bench-neural", datasets)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--params", default="{}", help="JSON: model -> hyperparameters")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument(
        "--split-seeds",
        default="0",
        help="comma-separated seeds of the users split (default 0: one split)",
    )
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

    seeds = [int(v) for v in args.split_seeds.split(",")]
    checks: list[str] = []
    for tag in build_datasets(args):
        runs: list[list[EvalResult]] = []
        for seed in seeds:
            started = time.perf_counter()
            results = evaluate_models(
                data_dir=data,
                tag=tag,
                model_types=models,
                split_params=SplitParams(seed=seed),
                model_dir=args.workdir / "models-unused",
                reports_dir=args.workdir / "reports",
                params=params,
                echo=lambda s: None,
            )
            runs.append(results)
            seconds = time.perf_counter() - started
            title = tag if len(seeds) == 1 else f"{tag}, split seed {seed}"
            print(f"\n### {title} ({seconds:.1f} s; load average {load_average()})\n")
            print("\n".join(table(results)), flush=True)
        if len(seeds) > 1:
            print(f"\n### {tag}: {len(seeds)} splits (seeds {args.split_seeds})\n")
            print("\n".join(over_splits(runs, seeds)), flush=True)
        checks.extend(check(tag, runs))
    if checks:
        print("\n## Checks\n")
        print("\n".join(f"- {c}" for c in checks))


if __name__ == "__main__":
    main()
