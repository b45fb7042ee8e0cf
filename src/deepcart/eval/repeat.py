"""Repeated evaluation: the same models on several splits drawn with consecutive seeds.

One split's test users can be few (dozens on a small category), and then which of two close
models wins is mostly which users the split drew: in ``benchmarks/neural.py`` one split of Gift
Cards puts ``vae`` at 0.170 against ``ease``'s 0.199 and the next at 0.384 against 0.296.
:func:`evaluate_repeated` runs :func:`~deepcart.eval.evaluate.evaluate_models` on ``repeats``
splits (seeds ``seed``, ``seed + 1``, ...; other test and validation users, other held-out
items), then prints and writes each model's mean over the splits with its standard error, on
how many splits it was the best, and a paired t-test over the splits against the model with the
best mean NDCG@K.

Files: each split's reports go to ``<reports>/<tag>/<protocol>/seed-<s>/<model>/`` (as
``deepcart test`` writes them), the summary to ``<reports>/<tag>/<protocol>/repeats.json``
(``repeats-worst.json`` in worst mode, as a worst-mode model's reports go to ``<model>-worst``:
one mode's summary does not replace the other's). A run on the very splits of the summary already
there (the same split ids, hence the same dataset, protocol and seeds; the same K) adds its models
to it: ``--type ease`` then ``--type vae`` leave one summary of both, compared on the same
splits; a model run again replaces its earlier figures. A summary of other splits is replaced,
and the run says so.
The split on disk is the one the given seed names again afterwards (saved models and
``recommend`` check it), also when a repeat fails.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from deepcart import __version__
from deepcart.data.paths import DEFAULT_MODEL_DIR
from deepcart.data.split import SplitParams, load_split, make_split
from deepcart.errors import InputError
from deepcart.eval import metrics as M
from deepcart.eval.evaluate import (
    DEFAULT_REPORTS_DIR,
    EvalResult,
    aligned,
    evaluate_models,
    fmt_number,
    fmt_p,
    json_number,
)
from deepcart.fsutil import atomic_write_text, check_dirs
from deepcart.modes import MIN_ENGAGEMENT
from deepcart.training import split_id

#: Protocols whose split depends on the seed (the others would repeat the same split).
SEEDED = ("users", "random")
#: The metrics summarised over the splits (when a model has them).
SUMMARISED = (
    "ndcg",
    "map",
    "recall",
    "precision",
    "hit_rate",
    "mrr",
    "auc",
    "coverage",
    "avg_popularity",
    "rmse",
    "mae",
    "pearson_r",
)


@dataclass
class RepeatedResult:
    """One model over the splits: its metrics per split (in seed order), their mean and the
    standard error of the mean, on how many splits its NDCG@K was the best, and the p-value of a
    paired t-test of its per-split NDCG@K against the best model's."""

    model: str
    per_split: dict[str, list[float]]
    mean: dict[str, float]
    se: dict[str, float]
    fit_seconds: float
    best_on: int
    p_vs_best: float = math.nan
    params: dict[str, Any] | None = None  # the hyperparameters (the same on every split)


def check_repeats(repeats: Any, protocol: str) -> int:
    """``repeats`` as an int >= 1; more than one only for a protocol that depends on the seed."""
    if isinstance(repeats, bool) or not isinstance(repeats, int | np.integer) or repeats < 1:
        raise InputError(f"--repeat: expected a positive integer, got {repeats!r}")
    if repeats > 1 and protocol not in SEEDED:
        raise InputError(
            f"--repeat {repeats}: the {protocol} split does not depend on --seed, so every "
            f"repeat would be the same split; use --split {' or '.join(SEEDED)}"
        )
    return int(repeats)


class SeededSplits:
    """The split parameters of ``repeats`` splits (seeds ``split_params.seed`` + 0, 1, ...), as
    a context manager: on leaving it (also by an exception) the split the given seed names is
    made again if another one was, because saved models and ``recommend`` check the split on
    disk::

        with SeededSplits(data_dir, tag, split_params, 5) as splits:
            for params in splits:
                ...  # make_split(data_dir, tag, params), fit, score
    """

    def __init__(
        self, data_dir: str | Path, tag: str, split_params: SplitParams, repeats: int
    ) -> None:
        self.data_dir, self.tag, self.split_params = data_dir, tag, split_params
        self.repeats = check_repeats(repeats, split_params.protocol)
        self.seeds = [int(split_params.seed) + i for i in range(self.repeats)]
        self.changed = False

    def __enter__(self) -> SeededSplits:
        return self

    def __iter__(self) -> Iterator[SplitParams]:
        for seed in self.seeds:
            self.changed = self.changed or seed != self.split_params.seed
            yield replace(self.split_params, seed=seed)

    def __exit__(self, *exc: object) -> None:
        if self.changed:
            make_split(self.data_dir, self.tag, self.split_params, echo=lambda s: None)


