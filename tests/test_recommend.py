"""`deepcart recommend` and worst-review mining, end to end through the CLI."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from deepcart.cli import main
from deepcart.data.build import build_dataset
from deepcart.data.mining import excerpt, worst_reviews
from deepcart.data.schema import schema_for


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rec")
    rows = []
    # i0 is loved by all, i1 hated by all (with one helpful complaint), i2..i5 mixed.
    for u in range(30):
        user = f"u{u:02d}"
        rows.append((user, "i0", 5.0, 1000 + u, "Great", "works", 0))
        rows.append((user, "i1", 1.0, 2000 + u, f"Bad {u}", "broke " * (u % 5 + 1), u % 7))
        for i in range(2, 6):
            if (u + i) % 3:
                rows.append((user, f"i{i}", float(1 + (u * i) % 5), 3000 + u * 10 + i, "t", "x", 0))
    cols = list(zip(*rows, strict=True))
    table = pa.table(
        {
            "user_id": cols[0],
            "parent_asin": cols[1],
            "rating": cols[2],
            "timestamp": cols[3],
            "title": cols[4],
            "text": cols[5],
            "helpful_vote": cols[6],
            "verified_purchase": [True] * len(rows),
        },
        schema=schema_for("reviews"),
    )
    pq.write_table(table, root / "r.parquet")
    build_dataset(
        reviews_file=root / "r.parquet",
        items_file=None,
        output_dir=root / "data",
        tag="t",
        min_interactions=1,
        min_ratings=1,
        echo=lambda s: None,
    )
    return root


def _common(root: Path) -> list[str]:
    return ["--data-dir", str(root / "data"), "--data-tag", "t", "--model-dir", str(root / "m")]


def test_worst_reviews_pick_the_most_helpful_complaint(root: Path) -> None:
    mined = {
        r["parent_asin"]: r
        for r in worst_reviews(root / "data" / "t" / "reviews.parquet").to_pylist()
    }
    assert "i0" not in mined  # never rated low
    assert mined["i1"]["review_helpful_vote"] == 6 and mined["i1"]["low_ratings"] == 30
    # Among the u%7 == 6 users (u = 6, 13, 20, 27) the longest text wins: u%5+1 = 2, 4, 1, 3.
    assert mined["i1"]["review_title"] == "Bad 13"


def test_excerpt_cuts_at_a_word() -> None:
    assert excerpt("short text") == "short text"
    long = "word " * 100
    cut = excerpt(long, 23)
    assert cut.endswith("…") and len(cut) <= 24 and "wor…" not in cut
    assert excerpt(None) == ""


def test_recommend_needs_a_trained_model(root: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["recommend", *_common(root), "--type", "popular", "--out", str(root / "x.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "deepcart train --data-tag t --type popular --split none" in err


def test_recommend_best_and_worst(root: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", *_common(root), "--type", "popular", "--split", "none"]) == 0
    out = root / "best.parquet"
    assert (
        main(["recommend", *_common(root), "--type", "popular", "--k", "3", "--out", str(out)]) == 0
    )
    best = pq.read_table(out).to_pylist()
    users = {r["user_id"] for r in best}
    assert len(users) == 30
    for r in best:  # seen items are excluded: everyone rated i0 and i1
        assert r["parent_asin"] not in ("i0", "i1")
    assert (
        main(["train", *_common(root), "--type", "popular", "--split", "none", "--mode", "worst"])
        == 0
    )
    users_file = root / "users.txt"
    users_file.write_text("u01\nnobody\nu02\n")
    out = root / "worst.csv"
    code = main(
        ["recommend", *_common(root), "--type", "popular", "--mode", "worst", "--k", "2",
         "--users", str(users_file), "--min-engagement", "1", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    assert "Skipping 1 of 3 listed users" in capsys.readouterr().out
    worst = pacsv.read_csv(out).to_pylist()
    assert {r["user_id"] for r in worst} == {"u01", "u02"}
    assert all(r["review_rating"] <= 2 for r in worst if r["review_rating"] is not None)


def test_recommend_bad_output_name(root: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["recommend", *_common(root), "--type", "popular", "--out", str(root / "x.json")])
    assert code == 2 and "--out" in capsys.readouterr().err


def test_min_engagement_above_every_item_is_an_error(
    root: Path, capsys: pytest.CaptureFixture
) -> None:
    assert (
        main(["train", *_common(root), "--type", "popular", "--split", "none", "--mode", "worst"])
        == 0
    )
    capsys.readouterr()
    out = root / "none.csv"
    code = main(
        ["recommend", *_common(root), "--type", "popular", "--mode", "worst",
         "--min-engagement", "100000", "--out", str(out)]
    )  # fmt: skip
    err = capsys.readouterr().err
    # i0 and i1: rated by all 30 users, the most of any item.
    assert code == 2 and err == (
        "deepcart: error: --min-engagement 100000: no item has that many ratings "
        "(the most rated has 30); lower it\n"
    )
    assert not out.exists()


def test_summary_line_counts_one_user_in_the_singular(
    root: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["train", *_common(root), "--type", "popular", "--split", "none"]) == 0
    users_file = root / "one.txt"
    users_file.write_text("u03\n")
    out = root / "one.parquet"
    code = main(
        ["recommend", *_common(root), "--type", "popular", "--k", "1", "--users", str(users_file),
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    assert f"Wrote 1 recommendation for 1 user to {out} (" in capsys.readouterr().out
