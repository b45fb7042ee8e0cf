"""Hyperparameter search on the validation users: ``deepcart tune``.

Every combination of a grid (``{"reg": [100, 500, 2000]}``: a JSON object of hyperparameter ->
list of values; a single value is a list of one; or a list of such objects, whose combinations
are tried one grid after the other, as scikit-learn's ``ParameterGrid`` does) is fitted on the
split's training users and scored on its **validation** users (their input rows in, their
held-out rows to find), never on the test users: those stay for ``deepcart test`` of the chosen
hyperparameters. A model that early-stops on validation users (the neural ones) is fitted twice
per combination: it early-stops on one random half of the validation users and is scored on the
other half, then the other way round, so that no user is scored by a model that picked its epoch
on them (scoring the same users it stopped on would flatter it).

With ``repeats`` > 1 each combination is scored on that many splits (seeds ``seed``, ``seed +
1``, ...) and ranked by its mean, with the standard error: on a small dataset one split's
validation users are too few to tell close settings apart (:mod:`deepcart.eval.repeat`).

Prints one line per fit as it ends, then the table best first, and writes
``<reports>/<tag>/<protocol>/tune/<model>.json`` (every combination's metrics per split, the
best, the command to test it).
"""

from __future__ import annotations

import itertools
import json
import math
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deepcart import __version__
from deepcart.data.matrix import IdIndex
from deepcart.data.paths import check_tag
from deepcart.data.split import SplitParams, make_split
from deepcart.data.splitdata import EvalSet, SplitData
from deepcart.errors import InputError
from deepcart.eval import metrics as M
from deepcart.eval.evaluate import (
    DEFAULT_REPORTS_DIR,
    TOPN,
    aligned,
    evaluate_model,
    fmt_number,
)
from deepcart.eval.repeat import SeededSplits, metrics_doc, summarise_metrics
from deepcart.fsutil import atomic_write_text, check_dirs
from deepcart.models import create, model_class, parse_json, parse_params
from deepcart.modes import LOW, MIN_ENGAGEMENT, candidates, check_mode, require_engaged
from deepcart.training import fit_model, load_trainable, model_key, split_id

#: The metrics a grid can be ranked by (``--metric``), all at K on the validation users.
METRICS = TOPN
#: More combinations than this is almost surely a mistake in the grid.
MAX_COMBINATIONS = 1000


@dataclass
class Trial:
    """One combination: its hyperparameters (the grid's part), its validation metrics per split
    and their mean and standard error, and its mean fit time."""

    params: dict[str, Any]
    per_split: dict[str, list[float]]
    mean: dict[str, float]
    se: dict[str, float]
    fit_seconds: float


Grid = dict[str, list[Any]]


def parse_grid(
    text: str | dict[str, Any] | list[dict[str, Any]] | None, base: dict[str, Any] | None = None
) -> list[Grid]:
    """The ``--grid`` JSON as a list of grids ``{name: [values]}`` (a JSON object is one grid, a
    list of objects several; a non-list value is a list of one); a name also given in ``base``
    (``--params``) is an error."""
    example = 'e.g. \'{"reg": [100, 500]}\' or \'[{"a": [1, 2]}, {"b": [3]}]\''
    if isinstance(text, str):
        stripped = text.lstrip()
        if stripped.startswith("["):
            grids = parse_json(text, "--grid")
        else:
            grids = [parse_params(text, flag="--grid")]
    else:
        grids = list(text) if isinstance(text, list) else [text]
    if not grids:
        raise InputError(f"--grid: an empty list gives nothing to try; {example}")
    out: list[Grid] = []
    for n, grid in enumerate(grids):
        where = f"--grid[{n}]" if len(grids) > 1 else "--grid"
        if not isinstance(grid, dict) or not grid:
            raise InputError(f"{where}: expected a non-empty JSON object, {example}")
        one: Grid = {}
        for name, values in grid.items():
            values = values if isinstance(values, list) else [values]
            if not values:
                raise InputError(f"{where}: {name}: an empty list gives nothing to try")
            one[name] = values
        both = sorted(set(one) & set(base or {}))
        if both:
            raise InputError(
                f"{where}: {', '.join(both)} also given by --params (or --nn-batch/--nn-epochs); "
                "give it once"
            )
        out.append(one)
    return out


