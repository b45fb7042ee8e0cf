"""Evaluation splits, written as Parquet inside the tagged dataset and reused by train and test.

``<data-dir>/<tag>/splits/<protocol>/`` holds ``train``, ``val_input``, ``val_check``,
``test_input`` and ``test_check`` (``.parquet``; columns user_id, parent_asin, rating, timestamp)
and ``split.json`` (the parameters, the dataset manifest's checksum, every count). ``*_input``
is what a model is given for an evaluated user (fold-in for new users, the history for known
ones); ``*_check`` is what it must find. Same dataset, protocol and parameters: the same split,
read back instead of recomputed.

Protocols:

- ``users`` (default, strong generalization): users shuffled with the seed and divided
  80/10/10 into train, val and test; each val/test user's interactions divided into input and
  check (``holdout``, default 20%, at least one check and, with two or more interactions, at
  least one input), at random or by time (latest as check).
- ``last-out`` (the Amazon Reviews 2023 protocol): per user, the latest interaction is test,
  the second latest valid, the rest train; inputs are everything before.
- ``timestamp``: global cut points ``t1 <= valid < t2 <= test`` (ms; the official ones by
  default); inputs are the user's earlier interactions.
- ``random``: per user, a random ``holdout`` fraction is test and the same fraction of the rest
  valid (weak generalization).
- ``none``: everything is training data (the production model).

Val/test interactions with items that never occur in train are dropped and counted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from deepcart.data.paths import DatasetPaths, require_dataset
from deepcart.errors import InputError
from deepcart.fsutil import atomic_path, atomic_write_text, make_dirs, sha256_file

PROTOCOLS = ("users", "last-out", "timestamp", "random", "none")
PARTS = ("train", "val_input", "val_check", "test_input", "test_check")
COLUMNS = ["user_id", "parent_asin", "rating", "timestamp"]
OFFICIAL_T1 = 1628643414042
OFFICIAL_T2 = 1658002729837


@dataclass(frozen=True)
class SplitParams:
    protocol: str = "users"
    seed: int = 0
    holdout: float = 0.2
    holdout_by: str = "random"
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    t1: int = OFFICIAL_T1
    t2: int = OFFICIAL_T2

    def validate(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise InputError(
                f"--split: expected one of {', '.join(PROTOCOLS)}, got {self.protocol!r}"
            )
        if self.seed < 0:
            raise InputError(f"--seed: expected a non-negative integer, got {self.seed}")
        if not 0 < self.holdout < 1:
            raise InputError(f"--holdout: expected a fraction in (0, 1), got {self.holdout}")
        if self.holdout_by not in ("random", "time"):
            raise InputError(f"--holdout-by: expected 'random' or 'time', got {self.holdout_by!r}")
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1) or (
            self.val_fraction + self.test_fraction >= 1
        ):
            raise InputError("val and test fractions must be in [0, 1) and sum to less than 1")
        if self.t1 >= self.t2:
            raise InputError(f"--cut-points: expected t1 < t2, got {self.t1} >= {self.t2}")


def _read_parquet(path: Path, fix: str, columns: list[str] | None = None) -> pa.Table:
    """A Parquet file of a dataset or split; a truncated or foreign one is an InputError."""
    try:
        return pq.read_table(path, columns=columns)
    except FileNotFoundError:
        raise InputError(f"{path}: missing; {fix}") from None
    except (OSError, ValueError, KeyError) as exc:  # ArrowInvalid is a ValueError
        raise InputError(f"{path}: not a readable Parquet file ({exc}); {fix}") from None


@dataclass
class Split:
    """A split on disk: its directory, parameters and counts; ``read(part)`` loads one part."""

    root: Path
    params: SplitParams
    counts: dict[str, int]

    def path(self, part: str) -> Path:
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        return self.root / f"{part}.parquet"

    def read(self, part: str) -> pa.Table:
        fix = f"remake the split with: deepcart split --split {self.params.protocol} --force"
        return _read_parquet(self.path(part), fix)

    def summary(self) -> list[str]:
        c = self.counts
        lines = [
            f"{'User' if self.params.protocol == 'users' else self.params.protocol} splits:",
            f" train : {c['train_users']:,} users @ {c['train_ratings']:,} ratings",
        ]
        if self.params.protocol == "none":
            lines[0] = "Split 'none': every rating is training data"
            return lines
        for part in ("val", "test"):
            lines += [
                f" {part:<5} : {c[f'{part}_users']:,} users @ "
                f"{c[f'{part}_input'] + c[f'{part}_check']:,} ratings",
                f"  - input : {c[f'{part}_input']:,} ratings",
                f"  - check : {c[f'{part}_check']:,} ratings",
            ]
        if c["dropped_unknown_items"]:
            lines.append(
                f"Dropped {c['dropped_unknown_items']:,} val/test ratings of items not in train"
            )
        return lines


def _within_user_rank(user_codes: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Rank of each row inside its user's rows by descending ``key`` (0 = largest key)."""
    order = np.lexsort((-key, user_codes))
    sorted_users = user_codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - run_start
    return rank


