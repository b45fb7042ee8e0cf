"""`deepcart recommend`: the top-K for every known user (or a list of them), written to a file.

Uses the production model (trained with ``--split none``) unless another split is named. Known
users are the users of that split's training data; their seen items are excluded. In worst mode
only engaged items are ranked and each recommendation carries its most helpful low-rated review.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from deepcart.data.matrix import IdIndex, interactions
from deepcart.data.mining import excerpt, worst_reviews
from deepcart.data.paths import (
    DEFAULT_DATA_DIR,
    DEFAULT_MODEL_DIR,
    check_outside_dataset,
    require_dataset,
)
from deepcart.data.split import load_split, read_split_meta
from deepcart.errors import InputError
from deepcart.fsutil import atomic_path
from deepcart.models.base import Recommender, read_model_meta
from deepcart.modes import MIN_ENGAGEMENT, candidates, check_mode, model_input
from deepcart.training import model_path


@dataclass
class RecommendResult:
    out: Path
    n_users: int
    n_rows: int
    unknown_users: int
    seconds: float


def load_model_items(path: Path) -> tuple[Recommender, IdIndex]:
    """A saved model and the parent_asin of each of its item indices."""
    model = Recommender.load(path)
    try:
        ids = pq.read_table(path / "items.parquet")["parent_asin"].combine_chunks()
    except FileNotFoundError:
        raise InputError(f"{path}: missing items.parquet (retrain the model)") from None
    except (OSError, ValueError, KeyError) as exc:  # not Parquet, or no parent_asin column
        raise InputError(
            f"{path}/items.parquet: not the model's item list ({exc}); retrain the model"
        ) from None
    if len(ids) != model.n_items_:
        raise InputError(
            f"{path}: items.parquet lists {len(ids)} items, the model {model.n_items_}"
        )
    return model, IdIndex(ids)


def recommendation_table(
    item_indices: np.ndarray,
    scores: np.ndarray,
    items: IdIndex,
    *,
    user_ids: Sequence[str] | pa.Array | None = None,
    catalog: pa.Table | None = None,
    columns: Sequence[str] = ("title",),
) -> pa.Table:
    """The ``(item_indices, scores)`` that ``Recommender.recommend`` returned, as a table of ids.

    One row per recommendation, best first within each user: ``user_id`` (``user_ids[i]``
    for row ``i``, from a list or an Arrow array; without ``user_ids``, a ``row`` column, the
    row's position), ``parent_asin`` (through ``items``, the model's item index), ``rank``
    (1 = best) and ``score``; padding (index -1) is left out. With ``catalog`` (a table with a
    ``parent_asin`` column, such as the dataset's ``items.parquet``), its ``columns`` are added
    (null for an item it does not list).

    Raises :class:`~deepcart.errors.InputError` naming the argument when the shapes disagree, an
    index is outside ``items``, or ``catalog`` lacks a column.
    """
    idx, sc = np.asarray(item_indices), np.asarray(scores)
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise InputError(
            f"item_indices: expected a 2-d integer array (n_users, k), got {idx.dtype} "
            f"with shape {idx.shape}"
        )
    if sc.shape != idx.shape:
        raise InputError(f"scores: expected shape {idx.shape} like item_indices, got {sc.shape}")
    if idx.size and (idx.min() < -1 or idx.max() >= len(items)):
        raise InputError(
            f"item_indices: expected indices in [0, {len(items)}) or -1 (padding), got values "
            f"from {idx.min()} to {idx.max()}; were they made with another model's items?"
        )
    n, k = idx.shape
    if user_ids is not None and len(user_ids) != n:
        raise InputError(f"user_ids: expected {n} ids (one per row), got {len(user_ids)}")
    valid = (idx >= 0).ravel()
    rows = np.repeat(np.arange(n), k)[valid]
    if user_ids is None:
        who = ("row", pa.array(rows, pa.int64()))
    else:
        ids = user_ids if isinstance(user_ids, pa.Array) else pa.array(user_ids, pa.string())
        who = ("user_id", ids.take(pa.array(rows)))
    table = pa.table(
        {
            who[0]: who[1],
            "parent_asin": items.ids.take(pa.array(idx.ravel()[valid])),
            "rank": pa.array(np.tile(np.arange(1, k + 1), n)[valid], pa.int32()),
            "score": pa.array(sc.ravel()[valid], pa.float64()),
        }
    )
    if catalog is not None:
        missing = [c for c in ("parent_asin", *columns) if c not in catalog.column_names]
        if missing:
            raise InputError(
                f"catalog: has no column {', '.join(missing)}; it has "
                f"{', '.join(catalog.column_names)}"
            )
        known = catalog["parent_asin"]
        if isinstance(known, pa.ChunkedArray):
            known = known.combine_chunks()
        at = pc.index_in(table["parent_asin"], value_set=known)
        for c in columns:
            table = table.append_column(c, catalog[c].take(at))
    return table


def train_command(
    tag: str,
    split: str,
    model_type: str,
    mode: str,
    model_dir: str | Path = DEFAULT_MODEL_DIR,
    data_dir: str | Path | None = None,
) -> str:
    """The ``deepcart train`` line that (re)makes this model; folders only where not default."""
    flags = f" --split {split}" + (" --mode worst" if mode == "worst" else "")
    if data_dir is not None and Path(data_dir) != DEFAULT_DATA_DIR:
        flags += f" --data-dir {data_dir}"
    if Path(model_dir) != DEFAULT_MODEL_DIR:
        flags += f" --model-dir {model_dir}"
    return f"deepcart train --data-tag {tag} --type {model_type}{flags}"


def require_model(
    model_dir: str | Path,
    tag: str,
    split: str,
    model_type: str,
    mode: str,
    data_dir: str | Path | None = None,
) -> Path:
    path = model_path(model_dir, tag, split, model_type, mode)
    if not (path / "model.json").is_file():
        raise InputError(
            f"no trained {model_type!r} model for dataset {tag!r} at {path}; train it with: "
            f"{train_command(tag, split, model_type, mode, model_dir, data_dir)}"
        )
    return path


def check_fitted(
    path: Path,
    meta: dict[str, Any],
    *,
    model_type: str,
    mode: str,
    tag: str,
    split: str,
    split_id: str,
    retrain: str,
) -> None:
    """That the model saved at ``path`` (``meta``: its ``model.json``) is a ``model_type`` of
    ``mode``, fit on the dataset's current ``split`` (``split_id``); else one line that ends
    with ``retrain``, the command that makes it again. ``recommend`` and the service check the
    models they load with it."""
    if meta.get("model") != model_type:
        raise InputError(
            f"{path}: holds a {meta.get('model')!r} model, not {model_type!r}; {retrain}"
        )
    extra = meta.get("extra", {})
    if extra.get("mode", "best") != mode:
        raise InputError(
            f"{path}: holds a {extra.get('mode')!r}-mode model, expected {mode!r}; {retrain}"
        )
    if extra.get("split_id") != split_id:
        raise InputError(
            f"{path}: was fit on another version of dataset {tag!r} (split "
            f"{extra.get('split_id')!r}; the dataset's {split!r} split is {split_id!r}); {retrain}"
        )


def read_user_list(path: str | Path) -> list[str]:
    """User ids from a text file (one per line), a CSV with a user_id column, or Parquet."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"--users: {p} is a directory, expected a file of user ids")
    if not p.is_file():
        raise InputError(f"--users: no such file: {p}")
    if p.suffix == ".parquet":
        try:
            table = pq.read_table(p)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise InputError(f"--users: {p} is not a readable Parquet file: {exc}") from None
        if "user_id" not in table.column_names:
            raise InputError(f"--users: {p} has no user_id column")
        column = table["user_id"]
        if pa.types.is_dictionary(column.type):  # e.g. a pandas categorical column
            column = column.cast(column.type.value_type)
        if pa.types.is_integer(column.type):  # numeric ids: match them as the text they are
            column = column.cast(pa.string())
        elif not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            raise InputError(f"--users: {p}: user_id column holds {column.type}, expected strings")
        ids = [u for u in column.to_pylist() if u is not None]
    else:
        try:
            text = p.read_text(encoding="utf-8-sig")  # a byte order mark is not part of an id
        except UnicodeDecodeError:
            raise InputError(
                f"--users: {p} is not a UTF-8 text file (one user id a line, a CSV with a "
                "user_id column, or .parquet)"
            ) from None
        lines = [line for line in text.splitlines() if line.strip()]
        ids = [line.strip() for line in lines]
        if lines and "user_id" in lines[0]:  # a CSV: the user_id column, wherever it is
            try:
                rows = list(csv.reader(lines))
            except csv.Error as exc:
                raise InputError(f"--users: {p} is not a readable CSV ({exc})") from None
            names = [name.strip() for name in rows[0]]
            if "user_id" in names:
                col = names.index("user_id")
                ids = [row[col].strip() for row in rows[1:] if col < len(row) and row[col].strip()]
    if not ids:
        raise InputError(f"--users: {p} lists no user ids")
    return ids


def recommend_users(
    *,
    data_dir: str | Path,
    tag: str,
    model_type: str,
    out: str | Path,
    k: int = 10,
    mode: str = "best",
    split: str = "none",
    users_file: str | Path | None = None,
    model_dir: str | Path = DEFAULT_MODEL_DIR,
    min_engagement: int = MIN_ENGAGEMENT,
    echo: Callable[[str], None] = print,
) -> RecommendResult:
    check_mode(mode)
    out = Path(out)
    if out.suffix not in (".parquet", ".csv"):
        raise InputError(f"--out: expected a .parquet or .csv file name, got {out}")
    if k < 1:
        raise InputError(f"--k: expected a positive integer, got {k}")
    paths = require_dataset(data_dir, tag)
    check_outside_dataset(out, data_dir, tag, "the recommendations")
    path = require_model(model_dir, tag, split, model_type, mode, data_dir)
    retrain = f"retrain it with: {train_command(tag, split, model_type, mode, model_dir, data_dir)}"
    split_json = paths.splits(split) / "split.json"
    current = read_split_meta(split_json).get("split_id") if split_json.is_file() else None
    if current is None:  # build replaced the dataset (and its splits) since the fit
        raise InputError(
            f"{path}: was fit on a {split!r} split that dataset {tag!r} no longer has (missing "
            f"or damaged {split_json}; rebuilt since?); {retrain}"
        )
    check_fitted(
        path, read_model_meta(path), model_type=model_type, mode=mode, tag=tag, split=split,
        split_id=current, retrain=retrain,
    )  # fmt: skip
    model, items = load_model_items(path)
    train = load_split(data_dir, tag, split).read("train")
    x_all, users = interactions(train, items)
    unknown = 0
    if users_file is not None:
        wanted = list(dict.fromkeys(read_user_list(users_file)))  # each listed user once
        idx = users.lookup(pa.array(wanted, pa.string()))
        unknown = int((idx < 0).sum())
        rows = idx[idx >= 0]
        if unknown:
            echo(f"Skipping {unknown:,} of {len(wanted):,} listed users unknown to the model")
    else:
        rows = np.arange(len(users))
    x = x_all[rows]
    allowed = candidates(x_all, mode, min_engagement)
    if allowed is not None and not allowed.any():
        most = int(np.bincount(x_all.indices, minlength=x_all.shape[1]).max(initial=0))
        raise InputError(
            f"--min-engagement {min_engagement}: no item has that many ratings "
            f"(the most rated has {most:,}); lower it"
        )
    k = min(k, model.n_items_)  # a list holds each item once: a larger --k only pads
    started = time.perf_counter()
    recs, scores = model.recommend(
        model_input(x, mode, model.feedback), k=k, candidates=allowed, exclude=x
    )
    seconds = time.perf_counter() - started
    table = recommendation_table(recs, scores, items, user_ids=users.ids.take(pa.array(rows)))
    if mode == "worst":
        table = _with_worst_reviews(table, paths.reviews)
    with atomic_path(out, suffix=out.suffix) as tmp:
        if out.suffix == ".parquet":
            pq.write_table(table, tmp, compression="zstd")
        else:
            pacsv.write_csv(table, tmp)
    echo(
        f"Wrote {_plural(table.num_rows, 'recommendation')} for {_plural(len(rows), 'user')} "
        f"to {out} ({seconds:.2f} s, {len(rows) / max(seconds, 1e-9):,.0f} users/s)"
    )
    return RecommendResult(out, len(rows), table.num_rows, unknown, seconds)


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _with_worst_reviews(table: pa.Table, reviews: Path) -> pa.Table:
    mined = worst_reviews(reviews)
    idx = pc.index_in(table["parent_asin"], value_set=mined["parent_asin"])
    take = mined.take(idx)
    texts = take["review_text"].to_pylist()
    return (
        table.append_column("review_title", take["review_title"])
        .append_column("review_excerpt", pa.array([excerpt(t) if t else None for t in texts]))
        .append_column("review_rating", take["review_rating"])
        .append_column("review_helpful_vote", take["review_helpful_vote"])
    )
