"""`deepcart recommend` and worst-review mining, end to end through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from deepcart.cli import main
from deepcart.data.build import build_dataset
from deepcart.data.matrix import IdIndex
from deepcart.data.mining import excerpt, worst_reviews
from deepcart.data.schema import schema_for
from deepcart.errors import InputError
from deepcart.recommend import recommendation_table


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


def test_users_file_forms(root: Path, capsys: pytest.CaptureFixture) -> None:
    """A BOM, a CSV whose user_id is not the first column or is quoted, integer ids in Parquet:
    each used to lose users silently (or, for the integers, end in a traceback)."""
    assert main(["train", *_common(root), "--type", "popular", "--split", "none"]) == 0
    out = root / "forms.csv"

    def run(users: Path) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["recommend", *_common(root), "--type", "popular", "--k", "1",
                     "--users", str(users), "--out", str(out)])  # fmt: skip
        got = capsys.readouterr()
        return code, got.out, got.err

    forms = {
        "bom.txt": "\ufeffu01\n\n  u02  \r\n".encode(),
        "bom.csv": '\ufeffuser_id,note\nu01,a\n"u02",b\n'.encode(),
        "second.csv": b'parent_asin,"user_id"\ni0,u01\ni1,"u02"\n',
    }
    for name, data in forms.items():
        (root / name).write_bytes(data)
        code, stdout, _ = run(root / name)
        assert code == 0 and "Skipping" not in stdout, name
        assert {r["user_id"] for r in pacsv.read_csv(out).to_pylist()} == {"u01", "u02"}, name
    categorical = pa.array(["u01", "u02", "u01"]).dictionary_encode()  # as pandas writes it
    pq.write_table(pa.table({"user_id": categorical}), root / "dict.parquet")
    code, stdout, _ = run(root / "dict.parquet")
    assert code == 0 and "Skipping" not in stdout
    assert {r["user_id"] for r in pacsv.read_csv(out).to_pylist()} == {"u01", "u02"}
    pq.write_table(pa.table({"user_id": [1, 2]}), root / "ints.parquet")
    code, stdout, _ = run(root / "ints.parquet")
    assert code == 0 and "Skipping 2 of 2 listed users" in stdout
    (root / "empty.txt").write_text("\n \n")
    code, _, err = run(root / "empty.txt")
    assert (
        code == 2 and err == f"deepcart: error: --users: {root / 'empty.txt'} lists no user ids\n"
    )
    code, _, err = run(root)
    assert code == 2 and "is a directory" in err
    (root / "long.txt").write_text("x" * 200_000 + "\nu01\n")  # over csv's field limit: no CSV
    assert run(root / "long.txt")[0] == 0
    (root / "long.csv").write_text("user_id\n" + "x" * 200_000 + "\n")
    code, _, err = run(root / "long.csv")
    assert code == 2 and "long.csv is not a readable CSV (field larger than field limit" in err


def test_k_beyond_the_catalog_is_capped(root: Path, capsys: pytest.CaptureFixture) -> None:
    # Was a numpy MemoryError traceback: the padded (users x k) arrays were allocated.
    assert main(["train", *_common(root), "--type", "popular", "--split", "none"]) == 0
    out = root / "huge.parquet"
    code = main(["recommend", *_common(root), "--type", "popular", "--k", "1000000000",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    six = root / "six.parquet"  # the whole catalog: the same lists
    code = main(["recommend", *_common(root), "--type", "popular", "--k", "6", "--out", str(six)])
    assert code == 0
    assert pq.read_table(out).equals(pq.read_table(six)) and pq.read_table(out).num_rows == 40


def test_a_model_of_another_dataset_version_or_type_is_refused(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A model fit before the dataset was rebuilt, or another type's files under this type's
    folder, used to recommend silently with the wrong item list; the hint names the folders."""
    data, models = tmp_path / "data", tmp_path / "models"
    common = ["--data-dir", str(data), "--data-tag", "s", "--model-dir", str(models)]

    def build(min_ratings: int) -> None:
        build_dataset(reviews_file=root / "r.parquet", items_file=None, output_dir=data, tag="s",
                      min_interactions=1, min_ratings=min_ratings, echo=lambda s: None)  # fmt: skip

    def recommend(model_type: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["recommend", *common, "--type", model_type, "--out", str(tmp_path / "o.csv")])
        return code, capsys.readouterr().err

    build(1)
    for model_type in ("popular", "als"):
        assert main(["train", *common, "--type", model_type, "--split", "none"]) == 0
    assert recommend("popular")[0] == 0
    (tmp_path / "o.csv").unlink()
    hint = f"--split none --data-dir {data} --model-dir {models}"
    build(25)  # i2..i5 dropped: a rebuilt dataset, without its splits
    code, err = recommend("popular")
    assert code == 2 and "no longer has" in err and hint in err
    assert main(["split", *common[:4], "--split", "none"]) == 0
    code, err = recommend("popular")
    assert code == 2 and "was fit on another version of dataset 's'" in err and hint in err
    assert not (tmp_path / "o.csv").exists()
    assert main(["train", *common, "--type", "popular", "--split", "none"]) == 0
    pop = models / "s" / "none" / "popular"
    (pop / "model.json").write_text((models / "s" / "none" / "als" / "model.json").read_text())
    code, err = recommend("popular")
    assert code == 2 and "holds a 'als' model, not 'popular'" in err
    code, err = recommend("ease")
    assert code == 2 and f"deepcart train --data-tag s --type ease {hint}" in err