def _holdout_count(n: np.ndarray, fraction: float) -> np.ndarray:
    """At least one held out; with two or more rows, at least one kept."""
    k = np.maximum(1, np.rint(n * fraction).astype(np.int64))
    return np.where(n >= 2, np.minimum(k, n - 1), k)


def _assign(table: pa.Table, p: SplitParams) -> dict[str, np.ndarray]:
    """Boolean masks over the rows of ``table`` (sorted by user, time) for each part."""
    n_rows = table.num_rows
    users = table["user_id"].combine_chunks().dictionary_encode()
    codes = users.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    n_users = len(users.dictionary)
    position = np.arange(n_rows, dtype=np.int64)
    rng = np.random.default_rng(p.seed)
    per_user = np.bincount(codes, minlength=n_users)
    false = np.zeros(n_rows, dtype=bool)

    if p.protocol == "none":
        return {"train": ~false, **{k: false for k in PARTS[1:]}}

    if p.protocol == "users":
        role = np.zeros(n_users, dtype=np.int8)
        # Shuffle the sorted user list: the assignment depends on the seed and the user set only.
        order = np.argsort(users.dictionary.to_numpy(zero_copy_only=False), kind="stable")
        perm = order[rng.permutation(n_users)]
        n_test = int(round(p.test_fraction * n_users))
        n_val = int(round(p.val_fraction * n_users))
        role[perm[:n_test]] = 2
        role[perm[n_test : n_test + n_val]] = 1
        row_role = role[codes]
        key = rng.random(n_rows) if p.holdout_by == "random" else position.astype(np.float64)
        rank = _within_user_rank(codes, key)
        check = rank < _holdout_count(per_user, p.holdout)[codes]
        return {
            "train": row_role == 0,
            "val_input": (row_role == 1) & ~check,
            "val_check": (row_role == 1) & check,
            "test_input": (row_role == 2) & ~check,
            "test_check": (row_role == 2) & check,
        }

    if p.protocol == "last-out":
        rank = _within_user_rank(codes, position.astype(np.float64))
        test_check = rank == 0
        val_check = rank == 1
        train = rank >= 2
        has_val = np.bincount(codes, weights=val_check, minlength=n_users) > 0
        return {
            "train": train,
            "val_input": train & has_val[codes],
            "val_check": val_check,
            "test_input": rank >= 1,
            "test_check": test_check,
        }

    ts = table["timestamp"].to_numpy()
    if p.protocol == "timestamp":
        train = ts < p.t1
        val_check = (ts >= p.t1) & (ts < p.t2)
        test_check = ts >= p.t2
        has_val = np.bincount(codes, weights=val_check, minlength=n_users) > 0
        has_test = np.bincount(codes, weights=test_check, minlength=n_users) > 0
        return {
            "train": train,
            "val_input": train & has_val[codes],
            "val_check": val_check,
            "test_input": (ts < p.t2) & has_test[codes],
            "test_check": test_check,
        }

    # random: a holdout fraction per user for test, the same fraction of the rest for val.
    key = rng.random(n_rows)
    rank = _within_user_rank(codes, key)
    n_test = np.where(per_user >= 2, _holdout_count(per_user, p.holdout), 0)
    rest = per_user - n_test
    n_val = np.where(rest >= 2, _holdout_count(rest, p.holdout), 0)
    test_check = rank < n_test[codes]
    val_check = (rank >= n_test[codes]) & (rank < (n_test + n_val)[codes])
    train = ~test_check & ~val_check
    has_val = n_val > 0
    return {
        "train": train,
        "val_input": train & has_val[codes],
        "val_check": val_check,
        "test_input": ~test_check & (n_test > 0)[codes],
        "test_check": test_check,
    }


