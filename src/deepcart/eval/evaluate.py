"""`deepcart test`: run models on a split's test users and compare them side by side.

For each model: reuse the one `train` saved for this tag and split, or fit it; recommend the
top-K for every test user from their input rows (fold-in), excluding what they gave as input;
score against their check rows. Writes, per model, ``reports/<tag>/<split>/<model>/metrics.json``
and ``recs.parquet`` (user_id, parent_asin, rank, score: the exact lists scored), so the table
can be recomputed from the split files and these.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from deepcart import __version__
from deepcart.data.paths import DEFAULT_MODEL_DIR, check_tag
from deepcart.data.split import SplitParams, make_split
from deepcart.data.splitdata import SplitData
from deepcart.errors import InputError
from deepcart.eval import metrics as M
from deepcart.fsutil import atomic_path, atomic_write_text
from deepcart.models import create, model_names
from deepcart.models.base import Recommender
from deepcart.modes import LOW, MIN_ENGAGEMENT, candidates, check_mode, model_input, relevant
from deepcart.progress import progress_enabled
from deepcart.training import (
    fit_model,
    load_saved_model,
    load_trainable,
    model_key,
    model_path,
    split_id,
)

DEFAULT_REPORTS_DIR = Path("reports")
TOPN = ("ndcg", "map", "recall", "precision", "hit_rate", "mrr")
#: AUC needs a dense score row per user; it is computed on at most this many test users.
AUC_USERS = 2000


@dataclass
class EvalResult:
    model: str
    k: int
    source: str  # "saved" or "fitted"
    params: dict[str, Any]  # the scored model's hyperparameters
    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]]
    n_scored: int
    n_skipped: int
    fit_seconds: float
    recommend_seconds: float
    peak_rss_mb: float
    per_user: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    p_vs_best: float = math.nan
    report_dir: Path | None = None


class PeakRSS:
    """Peak resident memory of this process over a block (Linux: VmHWM, reset via clear_refs)."""

    def __enter__(self) -> PeakRSS:
        self.reset_ok = False
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self.reset_ok = True
        except OSError:
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        self.mb = math.nan
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        self.mb = int(line.split()[1]) / 1024
        except OSError:
            pass


def _rating_metrics(model: Recommender, data: SplitData, mode: str) -> dict[str, float]:
    """RMSE, MAE and Pearson r of predicted against held-out ratings (in the model's scale:
    reversed ratings in worst mode, where every check rating is scored)."""
    if not model.predicts_ratings:
        return {}
    inputs = model_input(data.test.inputs, mode, model.feedback)
    chk = model_input(data.test.check, mode, model.feedback).tocoo()
    pred = model.predict(inputs[chk.row], chk.col)
    return {
        "rmse": M.rmse(pred, chk.data),
        "mae": M.mae(pred, chk.data),
        "pearson_r": M.pearson_r(pred, chk.data),
    }


def _auc(
    model: Recommender, data: SplitData, n_users: int, mode: str, allowed: np.ndarray | None
) -> np.ndarray:
    n = min(n_users, data.test.n_users)
    out = np.full(n, np.nan)
    truth = relevant(data.test.check, mode)
    for start in range(0, n, 256):
        stop = min(n, start + 256)
        seen = data.test.inputs[start:stop]
        scores = model.score(model_input(seen, mode, model.feedback)).astype(np.float64)
        out[start:stop] = M.auc_per_user(
            scores, truth[start:stop], exclude=seen, candidates_mask=allowed
        )
    return out


def evaluate_model(
    model: Recommender,
    data: SplitData,
    k: int,
    mode: str = "best",
    allowed: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, float]:
    """Recommend for every test user and compute per-user metrics; returns them, the lists,
    their scores and the recommend time in seconds.

    The model gets each user's input rows as ``mode`` presents them; everything the user rated
    is excluded; in worst mode only ``allowed`` (engaged) items are ranked and only held-out low
    ratings are relevant.
    """
    test = data.test
    inputs = model_input(test.inputs, mode, model.feedback)
    # A list holds each item once: slots beyond the catalog are padding, never allocated.
    k_lists = min(k, model.n_items_)
    started = time.perf_counter()
    recs, scores = model.recommend(
        inputs, k=k_lists, exclude_seen=True, candidates=allowed, exclude=test.inputs
    )
    seconds = time.perf_counter() - started
    per_user = M.topn_metrics(recs, relevant(test.check, mode), k=k_lists)
    if k_lists < k:  # the missing slots are misses: Precision@K still divides by K
        per_user["precision"] *= k_lists / k
    popularity = np.bincount(data.train.indices, minlength=data.train.shape[1])
    per_user["avg_popularity"] = M.mean_popularity(recs, popularity)
    per_user["novelty"] = M.novelty(recs, popularity, data.train.shape[0])
    return per_user, recs, scores, seconds


def _write_recs(path: Path, data: SplitData, recs: np.ndarray, scores: np.ndarray) -> None:
    n, k = recs.shape
    valid = recs >= 0
    rows = np.repeat(np.arange(n), k)[valid.ravel()]
    cols = recs.ravel()[valid.ravel()]
    table = pa.table(
        {
            "user_id": data.test.users.ids.take(pa.array(rows)),
            "parent_asin": data.items.ids.take(pa.array(cols)),
            "rank": pa.array(np.tile(np.arange(1, k + 1), n)[valid.ravel()], pa.int32()),
            "score": pa.array(scores.ravel()[valid.ravel()], pa.float64()),
        }
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def evaluate_models(
    *,
    data_dir: str | Path,
    tag: str,
    model_types: list[str],
    split_params: SplitParams,
    k: int = 10,
    model_dir: str | Path = DEFAULT_MODEL_DIR,
    reports_dir: str | Path = DEFAULT_REPORTS_DIR,
    params: dict[str, dict[str, Any]] | None = None,
    mode: str = "best",
    min_engagement: int = MIN_ENGAGEMENT,
    n_boot: int = 1000,
    echo: Callable[[str], None] = print,
    progress: bool = True,
    report_name: str | None = None,
    saved_as_fitted: bool = False,
) -> list[EvalResult]:
    """Evaluate each model on the test users of the split; print and write the comparison.

    ``progress``: the progress bars of the fits (:mod:`deepcart.progress`); ``False``: none.
    ``report_name``: a folder between the split's report folder and the models' (the repeats
    of :func:`deepcart.eval.repeat.evaluate_repeated`: ``seed-<s>``).
    A saved model of the split is scored instead of fitting one; with ``params`` for its type
    only if it has them, and with ``saved_as_fitted`` only if it has the hyperparameters a fit
    would have (``params`` or the defaults: the repeats fit the other splits with those).
    """
    check_tag(tag)
    check_mode(mode)
    if model_types == ["all"]:
        model_types = model_names()
    model_types = list(dict.fromkeys(model_types))  # each model once
    if not model_types:
        raise InputError("--type: expected a model, a comma-separated list or 'all', got none")
    for t in model_types:
        create(t, (params or {}).get(t))  # fail fast on a bad type or hyperparameter
    if isinstance(k, bool) or k < 1:
        raise M.MetricInputError(f"--top-k: expected a positive integer, got {k}")
    split = make_split(data_dir, tag, split_params, echo=echo)
    if split.params.protocol == "none":
        raise M.MetricInputError(
            "--split none has no test users; evaluate with --split users, last-out, "
            "timestamp or random"
        )
    data = load_trainable(split, tag)
    echo(f"Train: {data.describe()}")
    echo(
        f"Test: {data.test.n_users:,} users, {data.test.inputs.nnz:,} input and "
        f"{data.test.check.nnz:,} check ratings"
    )
    protocol = split.params.protocol
    reports_root = Path(reports_dir) / tag / protocol
    if report_name:
        reports_root = reports_root / report_name
    allowed = candidates(data.train, mode, min_engagement)
    if allowed is not None and not allowed.any():
        # Not an error: quickstart on a tiny category gets here; every list is empty, so say why.
        most = int(np.bincount(data.train.indices, minlength=data.train.shape[1]).max(initial=0))
        echo(
            f"Warning: --min-engagement {min_engagement}: no item has that many training "
            f"ratings (the most rated has {most:,}), so every worst-mode list is empty; lower it"
        )
    if allowed is not None:
        echo(
            f"Worst mode: ranking {int(allowed.sum()):,} of {len(allowed):,} items with >= "
            f"{min_engagement} ratings; relevant = {relevant(data.test.check, mode).nnz:,} "
            f"held-out ratings <= {LOW:g}"
        )
    results: list[EvalResult] = []
    for model_type in model_types:
        path = model_path(model_dir, tag, protocol, model_type, mode)
        with PeakRSS() as mem:
            saved = load_saved_model(path, data, mode, model_type)
            wanted = (params or {}).get(model_type)
            if saved is not None and (wanted or saved_as_fitted):  # only if it has those
                if saved[0].get_params() != create(model_type, wanted).get_params():
                    echo(
                        f"Fitting {model_key(model_type, mode)}: the model saved at {path} has "
                        "other hyperparameters"
                    )
                    saved = None
            if saved is not None:
                model, fit_seconds = saved
                source = "saved"
                changed = model.changed_params_text()
                echo(
                    f"Scoring the saved {model_key(model_type, mode)} model at {path} "
                    f"({'hyperparameters ' + changed if changed else 'default hyperparameters'})"
                )
            else:
                with progress_enabled(progress):
                    model, fit_seconds = fit_model(
                        data, model_type, (params or {}).get(model_type), mode
                    )
                source = "fitted"
            per_user, recs, scores, rec_seconds = evaluate_model(model, data, k, mode, allowed)
            rating = _rating_metrics(model, data, mode)
            per_user["auc"] = np.concatenate(
                [
                    _auc(model, data, AUC_USERS, mode, allowed),
                    np.full(max(0, data.test.n_users - AUC_USERS), np.nan),
                ]
            )
        summary = {name: M.summarize(v) for name, v in per_user.items()}
        ndcg = summary["ndcg"]
        metrics = {name: s.mean for name, s in summary.items()}
        metrics.update(rating)
        metrics["coverage"] = M.catalog_coverage(recs, len(data.items))
        ci = {name: M.bootstrap_ci(per_user[name], n_boot=n_boot) for name in TOPN}
        out_dir = reports_root / model_key(model_type, mode)
        res = EvalResult(
            model=model_key(model_type, mode),
            k=k,
            source=source,
            params=_json_params(model.get_params()),
            metrics=metrics,
            ci=ci,
            n_scored=ndcg.n_scored,
            n_skipped=ndcg.n_skipped,
            fit_seconds=fit_seconds,
            recommend_seconds=rec_seconds,
            peak_rss_mb=mem.mb,
            per_user=per_user,
            report_dir=out_dir,
        )
        _write_recs(out_dir / "recs.parquet", data, recs, scores)
        results.append(res)

    scored = [r for r in results if not math.isnan(r.metrics["ndcg"])]
    # No NDCG at all (no test user to score): no model is better than another, none is best.
    best = max(scored, key=lambda r: r.metrics["ndcg"]) if scored else None
    for r in results:
        r.p_vs_best = (
            math.nan
            if best is None or r is best
            else M.paired_test(r.per_user["ndcg"], best.per_user["ndcg"])
        )
        _write_metrics(r, best, split, data, mode, min_engagement)
    for line in format_table(results, best):
        echo(line)
    if results and results[0].n_skipped:
        what = "check item known to train" if mode == "best" else "held-out low rating"
        echo(
            f"{results[0].n_skipped:,} test users with no {what} were left out of the scores "
            "(counted, not scored as 0)."
        )
    echo(f"Reports written to {reports_root}/")
    return results


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameters as JSON holds them (NaN as null; anything else not JSON, such as a
    path, as its text)."""

    def clean(v: Any) -> Any:
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and math.isnan(v):
            return None
        if v is None or isinstance(v, str | int | float | bool):
            return v
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        return str(v)

    return {k: clean(v) for k, v in params.items()}


