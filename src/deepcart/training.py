"""`deepcart train`: fit a model on a split's training data and save it.

Models live in ``<model-dir>/<tag>/<split>/<type>/`` (``model.json``, ``arrays.npz`` and
``items.parquet``, the parent_asin of each item index). ``model.json``'s ``extra`` records the
split it was fit on, so `test` reuses a saved model only for the same split.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from deepcart.data.paths import DEFAULT_MODEL_DIR, check_tag
from deepcart.data.split import Split, SplitParams, make_split
from deepcart.data.splitdata import SplitData, load_split_data
from deepcart.errors import InputError
from deepcart.fsutil import atomic_path, make_dirs
from deepcart.models import create
from deepcart.models.base import Recommender, read_model_meta
from deepcart.modes import check_mode, model_input, relevant
from deepcart.progress import progress_enabled


def split_id(split: Split) -> str:
    return json.loads((split.root / "split.json").read_text())["split_id"]


def model_key(model_type: str, mode: str = "best") -> str:
    """The directory name of a model: its type, with ``-worst`` for worst mode."""
    return model_type if check_mode(mode) == "best" else f"{model_type}-worst"


def model_path(
    model_dir: str | Path, tag: str, protocol: str, model_type: str, mode: str = "best"
) -> Path:
    return Path(model_dir) / check_tag(tag) / protocol / model_key(model_type, mode)


@dataclass
class TrainResult:
    model: Recommender
    path: Path
    fit_seconds: float


def load_trainable(split: Split, tag: str) -> SplitData:
    """The split's data (``train`` and ``test`` share it); an InputError when its training part
    is empty, so there is nothing to fit."""
    data = load_split_data(split)
    if not data.train.nnz:
        raise InputError(
            f"--split {split.params.protocol}: the training part of dataset {tag!r} has no "
            "ratings, nothing to train on; check the split's flags, or rebuild the dataset "
            "with lower --min-ratings/--min-interactions"
        )
    return data


def fit_model(
    data: SplitData, model_type: str, params: dict[str, Any] | None = None, mode: str = "best"
) -> tuple[Recommender, float]:
    """Fit on the split's training matrix as ``mode`` presents it to this kind of model.

    Models that declare ``uses_validation`` (the neural ones: early stopping) also get the
    split's validation users: their input rows as ``val_inputs``, their relevant held-out rows as
    ``val_check`` and their held-out ratings in the model's scale as ``val_ratings``, as ``mode``
    presents them; a split without validation users (``--split none``) gives them nothing.
    """
    model = create(model_type, params)
    x = model_input(data.train, mode, model.feedback)
    side = {}
    if getattr(model, "uses_validation", False) and data.val.n_users:
        side = {
            "val_inputs": model_input(data.val.inputs, mode, model.feedback),
            "val_check": relevant(data.val.check, mode),
            "val_ratings": model_input(data.val.check, mode, model.feedback),
        }
    started = time.perf_counter()
    model.fit(x, **side)
    return model, time.perf_counter() - started


def save_model(
    model: Recommender, data: SplitData, path: Path, fit_seconds: float, mode: str = "best"
) -> Path:
    extra = {
        "mode": mode,
        "split_id": split_id(data.split),
        "split": data.split.params.protocol,
        "fit_seconds": fit_seconds,
        "n_items": len(data.items),
        "n_train_users": len(data.train_users),
        "n_train_ratings": int(data.train.nnz),
    }
    model.save(path, extra=extra)
    with atomic_path(path / "items.parquet") as tmp:
        pq.write_table(pa.table({"parent_asin": data.items.ids}), tmp)
    return path


def load_saved_model(
    path: Path, data: SplitData, mode: str = "best", model_type: str | None = None
) -> tuple[Recommender, float] | None:
    """The model saved at ``path`` if it was fit on this split and mode (and is a
    ``model_type``, when given), with its fit time."""
    if not (path / "model.json").is_file():
        return None
    meta = read_model_meta(path)
    extra = meta.get("extra", {})
    if extra.get("split_id") != split_id(data.split) or extra.get("mode", "best") != mode:
        return None
    if model_type is not None and meta.get("model") != model_type:
        return None
    return Recommender.load(path), float(extra.get("fit_seconds", float("nan")))


def check_model_folder(path: Path) -> None:
    """Where a model will be saved (``path``), checked before a fit that may take minutes: its
    parent folder made, and writable."""
    folder = make_dirs(path.parent, "--model-dir")
    if not os.access(folder, os.W_OK):
        raise InputError(f"--model-dir: cannot write in {folder}")


def train_model(
    *,
    data_dir: str | Path,
    tag: str,
    model_type: str,
    split_params: SplitParams,
    params: dict[str, Any] | None = None,
    model_dir: str | Path = DEFAULT_MODEL_DIR,
    mode: str = "best",
    echo: Callable[[str], None] = print,
    progress: bool = True,
) -> TrainResult:
    """Fit ``model_type`` on the training part of the split (in ``mode``) and save it.

    ``progress``: the fit's progress bar (on stderr, on a terminal, for fits longer than a
    second; see :mod:`deepcart.progress`); ``False`` for none (``--quiet``).
    """
    check_mode(mode)
    create(model_type, params)  # validate the type and hyperparameters before any work
    split = make_split(data_dir, tag, split_params, echo=echo)
    data = load_trainable(split, tag)
    path = model_path(model_dir, tag, split.params.protocol, model_type, mode)
    check_model_folder(path)
    what = "" if mode == "best" else " (worst mode: reversed ratings)"
    echo(f"Training {model_type}{what} on {data.describe()}...")
    with progress_enabled(progress):
        model, seconds = fit_model(data, model_type, params, mode)
    save_model(model, data, path, seconds, mode)
    if getattr(model, "memory_report_", None):
        echo(model.memory_report_)
    echo(f"Trained {model_type} in {seconds:.2f} s. Model saved to {path}/")
    return TrainResult(model=model, path=path, fit_seconds=seconds)
