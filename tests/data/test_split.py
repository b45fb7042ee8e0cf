"""Splits: every protocol's invariants, no leakage, determinism, reuse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from deepcart.data.build import build_dataset
from deepcart.data.split import PARTS, SplitParams, load_split, make_split
from deepcart.errors import InputError
from tests.data.test_build import write_reviews


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    rows = []
    for u in range(200):
        n = int(rng.integers(1, 15))
        items = rng.choice(60, size=n, replace=False)
        for j, i in enumerate(items):
            ts = 1_600_000_000_000 + int(rng.integers(0, 10**11)) + j
            rows.append((f"u{u:04d}", f"i{i:03d}", int(rng.integers(1, 6)), ts))
    rev = write_reviews(tmp_path / "r.parquet", rows)
    out = tmp_path / "processed"
    build_dataset(
        reviews_file=rev,
        items_file=None,
        output_dir=out,
        tag="t",
        min_interactions=1,
        min_ratings=1,
        echo=lambda s: None,
    )
    return out


def _keys(t) -> set[tuple[str, str]]:
    return set(zip(t["user_id"].to_pylist(), t["parent_asin"].to_pylist(), strict=True))


def _users(t) -> set[str]:
    return set(t["user_id"].to_pylist())


def test_users_protocol_is_strong_generalization(dataset: Path) -> None:
    lines: list[str] = []
    s = make_split(dataset, "t", SplitParams(seed=3), echo=lines.append)
    parts = {p: s.read(p) for p in PARTS}
    train_users = _users(parts["train"])
    val_users = _users(parts["val_input"]) | _users(parts["val_check"])
    test_users = _users(parts["test_input"]) | _users(parts["test_check"])
    assert not train_users & val_users and not train_users & test_users
    assert not val_users & test_users
    assert abs(len(test_users) - 20) <= 2 and abs(len(val_users) - 20) <= 2
    # Input and check are disjoint and check items are all known to train.
    assert not _keys(parts["test_input"]) & _keys(parts["test_check"])
    train_items = set(parts["train"]["parent_asin"].to_pylist())
    assert set(parts["test_check"]["parent_asin"].to_pylist()) <= train_items
    # Every row is accounted for.
    c = s.counts
    assert (
        sum(c[p] if p != "train" else c["train_ratings"] for p in PARTS)
        + c["dropped_unknown_items"]
        == c["dataset_ratings"]
    )
    assert lines[0] == "User splits:" and lines[1].startswith(" train : ")


def test_time_holdout_checks_the_latest(dataset: Path) -> None:
    s = make_split(dataset, "t", SplitParams(holdout_by="time"), echo=None)
    inp, chk = s.read("test_input").to_pylist(), s.read("test_check").to_pylist()
    last_in: dict[str, int] = {}
    for r in inp:
        last_in[r["user_id"]] = max(last_in.get(r["user_id"], 0), r["timestamp"])
    for r in chk:
        assert r["timestamp"] >= last_in.get(r["user_id"], 0)


def test_same_seed_same_split_and_reuse(dataset: Path, tmp_path: Path) -> None:
    a = make_split(dataset, "t", SplitParams(seed=5), echo=None)
    first = {p: a.read(p) for p in PARTS}
    b = make_split(dataset, "t", SplitParams(seed=5), force=True, echo=None)
    assert all(first[p].equals(b.read(p)) for p in PARTS)
    c = make_split(dataset, "t", SplitParams(seed=6), echo=None)
    assert not first["test_check"].equals(c.read("test_check"))
    assert load_split(dataset, "t", "users").params.seed == 6


def test_last_out_matches_official_rule(dataset: Path) -> None:
    s = make_split(dataset, "t", SplitParams(protocol="last-out"), echo=None)
    full = pq.read_table(dataset / "t" / "reviews.parquet").to_pylist()
    by_user: dict[str, list[dict]] = {}
    for r in full:
        by_user.setdefault(r["user_id"], []).append(r)
    test = {(r["user_id"], r["parent_asin"]) for r in s.read("test_check").to_pylist()}
    for u, rows in by_user.items():
        last = rows[-1]  # the dataset is sorted by user, timestamp
        if (u, last["parent_asin"]) in test:
            continue
        # Only a drop for an item unknown to train may remove the latest interaction.
        assert last["parent_asin"] not in set(s.read("train")["parent_asin"].to_pylist())


def test_timestamp_cut_points(dataset: Path) -> None:
    t1, t2 = 1_630_000_000_000, 1_670_000_000_000
    s = make_split(dataset, "t", SplitParams(protocol="timestamp", t1=t1, t2=t2), echo=None)
    assert max(s.read("train")["timestamp"].to_pylist()) < t1
    assert all(t1 <= x < t2 for x in s.read("val_check")["timestamp"].to_pylist())
    assert min(s.read("test_check")["timestamp"].to_pylist()) >= t2
    assert max(s.read("test_input")["timestamp"].to_pylist()) < t2


def test_random_and_none(dataset: Path) -> None:
    s = make_split(dataset, "t", SplitParams(protocol="random"), echo=None)
    assert not _keys(s.read("train")) & _keys(s.read("test_check"))
    assert _users(s.read("test_check")) <= _users(s.read("train"))
    n = make_split(dataset, "t", SplitParams(protocol="none"), echo=None)
    assert n.counts["train_ratings"] == n.counts["dataset_ratings"]
    assert n.read("test_check").num_rows == 0


def test_bad_params(dataset: Path) -> None:
    with pytest.raises(InputError, match="--split"):
        make_split(dataset, "t", SplitParams(protocol="nope"), echo=None)
    with pytest.raises(InputError, match="--holdout"):
        make_split(dataset, "t", SplitParams(holdout=1.5), echo=None)
    with pytest.raises(InputError, match="deepcart build --tag missing"):
        make_split(dataset, "missing", echo=None)


def test_negative_seed_is_an_input_error(dataset: Path) -> None:
    # Was numpy's ValueError (a traceback): SeedSequence takes no negative entropy.
    with pytest.raises(InputError, match="--seed: expected a non-negative integer, got -3"):
        make_split(dataset, "t", SplitParams(seed=-3), echo=None)


def test_truncated_dataset_or_split_file_is_one_line(dataset: Path) -> None:
    split = make_split(dataset, "t", SplitParams(protocol="none"), echo=None)
    train = split.path("train")
    train.write_bytes(train.read_bytes()[:50])
    with pytest.raises(InputError, match=r"train\.parquet: not a readable Parquet file .*--force"):
        load_split(dataset, "t", "none").read("train")
    reviews = dataset / "t" / "reviews.parquet"
    reviews.write_bytes(reviews.read_bytes()[:50])
    with pytest.raises(InputError, match=r"reviews\.parquet: not a readable Parquet file"):
        make_split(dataset, "t", SplitParams(protocol="random"), echo=None)


@pytest.mark.parametrize("damage", ["{oops", "[]", '{"params": 1}'])
def test_a_damaged_split_json_is_remade_or_named(dataset: Path, damage: str) -> None:
    # Each was a json or AttributeError traceback in train, test, split and recommend.
    first = make_split(dataset, "t", SplitParams(protocol="random"), echo=None)
    meta = first.root / "split.json"
    good = meta.read_text()
    meta.write_text(damage)
    with pytest.raises(InputError, match=r"split\.json: not a split description; remake"):
        load_split(dataset, "t", "random")
    again = make_split(dataset, "t", SplitParams(protocol="random"), echo=None)  # the cache is
    assert meta.read_text() == good and again.counts == first.counts  # rebuilt, not trusted


def test_a_file_in_place_of_the_splits_folder_is_named(dataset: Path) -> None:
    # Was a FileExistsError traceback from mkdir.
    (dataset / "t" / "splits").write_text("x")
    with pytest.raises(InputError, match=r"splits exists and is not a directory"):
        make_split(dataset, "t", SplitParams(), echo=None)