def json_number(x: Any) -> Any:
    """``x`` for a JSON report: NaN (no value) as null."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _write_metrics(
    r: EvalResult,
    best: EvalResult | None,
    split: Any,
    data: SplitData,
    mode: str,
    min_engagement: int,
) -> None:
    clean = json_number
    doc = {
        "deepcart_version": __version__,
        "model": r.model,
        "k": r.k,
        "mode": mode,
        "min_engagement": min_engagement if mode == "worst" else None,
        "split": split.params.protocol,
        "split_id": split_id(split),
        "split_params": split.params.__dict__,
        "source": r.source,
        "params": r.params,
        "metrics": {k: clean(v) for k, v in r.metrics.items()},
        "ci95": {k: [clean(a), clean(b)] for k, (a, b) in r.ci.items()},
        "users_scored": r.n_scored,
        "users_skipped_empty_check": r.n_skipped,
        "auc_users": min(AUC_USERS, data.test.n_users),
        "fit_seconds": clean(r.fit_seconds),
        "recommend_seconds": r.recommend_seconds,
        "peak_rss_mb": clean(r.peak_rss_mb),
        "best_model": best.model if best is not None else None,
        "paired_t_test_p_vs_best_ndcg": clean(r.p_vs_best),
        "recs_file": "recs.parquet",
    }
    assert r.report_dir is not None
    atomic_write_text(r.report_dir / "metrics.json", json.dumps(doc, indent=2) + "\n")


def fmt_number(x: float | None, digits: int = 4) -> str:
    """A number for a printed table; NaN (no value) as ``-``."""
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def fmt_p(p: float) -> str:
    """A p-value for a table (two significant digits); NaN (no test) as ``-``."""
    return "-" if math.isnan(p) else f"{p:.2g}"


def aligned(head: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """A printed table: the header, a rule and the rows, the first ``left`` columns aligned
    left and the others right."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if i < left else f"{{:>{w}}}" for i, w in enumerate(widths))
    return [fmt.format(*head), fmt.format(*["-" * w for w in widths])] + [
        fmt.format(*row) for row in rows
    ]