def test_a_damaged_item_list_is_one_line(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["train", *_common(root), "--type", "popular", "--split", "none"]) == 0
    items = root / "m" / "t" / "none" / "popular" / "items.parquet"
    good = items.read_bytes()
    try:
        for bad in (b"garbage", None):
            if bad is None:  # a Parquet file without the parent_asin column
                pq.write_table(pa.table({"x": [1]}), items)
            else:
                items.write_bytes(bad)
            capsys.readouterr()
            code = main(["recommend", *_common(root), "--type", "popular",
                         "--out", str(tmp_path / "o.csv")])  # fmt: skip
            err = capsys.readouterr().err
            assert code == 2 and err.count("\n") == 1 and "items.parquet: not the model's" in err
    finally:
        items.write_bytes(good)


def test_worst_reviews_of_a_truncated_file_is_an_input_error(tmp_path: Path) -> None:
    # Was a DuckDB InvalidInputException traceback (recommend --mode worst on a damaged dataset).
    bad = tmp_path / "reviews.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match=r"reviews\.parquet: cannot read the reviews"):
        worst_reviews(bad)


def test_out_inside_the_dataset_folder_is_refused(
    root: Path, capsys: pytest.CaptureFixture
) -> None:
    # --out data/t/reviews.parquet used to replace the dataset's reviews with the recommendations.
    assert main(["train", *_common(root), "--type", "popular", "--split", "none"]) == 0
    reviews = root / "data" / "t" / "reviews.parquet"
    before = reviews.read_bytes()
    capsys.readouterr()
    code = main(["recommend", *_common(root), "--type", "popular", "--out", str(reviews)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "inside the folder of dataset 't'" in err
    assert reviews.read_bytes() == before


def test_recommendation_table_maps_indices_to_ids_and_titles() -> None:
    items = IdIndex(pa.array(["a", "b", "c"]))
    idx = np.array([[2, 0], [1, -1]])
    scores = np.array([[0.75, 0.5], [0.25, -np.inf]], np.float32)
    catalog = pa.table({"parent_asin": ["c", "a"], "title": ["Cee", "Ay"], "price": [1.0, 2.0]})
    table = recommendation_table(idx, scores, items, user_ids=["u1", "u2"], catalog=catalog)
    assert table.column_names == ["user_id", "parent_asin", "rank", "score", "title"]
    assert table.to_pylist() == [
        {"user_id": "u1", "parent_asin": "c", "rank": 1, "score": 0.75, "title": "Cee"},
        {"user_id": "u1", "parent_asin": "a", "rank": 2, "score": 0.5, "title": "Ay"},
        {"user_id": "u2", "parent_asin": "b", "rank": 1, "score": 0.25, "title": None},
    ]
    plain = recommendation_table(idx, scores, items)  # no ids: the row's position
    assert plain.column_names == ["row", "parent_asin", "rank", "score"]
    assert plain["row"].to_pylist() == [0, 0, 1]
    arrow_ids = recommendation_table(idx, scores, items, user_ids=pa.array(["x", "y"]))
    assert arrow_ids["user_id"].to_pylist() == ["x", "x", "y"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"item_indices": np.array([0, 1])}, "item_indices: expected a 2-d integer array"),
        ({"item_indices": np.array([[0.0, 1.0]])}, "item_indices: expected a 2-d integer array"),
        ({"scores": np.zeros((2, 2))}, "scores: expected shape (1, 2) like item_indices"),
        ({"item_indices": np.array([[0, 3]])}, "item_indices: expected indices in [0, 3) or -1"),
        ({"user_ids": ["u", "v"]}, "user_ids: expected 1 ids (one per row), got 2"),
        ({"catalog": pa.table({"parent_asin": ["a"]})}, "catalog: has no column title"),
    ],
)
def test_recommendation_table_errors_name_the_argument(kwargs: dict, message: str) -> None:
    args = {"item_indices": np.array([[0, 1]]), "scores": np.zeros((1, 2)), **kwargs}
    with pytest.raises(InputError) as err:
        recommendation_table(
            args.pop("item_indices"), args.pop("scores"), IdIndex(pa.array(["a", "b", "c"])), **args
        )
    assert str(err.value).startswith(message)
