"""The pipeline on staged real data: build and split reproduce the official 2023 benchmark files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from deepcart.data.build import build_dataset
from deepcart.data.split import SplitParams, make_split

pytestmark = pytest.mark.realdata


def _rows(path: Path) -> set[tuple[str, str, float, int]]:
    with open(path, newline="") as fh:
        return {
            (r["user_id"], r["parent_asin"], float(r["rating"]), int(r["timestamp"]))
            for r in csv.DictReader(fh)
        }


def _table_rows(table) -> set[tuple[str, str, float, int]]:
    return {
        (r["user_id"], r["parent_asin"], float(r["rating"]), int(r["timestamp"]))
        for r in table.to_pylist()
    }


@pytest.fixture(scope="module")
def beauty(amazon_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    bench = amazon_dir / "amazon2023_all_beauty_benchmark" / "5core"
    out = tmp_path_factory.mktemp("beauty")
    report = build_dataset(
        reviews_file=bench / "rating_only" / "All_Beauty.csv",
        items_file=None,
        output_dir=out,
        tag="beauty",
        min_interactions=5,
        min_ratings=5,
        k_core=True,
        echo=lambda s: None,
    )
    # The official 5-core is a fixed point of the 5-core filter.
    assert report.counts["reviews_written"] == 2535
    assert report.counts["users_written"] == 253 and report.counts["items_written"] == 356
    assert report.counts["k_core_rounds"] == 0
    return out, bench


def test_last_out_equals_the_official_split(beauty: tuple[Path, Path]) -> None:
    out, bench = beauty
    split = make_split(out, "beauty", SplitParams(protocol="last-out"), echo=None)
    official = {
        p: _rows(bench / "last_out" / f"All_Beauty.{p}.csv") for p in ("train", "valid", "test")
    }
    train = _table_rows(split.read("train"))
    assert train == official["train"]
    items = {r[1] for r in train}
    # Ours drops held-out rows of items never seen in train; everything else is identical.
    assert _table_rows(split.read("val_check")) == {r for r in official["valid"] if r[1] in items}
    assert _table_rows(split.read("test_check")) == {r for r in official["test"] if r[1] in items}


def test_timestamp_equals_the_official_split(beauty: tuple[Path, Path]) -> None:
    out, bench = beauty
    split = make_split(out, "beauty", SplitParams(protocol="timestamp"), echo=None)
    official = {
        p: _rows(bench / "timestamp" / f"All_Beauty.{p}.csv") for p in ("train", "valid", "test")
    }
    train = _table_rows(split.read("train"))
    assert train == official["train"]
    items = {r[1] for r in train}
    assert _table_rows(split.read("val_check")) == {r for r in official["valid"] if r[1] in items}
    assert _table_rows(split.read("test_check")) == {r for r in official["test"] if r[1] in items}


def test_build_real_2023_reviews_and_meta_jsonl(amazon_dir: Path, tmp_path: Path) -> None:
    sample = amazon_dir / "amazon2023_electronics_sample"
    lines: list[str] = []
    report = build_dataset(
        reviews_file=sample / "Electronics.first500.reconstructed.jsonl",
        items_file=sample / "meta_Electronics.first500.reconstructed.jsonl",
        output_dir=tmp_path,
        tag="e",
        min_interactions=0,
        min_ratings=0,
        echo=lines.append,
    )
    c = report.counts
    assert c["reviews_read"] == 500 and c["users_found"] == 102 and c["items_found"] == 487
    # The two prefixes share no item (SOURCES.md): every reviewed item lacks metadata.
    assert c["items_without_metadata"] == c["items_written"]
    assert c["meta_items"] == 500 and c["items_dropped_no_review"] == 500
    assert report.manifest["inputs"]["reviews"]["format"] == "amazon2023-reviews"
    assert any("Found 102 users" in s for s in lines)