def combinations(grid: Grid | list[Grid]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in the grid's order (the last name varies
    fastest); of a list of grids, each grid's in turn, a combination already listed left out.
    More than :data:`MAX_COMBINATIONS` is an error."""
    grids = grid if isinstance(grid, list) else [grid]
    n = sum(math.prod(len(v) for v in g.values()) for g in grids)
    if n > MAX_COMBINATIONS:
        raise InputError(
            f"--grid: {n:,} combinations; at most {MAX_COMBINATIONS:,} (fewer values, or tune "
            "in steps)"
        )
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for g in grids:
        names = list(g)
        for values in itertools.product(*g.values()):
            combo = dict(zip(names, values, strict=True))
            key = json.dumps(_same_numbers(combo), sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append(combo)
    return out


def _same_numbers(value: Any) -> Any:
    """``value`` with each whole float as the int it equals (``50.0`` -> ``50``), so that two
    combinations that differ only in how a number is written are one (a bool stays a bool)."""
    if isinstance(value, dict):
        return {k: _same_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_same_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _label(params: dict[str, Any]) -> str:
    return json.dumps(params, separators=(", ", ": "))


def tune_model(
    *,
    data_dir: str | Path,
    tag: str,
    model_type: str,
    grid: Grid | list[Grid],
    split_params: SplitParams,
    params: dict[str, Any] | None = None,
    k: int = 10,
    metric: str = "ndcg",
    repeats: int = 1,
    mode: str = "best",
    min_engagement: int = MIN_ENGAGEMENT,
    reports_dir: str | Path = DEFAULT_REPORTS_DIR,
    echo: Callable[[str], None] = print,
) -> list[Trial]:
    """Fit ``model_type`` with ``params`` and each combination of ``grid`` on the training
    users, score it on the validation users; return the trials best first (by ``metric``@``k``,
    the mean over ``repeats`` splits)."""
    check_tag(tag)
    check_mode(mode)
    if metric not in METRICS:
        raise InputError(f"--metric: expected one of {', '.join(METRICS)}, got {metric!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputError(f"--top-k: expected a positive integer, got {k!r}")
    if split_params.protocol == "none":
        raise InputError(
            "--split none has no validation users to tune on; use --split users, last-out, "
            "timestamp or random"
        )
    base = dict(params or {})
    combos = combinations(grid)
    create(model_type, base)  # --params (its errors name it)
    for combo in combos:  # and every value of the grid, before the first fit
        try:
            create(model_type, {**base, **combo})
        except InputError as exc:
            why = str(exc).removeprefix("--params: ")
            raise InputError(f"--grid: {why}") from None
    path = Path(reports_dir) / tag / split_params.protocol / "tune"
    path = path / f"{model_key(model_type, mode)}.json"
    check_dirs(path.parent, f"cannot write {path}")  # before the first fit, not after the last
    early_stopping = bool(getattr(model_class(model_type), "uses_validation", False))
    per_combo: list[dict[str, list[float]]] = [{m: [] for m in METRICS} for _ in combos]
    fit_times: list[list[float]] = [[] for _ in combos]
    n_val = 0  # validation users over the splits
    with SeededSplits(data_dir, tag, split_params, repeats) as splits:
        for r, split_params_r in enumerate(splits):
            split = make_split(data_dir, tag, split_params_r, echo=echo if r == 0 else _quiet)
            data = load_trainable(split, tag)
            if data.val.n_users == 0:
                raise InputError(
                    f"the {split_params.protocol} split of {tag!r} has no validation users to "
                    "tune on"
                )
            allowed = candidates(data.train, mode, min_engagement)
            require_engaged(data.train, allowed, min_engagement)  # as recommend: no empty lists
            where = (
                f", split {r + 1} of {splits.repeats} (--seed {split_params_r.seed})"
                if splits.repeats > 1
                else ""
            )
            n_val += data.val.n_users
            crossed = early_stopping and data.val.n_users >= 2
            echo(
                f"Tuning {model_type} on {data.val.n_users:,} validation users{where}: "
                f"{len(combos)} combination{'s' * (len(combos) != 1)}"
                + (" (each fitted twice: early stopping on one half, scored on the other)"
                   if crossed else "")
            )  # fmt: skip
            for i, combo in enumerate(combos):
                started = time.perf_counter()
                per_user, fit_seconds = _score_on_validation(
                    data, model_type, {**base, **combo}, k, mode, allowed, crossed
                )
                for m in METRICS:
                    per_combo[i][m].append(M.summarize(per_user[m]).mean)
                fit_times[i].append(fit_seconds)
                echo(
                    f"  [{i + 1}/{len(combos)}] {_label(combo)}: {metric}@{k} "
                    f"{fmt_number(per_combo[i][metric][-1])} "
                    f"({time.perf_counter() - started:.1f} s)"
                )
        seeds = splits.seeds
        last_split = split
    trials = []
    for combo, scores, times in zip(combos, per_combo, fit_times, strict=True):
        mean, se = summarise_metrics(scores)
        trials.append(Trial(combo, scores, mean=mean, se=se, fit_seconds=float(np.mean(times))))
    trials.sort(key=lambda t: -t.mean[metric] if not math.isnan(t.mean[metric]) else math.inf)
    for line in format_trials(trials, k, metric, len(seeds)):
        echo(line)
    best: Trial | None = trials[0]
    unscored = None
    if all(math.isnan(t.mean[metric]) for t in trials):
        # As `deepcart test` with no scorable user: a result (every score "no value"), not an
        # error; but no combination is better than another, so none is named best.
        best = None
        what = "held-out item known to train" if mode == "best" else f"held-out rating <= {LOW:g}"
        unscored = (
            f"no combination could be scored: none of the {n_val:,} validation users"
            f"{' (over the splits)' if len(seeds) > 1 else ''} has a {what}"
        )
        echo(f"No best: {unscored}; a larger dataset (or another --split) is needed.")
    command = None
    if best is not None:
        command = command_to_test(
            data_dir, tag, model_type, {**base, **best.params}, split_params, mode, len(seeds),
            k=k, min_engagement=min_engagement,
        )  # fmt: skip
        echo(f"Best: {_label(best.params)}; on the test users: {command}")
    doc = {
        "deepcart_version": __version__,
        "model": model_type,
        "params": base,
        "grid": grid if not isinstance(grid, list) or len(grid) != 1 else grid[0],
        "k": k,
        "metric": metric,
        "mode": mode,
        "scored_on": "validation users",
        "split": split_params.protocol,
        "split_params": {**split_params.__dict__, "seed": None},
        "seeds": seeds,
        "split_id": split_id(last_split) if len(seeds) == 1 else None,
        "best": best.params if best is not None else None,
        "test_command": command,
        "no_best": unscored,
        "trials": [
            {
                "params": t.params,
                "metrics": metrics_doc(t.per_split, t.mean, t.se),
                "fit_seconds_mean": t.fit_seconds,
            }
            for t in trials
        ],
    }
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
    echo(f"Written to {path}")
    return trials


def _subset(users: EvalSet, rows: np.ndarray) -> EvalSet:
    """The users at ``rows`` (ascending: the ids stay sorted) of an evaluation set."""
    return EvalSet(
        users=IdIndex(pc.take(users.users.ids, pa.array(rows))),
        inputs=users.inputs[rows],
        check=users.check[rows],
    )


def _score_on_validation(
    data: SplitData,
    model_type: str,
    params: dict[str, Any],
    k: int,
    mode: str,
    allowed: np.ndarray | None,
    crossed: bool,
) -> tuple[dict[str, np.ndarray], float]:
    """Per-user metrics of the validation users for one combination, and the fit seconds.

    ``crossed`` (a model that early-stops on validation users): the validation users are split
    in two halves at random (seed 0); the model early-stops on one half and is scored on the
    other, then the other way round, so that no user is scored by a model that chose its epoch
    on them. Otherwise one fit, scored on all of them."""
    if not crossed:
        model, seconds = fit_model(data, model_type, params, mode)
        return evaluate_model(model, replace(data, test=data.val), k, mode, allowed)[0], seconds
    n = data.val.n_users
    order = np.random.default_rng(0).permutation(n)
    halves = [np.sort(order[: n // 2]), np.sort(order[n // 2 :])]
    per_user = {m: np.full(n, np.nan) for m in METRICS}
    seconds = 0.0
    for stop, score in (halves, halves[::-1]):
        model, s = fit_model(replace(data, val=_subset(data.val, stop)), model_type, params, mode)
        held_out = replace(data, test=_subset(data.val, score))
        scored = evaluate_model(model, held_out, k, mode, allowed)[0]
        for m in METRICS:
            per_user[m][score] = scored[m]
        seconds += s
    return per_user, seconds


def _quiet(_: str) -> None:
    return None


def command_to_test(
    data_dir: str | Path,
    tag: str,
    model_type: str,
    params: dict[str, Any],
    split_params: SplitParams,
    mode: str,
    repeats: int = 1,
    *,
    k: int = 10,
    min_engagement: int = MIN_ENGAGEMENT,
) -> str:
    """The ``deepcart test`` command line for these hyperparameters on the same split(s),
    scored as the tuning was (the same K and, in worst mode, the same ``--min-engagement``)."""
    parts = ["deepcart", "test", "--data-dir", str(data_dir), "--data-tag", tag]
    parts += ["--type", model_type, "--params", json.dumps(params)]
    if split_params.protocol != "users":
        parts += ["--split", split_params.protocol]
    default = SplitParams()
    if split_params.seed != default.seed:
        parts += ["--seed", str(split_params.seed)]
    if split_params.holdout != default.holdout:
        parts += ["--holdout", str(split_params.holdout)]
    if split_params.holdout_by != default.holdout_by:
        parts += ["--holdout-by", split_params.holdout_by]
    if (split_params.t1, split_params.t2) != (default.t1, default.t2):
        parts += ["--cut-points", f"{split_params.t1},{split_params.t2}"]
    if k != 10:
        parts += ["--top-k", str(k)]
    if mode != "best":
        parts += ["--mode", mode]
        if min_engagement != MIN_ENGAGEMENT:
            parts += ["--min-engagement", str(min_engagement)]
    if repeats > 1:
        parts += ["--repeat", str(repeats)]
    return shlex.join(parts)


def format_trials(trials: list[Trial], k: int, metric: str, n_splits: int) -> list[str]:
    """The table of trials, best first."""
    spread = n_splits > 1
    head = ["#", "hyperparameters", f"{metric}@{k}" + (" mean ± s.e." if spread else "")]
    head += [f"{m}@{k}" for m in ("ndcg", "recall", "hit_rate") if m != metric] + ["fit s"]
    rows = []
    for i, t in enumerate(trials, 1):
        main = fmt_number(t.mean[metric]) + (f" ± {fmt_number(t.se[metric])}" if spread else "")
        others = [fmt_number(t.mean[m]) for m in ("ndcg", "recall", "hit_rate") if m != metric]
        rows.append([str(i), _label(t.params), main, *others, f"{t.fit_seconds:.2f}"])
    what = f"mean over {n_splits} splits' " if spread else ""
    return [
        f"Validation users' {what}metrics at K={k}, best {metric}@{k} first:",
        *aligned(head, rows, left=2),
    ]