def format_table(results: list[EvalResult], best: EvalResult | None) -> list[str]:
    k = results[0].k if results else 10
    head = [
        "model",
        f"NDCG@{k} [95% CI]",
        f"MAP@{k}",
        f"Recall@{k}",
        f"Prec@{k}",
        f"HR@{k}",
        f"MRR@{k}",
        "Cover",
        "AvgPop",
        "AUC",
        "RMSE",
        "MAE",
        "r",
        "fit s",
        "rec s",
        "peak MB",
        "p vs best",
    ]
    rows = []
    for r in results:
        m = r.metrics
        lo, hi = r.ci["ndcg"]
        rows.append(
            [
                r.model + ("*" if r is best else ""),
                f"{fmt_number(m['ndcg'])} [{fmt_number(lo)}, {fmt_number(hi)}]",
                fmt_number(m["map"]),
                fmt_number(m["recall"]),
                fmt_number(m["precision"]),
                fmt_number(m["hit_rate"]),
                fmt_number(m["mrr"]),
                fmt_number(m["coverage"], 3),
                fmt_number(m["avg_popularity"], 1),
                fmt_number(m["auc"]),
                fmt_number(m.get("rmse", math.nan)),
                fmt_number(m.get("mae", math.nan)),
                fmt_number(m.get("pearson_r", math.nan), 3),
                fmt_number(r.fit_seconds, 2),
                fmt_number(r.recommend_seconds, 2),
                fmt_number(r.peak_rss_mb, 0),
                "-" if r is best or best is None else fmt_p(r.p_vs_best),
            ]
        )
    lines = aligned(head, rows)
    if best is None:
        lines.append(f"No best: no test user could be scored, so no NDCG@{k} to rank by")
    lines.append(
        f"* best by NDCG@{k}; p: paired t-test of per-user NDCG@{k} against the best; "
        f"{results[0].n_scored if results else 0:,} users scored; AUC on up to {AUC_USERS:,} users"
    )
    return lines