def summary_path(reports_dir: str | Path, tag: str, protocol: str, mode: str) -> Path:
    """Where :func:`evaluate_repeated` writes its summary: ``repeats.json``, or
    ``repeats-worst.json`` in worst mode."""
    name = "repeats.json" if mode == "best" else f"repeats-{mode}.json"
    return Path(reports_dir) / tag / protocol / name


def mean_and_se(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    a = a[~np.isnan(a)]
    if a.size == 0:
        return math.nan, math.nan
    se = float(a.std(ddof=1) / math.sqrt(a.size)) if a.size > 1 else math.nan
    return float(a.mean()), se


def summarise_metrics(
    per_split: dict[str, list[float]],
) -> tuple[dict[str, float], dict[str, float]]:
    """Each metric's mean over the splits and the standard error of that mean."""
    stats = {key: mean_and_se(values) for key, values in per_split.items()}
    return {k: m for k, (m, _) in stats.items()}, {k: e for k, (_, e) in stats.items()}


def metrics_doc(
    per_split: dict[str, list[float]], mean: dict[str, float], se: dict[str, float]
) -> dict[str, Any]:
    """The metrics over the splits as a JSON report holds them (NaN as null)."""
    return {
        key: {
            "per_split": [json_number(v) for v in values],
            "mean": json_number(mean[key]),
            "se": json_number(se[key]),
        }
        for key, values in per_split.items()
    }


def summarize_runs(runs: list[list[EvalResult]]) -> list[RepeatedResult]:
    """Each model's metrics over the runs (one list of results per split, same models)."""
    out = []
    for i, name in enumerate(r.model for r in runs[0]):
        rows = [results[i] for results in runs]
        keys = [k for k in SUMMARISED if k in rows[0].metrics]
        per_split = {k: [float(r.metrics.get(k, math.nan)) for r in rows] for k in keys}
        mean, se = summarise_metrics(per_split)
        fit = float(np.nanmean([r.fit_seconds for r in rows]))
        out.append(RepeatedResult(name, per_split, mean, se, fit, best_on=0, params=rows[0].params))
    return rank_results(out)


def rank_results(results: list[RepeatedResult]) -> list[RepeatedResult]:
    """Set each model's ``best_on`` (on how many splits its NDCG@K was the highest) and
    ``p_vs_best`` (paired t-test of its per-split NDCG@K against the best mean's) among
    ``results``, all over the same splits; returns them."""
    ndcg = np.array([r.per_split["ndcg"] for r in results], dtype=float).reshape(len(results), -1)
    finite = ~np.isnan(ndcg)
    best_each = np.where(
        finite.any(axis=0), np.nanmax(np.where(finite, ndcg, -np.inf), axis=0), np.nan
    )
    best = _best(results)
    for r, row in zip(results, ndcg, strict=True):
        r.best_on = int(np.sum(row == best_each))  # NaN equals nothing
        r.p_vs_best = math.nan
        if r is not best and best is not None:
            r.p_vs_best = M.paired_test(row, np.asarray(best.per_split["ndcg"], dtype=float))
    return results


def _best(results: list[RepeatedResult]) -> RepeatedResult | None:
    finite = [r for r in results if not math.isnan(r.mean["ndcg"])]
    return max(finite, key=lambda r: r.mean["ndcg"]) if finite else None


def _pm(r: RepeatedResult, key: str) -> str:
    if key not in r.mean:
        return "-"
    return f"{fmt_number(r.mean[key])} ± {fmt_number(r.se[key])}"


def format_summary(results: list[RepeatedResult], k: int, seeds: list[int]) -> list[str]:
    """The summary table: mean ± standard error over the splits, best on, p vs best."""
    best = _best(results)
    head = [
        "model",
        f"NDCG@{k} mean ± s.e.",
        "min..max",
        f"Recall@{k} mean ± s.e.",
        f"HR@{k}",
        "AUC",
        "RMSE",
        "fit s",
        "best on",
        "p vs best",
    ]
    rows = []
    for r in results:
        nd = [v for v in r.per_split["ndcg"] if not math.isnan(v)]
        rows.append(
            [
                r.model + ("*" if r is best else ""),
                _pm(r, "ndcg"),
                f"{fmt_number(min(nd))}..{fmt_number(max(nd))}" if nd else "-",
                _pm(r, "recall"),
                fmt_number(r.mean.get("hit_rate", math.nan)),
                fmt_number(r.mean.get("auc", math.nan)),
                fmt_number(r.mean.get("rmse", math.nan)),
                fmt_number(r.fit_seconds, 2),
                f"{r.best_on} of {len(seeds)}",
                "-" if r is best else fmt_p(r.p_vs_best),
            ]
        )
    return [
        f"Over {len(seeds)} splits (seeds {', '.join(map(str, seeds))}): mean ± standard error "
        f"of the mean; p: paired t-test of the splits' NDCG@{k} against the best mean (*)",
        *aligned(head, rows),
    ]


def evaluate_repeated(
    *,
    data_dir: str | Path,
    tag: str,
    model_types: list[str],
    split_params: SplitParams,
    repeats: int,
    k: int = 10,
    model_dir: str | Path = DEFAULT_MODEL_DIR,
    reports_dir: str | Path = DEFAULT_REPORTS_DIR,
    params: dict[str, dict[str, Any]] | None = None,
    mode: str = "best",
    min_engagement: int = MIN_ENGAGEMENT,
    echo: Callable[[str], None] = print,
    progress: bool = True,
) -> list[RepeatedResult]:
    """:func:`evaluate_models` on ``repeats`` splits (seeds ``split_params.seed`` + 0, 1, ...),
    then the summary over them (printed, and written to ``repeats.json``)."""
    common = dict(
        data_dir=data_dir,
        tag=tag,
        model_types=model_types,
        k=k,
        model_dir=model_dir,
        reports_dir=reports_dir,
        params=params,
        mode=mode,
        min_engagement=min_engagement,
        echo=echo,
        progress=progress,
    )
    path = summary_path(reports_dir, tag, split_params.protocol, mode)
    check_dirs(path.parent, f"cannot write {path}")  # before the first fit, not after the last
    runs: list[list[EvalResult]] = []
    ids: list[str] = []
    with SeededSplits(data_dir, tag, split_params, repeats) as splits:
        for i, params_i in enumerate(splits):
            echo(f"\nSplit {i + 1} of {splits.repeats}: --seed {params_i.seed}")
            runs.append(
                evaluate_models(
                    split_params=params_i,
                    report_name=f"seed-{params_i.seed}",
                    # every split's model with the same hyperparameters: a saved one only if
                    # it has those the other splits are fitted with
                    saved_as_fitted=True,
                    **common,  # type: ignore[arg-type]
                )
            )
            ids.append(split_id(load_split(data_dir, tag, params_i.protocol)))
        seeds = splits.seeds
    summary = summarize_runs(runs)
    same = {"k": k, "mode": mode, "min_engagement": _engagement(mode, min_engagement)}
    kept, note = _earlier_results(path, {**same, "split_ids": ids}, {r.model for r in summary})
    if kept:
        summary = rank_results(kept + summary)
    echo("")
    for line in format_summary(summary, k, seeds):
        echo(line)
    if note:
        echo(note)
    _write_summary(path, summary, same, split_params, seeds, ids)
    echo(f"Summary written to {path}")
    return summary


def _engagement(mode: str, min_engagement: int) -> int | None:
    return min_engagement if mode == "worst" else None


def _earlier_results(
    path: Path, same: dict[str, Any], models: set[str]
) -> tuple[list[RepeatedResult], str | None]:
    """The models of the summary at ``path`` that this run did not run, where that summary
    is of the same splits (its ``same`` keys equal); and a line saying what became of it."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return [], None
    except (OSError, ValueError):  # a damaged file: nothing of it can be trusted
        return [], f"Replaced {path}: it could not be read"
    if not isinstance(doc, dict) or any(doc.get(key) != value for key, value in same.items()):
        return [], f"Replaced {path}: it summarised other splits or another K"
    kept = []
    try:
        for name, entry in doc["models"].items():
            if name in models:
                continue
            per_split = {
                key: [math.nan if v is None else float(v) for v in m["per_split"]]
                for key, m in entry["metrics"].items()
            }
            if any(len(v) != len(same["split_ids"]) for v in per_split.values()):
                raise ValueError("not one value per split")
            mean, se = summarise_metrics(per_split)
            fit = entry.get("fit_seconds_mean")
            fit = math.nan if fit is None else float(fit)
            params = entry.get("params") if isinstance(entry.get("params"), dict) else None
            kept.append(RepeatedResult(name, per_split, mean, se, fit, best_on=0, params=params))
    except (AttributeError, KeyError, TypeError, ValueError):
        return [], f"Replaced {path}: it could not be read"
    if not kept:
        return [], None
    names = ", ".join(r.model for r in kept)
    return kept, f"Kept from the earlier summary of the same splits: {names}"


def _write_summary(
    path: Path,
    results: list[RepeatedResult],
    same: dict[str, Any],
    split_params: SplitParams,
    seeds: list[int],
    ids: list[str],
) -> None:
    clean = json_number
    best = _best(results)
    doc = {
        "deepcart_version": __version__,
        **same,
        "split": split_params.protocol,
        "split_params": {**split_params.__dict__, "seed": None},
        "seeds": seeds,
        "split_ids": ids,
        "reports": [f"seed-{s}" for s in seeds],
        "best_model": best.model if best is not None else None,
        "models": {
            r.model: {
                "params": r.params,
                "metrics": metrics_doc(r.per_split, r.mean, r.se),
                "fit_seconds_mean": clean(r.fit_seconds),
                "best_on": r.best_on,
                "paired_t_test_p_vs_best_ndcg": clean(r.p_vs_best),
            }
            for r in results
        },
    }
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