def _fingerprint(paths: DatasetPaths) -> str:
    return sha256_file(paths.manifest)


def load_split(data_dir: str | Path, tag: str, protocol: str) -> Split:
    """An existing split, or an InputError that says how to make it."""
    paths = require_dataset(data_dir, tag)
    root = paths.splits(protocol)
    meta_path = root / "split.json"
    if not meta_path.is_file():
        raise InputError(f"no {protocol!r} split for dataset {tag!r} (missing {meta_path})")
    meta = read_split_meta(meta_path)
    try:
        return Split(root=root, params=SplitParams(**meta["params"]), counts=meta["counts"])
    except (TypeError, KeyError):  # not a split.json this version wrote
        raise InputError(
            f"{meta_path}: not a split description; remake the split with: deepcart split "
            f"--data-tag {tag} --split {protocol} --force"
        ) from None


def read_split_meta(meta_path: Path) -> dict[str, Any]:
    """A split's ``split.json``; an empty dict when it is damaged (the split is then remade)."""
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return {}
    return meta if isinstance(meta, dict) else {}


def make_split(
    data_dir: str | Path,
    tag: str,
    params: SplitParams | None = None,
    *,
    force: bool = False,
    echo: Callable[[str], None] | None = print,
) -> Split:
    """Write (or reuse) the split of dataset ``tag`` for ``params``; print its summary."""
    p = params or SplitParams()
    p.validate()
    paths = require_dataset(data_dir, tag)
    root = paths.splits(p.protocol)
    meta_path = root / "split.json"
    fingerprint = _fingerprint(paths)
    if meta_path.is_file() and not force:
        meta = read_split_meta(meta_path)
        if meta.get("params") == asdict(p) and meta.get("dataset_manifest_sha256") == fingerprint:
            split = Split(root=root, params=p, counts=meta["counts"])
            if all(split.path(part).is_file() for part in PARTS):
                if echo:
                    for line in split.summary():
                        echo(line)
                return split

    table = _read_parquet(paths.reviews, "rebuild the dataset", columns=COLUMNS)
    masks = _assign(table, p)
    train = table.filter(pa.array(masks["train"]))
    train_items = pc.unique(train["parent_asin"])
    counts: dict[str, int] = {"train_ratings": train.num_rows}
    counts["train_users"] = len(pc.unique(train["user_id"]))
    dropped = 0
    parts: dict[str, pa.Table] = {"train": train}
    for part in PARTS[1:]:
        t = table.filter(pa.array(masks[part]))
        known = t.filter(pc.is_in(t["parent_asin"], value_set=train_items))
        dropped += t.num_rows - known.num_rows
        parts[part] = known
        counts[part] = known.num_rows
    for part in ("val", "test"):
        counts[f"{part}_users"] = len(
            pc.unique(
                pa.chunked_array(
                    parts[f"{part}_input"]["user_id"].chunks
                    + parts[f"{part}_check"]["user_id"].chunks,
                    type=pa.string(),
                )
            )
        )
    counts["dropped_unknown_items"] = dropped
    counts["dataset_ratings"] = table.num_rows

    make_dirs(root, f"cannot write the split to {root}")
    for part, t in parts.items():
        with atomic_path(root / f"{part}.parquet") as tmp:
            pq.write_table(t, tmp, compression="zstd")
    meta: dict[str, Any] = {
        "params": asdict(p),
        "dataset_manifest_sha256": fingerprint,
        "counts": counts,
        "split_id": hashlib.sha256(
            json.dumps([asdict(p), fingerprint], sort_keys=True).encode()
        ).hexdigest()[:16],
    }
    atomic_write_text(meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    split = Split(root=root, params=p, counts=counts)
    if echo:
        for line in split.summary():
            echo(line)
    return split
