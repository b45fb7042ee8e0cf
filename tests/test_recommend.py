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
from deepcart.data.matrix import IdIndex, rating_rows
from deepcart.data.mining import excerpt, worst_reviews
from deepcart.data.schema import schema_for
from deepcart.errors import InputError
from deepcart.modes import model_input
from deepcart.recommend import (
    load_model_items,
    recommend_users,
    recommendation_table,
)


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
    # A CSV without a user_id column: its whole lines were taken as ids, none matched, exit 0.
    for name in ("uid.csv", "uid.txt"):
        (root / name).write_text("uid,note\nu01,x\n")
        code, _, err = run(root / name)
        assert code == 2 and err == (
            f"deepcart: error: --users: {root / name}: a CSV needs a user_id column; its first "
            "line is 'uid,note' (or list one id a line)\n"
        )
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


# ------------------------------------------------------------------ --ratings: fold-in


@pytest.fixture(scope="module")
def als(root: Path) -> Path:
    """ALS production models (best and worst) of the module's dataset: lists that depend on
    the user's row, unlike popular's."""
    for mode in ("best", "worst"):
        code = main(["train", *_common(root), "--type", "als", "--split", "none", "--mode", mode,
                     "--params", '{"factors": 4, "iterations": 5}'])  # fmt: skip
        assert code == 0
    return root / "m" / "t" / "none"


RATING_COLUMNS = ("user_id", "parent_asin", "rating")


def _recommend(root: Path, out: Path, **kwargs: object) -> tuple[object, list[str]]:
    lines: list[str] = []
    args = {"model_type": "als", "k": 3, **kwargs}
    result = recommend_users(
        data_dir=root / "data", tag="t", out=out, model_dir=root / "m", echo=lines.append, **args
    )
    return result, lines


def _lists(out: Path) -> dict[str, list[tuple[str, float]]]:
    table = pq.read_table(out) if out.suffix == ".parquet" else pacsv.read_csv(out)
    lists: dict[str, list[tuple[str, float]]] = {}
    for r in table.to_pylist():
        lists.setdefault(r["user_id"], []).append((r["parent_asin"], r["score"]))
    return lists


def test_ratings_fold_in_a_new_user_as_by_hand(root: Path, als: Path, tmp_path: Path) -> None:
    ratings = tmp_path / "new.csv"
    # Another column first, a re-rating (the later row wins), a product the model does not know.
    ratings.write_text(
        "note,user_id,parent_asin,rating\n"
        "a,newbie,i2,1\n"
        "b,newbie,i3,2\n"
        "c,newbie,i2,5\n"
        "d,newbie,nope,4\n"
    )
    out = tmp_path / "recs.parquet"
    result, lines = _recommend(root, out, ratings_file=ratings)
    lists = _lists(out)
    assert set(lists) == {f"u{u:02d}" for u in range(30)} | {"newbie"}  # known ones and the new
    assert result.n_users == 31 and result.ratings is not None
    got = lists["newbie"]
    assert {a for a, _ in got}.isdisjoint({"i2", "i3"})  # what they rated is never recommended
    model, items = load_model_items(als / "als")
    x = rating_rows([{"i2": 5.0, "i3": 2.0}], items)
    idx, scores = model.recommend(model_input(x, "best", model.feedback), k=3)
    pairs = zip(idx[0].tolist(), scores[0].tolist(), strict=True)
    want = [(items.ids[j].as_py(), s) for j, s in pairs if j >= 0]
    assert [a for a, _ in got] == [a for a, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-5)
    # Known users without ratings in the file keep the lists they have without --ratings.
    plain = tmp_path / "plain.parquet"
    _recommend(root, plain)
    assert {u: v for u, v in lists.items() if u != "newbie"} == _lists(plain)
    assert lines[0] == (
        f"Read 4 ratings from {ratings}: 2 used, 2 skipped (1 of products the model does not "
        "know; 1 replaced by a later row of the same user and product); 1 user folded in"
    )


def test_ratings_counts_reconcile_and_users_lists_new_users(
    root: Path, als: Path, tmp_path: Path
) -> None:
    ratings = tmp_path / "mixed.parquet"
    rows = [
        ("u01", "i2", 1.0), ("newbie", "i4", 5.0), ("newbie", "zzz", 3.0), ("u05", "i3", 2.0),
        ("ghost", "zzz", 1.0), ("newbie", "i4", 4.0), ("u01", "yyy", 2.0),
    ]  # fmt: skip
    pq.write_table(
        pa.table(dict(zip(RATING_COLUMNS, zip(*rows, strict=True), strict=True))), ratings
    )
    users = tmp_path / "users.txt"
    users.write_text("u01\nnewbie\nghost\nnobody\n")
    result, lines = _recommend(root, tmp_path / "o.csv", ratings_file=ratings, users_file=users)
    s = result.ratings
    assert (s.read, s.used, s.unknown_items, s.not_listed, s.replaced) == (7, 2, 3, 1, 1)
    assert s.read == s.used + s.unknown_items + s.not_listed + s.replaced
    assert s.users == 2 and s.users_skipped == 0
    assert lines[0] == (
        f"Read 7 ratings from {ratings}: 2 used, 5 skipped (3 of products the model does not "
        "know; 1 of users --users does not list; 1 replaced by a later row of the same user and "
        "product); 2 users folded in"
    )
    # ghost rated only an unknown product, nobody is nowhere: both skipped; newbie is not.
    assert lines[1].startswith("Skipping 2 of 4 listed users unknown to the model")
    assert result.unknown_users == 2
    assert list(_lists(tmp_path / "o.csv")) == ["u01", "newbie"]  # the listed order
    # Without --users: every known user and newbie; ghost is skipped and said so.
    result, lines = _recommend(root, tmp_path / "all.csv", ratings_file=ratings)
    assert result.ratings.users_skipped == 1 and result.n_users == 31
    assert "skipping 1 user of the file unknown to the model" in lines[0]
    assert "ghost" not in _lists(tmp_path / "all.csv")


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("cols.csv", "user_id,parent_asin\nu01,i0\n", ":1: no rating column in the header"),
        ("word.csv", "user_id,parent_asin,rating\nu01,i0,5\nu01,i1,five\n",
         ":3: rating: expected a number from 1 to 5, got 'five'"),
        ("six.csv", "user_id,parent_asin,rating\nu01,i0,6\n",
         ":2: rating: expected a number from 1 to 5, got '6'"),
        ("nan.csv", "user_id,parent_asin,rating\nu01,i0,nan\n",
         ":2: rating: expected a number from 1 to 5"),
        ("short.csv", "user_id,parent_asin,rating\nu01,i0\n",
         ":2: rating: expected a number from 1 to 5, got ''"),
        ("empty.csv", "user_id,parent_asin,rating\n,i0,5\n", ":2: user_id: empty"),
        ("space.csv", "user_id,parent_asin,rating\nu 1,i0,5\n",
         ":2: user_id: expected 1 to 128 letters, digits or _ . : @ + = -"),
        ("asin.csv", "user_id,parent_asin,rating\nu01,,5\n", ":2: parent_asin: empty"),
        # A quoted field over two lines: the bad row starts on line 4.
        ("multi.csv", 'text,user_id,parent_asin,rating\n"two\nlines",u01,i0,5\nx,u01,i1,0\n',
         ":4: rating: expected a number from 1 to 5, got '0'"),
        # A quote never closed: said so, at the line its row starts on, not "rating: got ''".
        ("quote.csv", 'user_id,parent_asin,rating\nu01,i0,5\nu01,"i1,4\nu02,i2,3\n',
         ":3: not a readable CSV (unexpected end of data)"),
    ],
)  # fmt: skip
def test_bad_csv_ratings_name_the_line_and_field(
    root: Path, als: Path, tmp_path: Path, capsys: pytest.CaptureFixture, name: str,
    content: str, where: str,
) -> None:  # fmt: skip
    path = tmp_path / name
    path.write_text(content)
    out = tmp_path / "o.csv"
    code = main(["recommend", *_common(root), "--type", "als", "--ratings", str(path),
                 "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"deepcart: error: --ratings: {path}{where}"), err
    assert not out.exists()


def test_a_bad_ratings_file_fails_before_the_split_loads(
    root: Path, als: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import deepcart.recommend as rec

    def no_split(*args: object, **kwargs: object) -> None:
        raise AssertionError("the split was loaded before the ratings file was checked")

    monkeypatch.setattr(rec, "load_split", no_split)
    path = tmp_path / "bad.csv"
    path.write_text("user_id,parent_asin,rating\nu01,i0,6\n")
    with pytest.raises(InputError, match=r"bad.csv:2: rating: expected a number from 1 to 5"):
        _recommend(root, tmp_path / "o.csv", ratings_file=path)


@pytest.mark.parametrize(
    ("table", "where"),
    [
        (pa.table({"user_id": ["u01"], "rating": [5.0]}), ": no parent_asin column"),
        (pa.table({"user_id": ["u01", "u02"], "parent_asin": ["i0", "i1"], "rating": [5.0, 0.0]}),
         ": row 2: rating: expected a number from 1 to 5, got 0.0"),
        (pa.table({"user_id": [None, "u02"], "parent_asin": ["i0", "i1"], "rating": [5, 4]}),
         ": row 1: user_id: empty"),
        (pa.table({"user_id": ["u02", "a/b"], "parent_asin": ["i0", "i1"], "rating": [5, 4]}),
         ": row 2: user_id: expected 1 to 128 letters"),
        (pa.table({"user_id": ["u02"], "parent_asin": ["i0"], "rating": [None]},
                  schema=pa.schema([("user_id", pa.string()), ("parent_asin", pa.string()),
                                    ("rating", pa.float32())])),
         ": row 1: rating: expected a number from 1 to 5, got None"),
    ],
)  # fmt: skip
def test_bad_parquet_ratings_name_the_row_and_field(
    root: Path, als: Path, tmp_path: Path, table: pa.Table, where: str
) -> None:
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    with pytest.raises(InputError) as err:
        _recommend(root, tmp_path / "o.csv", ratings_file=path)
    assert str(err.value).startswith(f"--ratings: {path}{where}"), str(err.value)
    assert "\n" not in str(err.value) and not (tmp_path / "o.csv").exists()


def test_ratings_file_not_there_or_not_parquet(root: Path, als: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--ratings: no such file"):
        _recommend(root, tmp_path / "o.csv", ratings_file=tmp_path / "missing.csv")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="is not a readable Parquet file"):
        _recommend(root, tmp_path / "o.csv", ratings_file=tmp_path / "junk.parquet")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="is not a UTF-8 CSV file"):
        _recommend(root, tmp_path / "o.csv", ratings_file=tmp_path / "bin.csv")


def test_export_reviews_round_trip_matches_the_service(
    root: Path, als: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Reviews submitted to the service, exported, then folded in offline: the same lists the
    service answers, best and worst, for a new user and for a known one who re-rated an item
    and rated a new one."""
    pytest.importorskip("fastapi", reason="the service needs the 'serve' extra")
    from fastapi.testclient import TestClient

    from deepcart.serve.api import create_app
    from deepcart.serve.config import load_settings

    db = f"sqlite:///{tmp_path / 'reviews.db'}"
    settings = load_settings(
        data_dir=root / "data", data_tag="t", type="als", model_dir=root / "m", db_url=db,
        admin_token="a-long-enough-token",
    )  # fmt: skip
    rated = pq.read_table(root / "data" / "t" / "splits" / "none" / "train.parquet").to_pylist()
    u07 = {r["parent_asin"]: r["rating"] for r in rated if r["user_id"] == "u07"}
    new_item = next(f"i{i}" for i in range(6) if f"i{i}" not in u07)
    reviews = {
        "newbie": [("i2", 1), ("i4", 2), ("i3", 5)],
        "u07": [("i0", 1), (new_item, 2)],  # i0: rated 5 in training, now 1
    }
    served: dict[tuple[str, str], list[tuple[str, float]]] = {}
    with TestClient(create_app(settings)) as client:
        for user, pairs in reviews.items():
            for asin, rating in pairs:
                r = client.post(f"/users/{user}/reviews", json={"parent_asin": asin,
                                                                "rating": rating})  # fmt: skip
                assert r.status_code == 201, r.text
        for user in reviews:
            for mode in ("best", "worst"):
                r = client.get(f"/users/{user}/recommendations", params={"k": 3, "mode": mode})
                assert r.status_code == 200 and not r.json()["fallback"], r.text
                served[user, mode] = [(i["parent_asin"], i["score"]) for i in r.json()["items"]]
    stored = tmp_path / "stored.parquet"
    args = ["--data-dir", str(root / "data"), "--data-tag", "t", "--db-url", db]
    assert main(["export-reviews", *args, "--out", str(stored)]) == 0
    for mode in ("best", "worst"):
        out = tmp_path / f"{mode}.csv"
        code = main(["recommend", *_common(root), "--type", "als", "--mode", mode, "--k", "3",
                     "--ratings", str(stored), "--out", str(out)])  # fmt: skip
        assert code == 0
        assert "Read 5 ratings from" in capsys.readouterr().out
        lists = _lists(out)
        for user in reviews:
            got, want = lists[user], served[user, mode]
            assert [a for a, _ in got] == [a for a, _ in want], (user, mode)
            assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-4)
        assert not {a for a, _ in lists["newbie"]} & {"i2", "i3", "i4"}


def test_recommendation_table_refuses_a_catalog_column_it_already_has() -> None:
    """``columns=("rank",)`` used to give a table with two ``rank`` columns."""
    items = IdIndex(pa.array(["a", "b"]))
    catalog = pa.table({"parent_asin": ["a", "b"], "rank": [9, 9], "title": ["A", "B"]})
    idx, scores = np.array([[1, 0]]), np.array([[0.9, 0.1]])
    with pytest.raises(InputError, match=r"^columns: rank is already a column of the table"):
        recommendation_table(idx, scores, items, catalog=catalog, columns=("title", "rank"))
    table = recommendation_table(idx, scores, items, catalog=catalog, columns=("title",))
    assert table.column_names == ["row", "parent_asin", "rank", "score", "title"]


def test_worst_mode_with_nothing_to_go_on_is_the_cold_start_list(
    root: Path, als: Path, tmp_path: Path
) -> None:
    """als-worst learns from low ratings only. A user without one, or with low ratings only of
    a product no one rated low (i0: 5 stars from everybody), used to get a tie of scores in
    index order; now the cold-start list the service gives them, less what they rated,
    flagged in the fallback column."""
    ratings = tmp_path / "r.csv"
    ratings.write_text(
        "user_id,parent_asin,rating\ncheerful,i2,5\nhates_i0,i0,1\ngrumpy,i2,1\ngrumpy,i0,1\n"
    )
    out = tmp_path / "worst.parquet"
    _, lines = _recommend(root, out, ratings_file=ratings, mode="worst", min_engagement=1, k=10)
    table = pq.read_table(out)
    fallback: dict[str, set[bool]] = {}
    for r in table.to_pylist():
        fallback.setdefault(r["user_id"], set()).add(r["fallback"])
    lists = _lists(out)
    assert fallback["cheerful"] == fallback["hates_i0"] == {True}
    assert fallback["grumpy"] == {False}  # i2 is rated low by others: something to go on
    assert all(fallback[f"u{u:02d}"] == {False} for u in range(30))  # everyone rated i1 low
    assert "2 users with nothing for the model to go on" in "\n".join(lines)

    # The lists are the service's cold-start list (engaged items, worst average first)
    # without the items the user rated.
    from deepcart.data.matrix import interactions
    from deepcart.data.split import load_split
    from deepcart.modes import cold_start_lists

    _, items = load_model_items(als / "als-worst")
    x_all, _ = interactions(load_split(root / "data", "t", "none").read("train"), items)
    idx, scores = cold_start_lists(x_all, 1)["worst"]
    ranked = [(items.ids[j].as_py(), float(s)) for j, s in zip(idx, scores, strict=True)]
    for user, rated in (("cheerful", {"i2"}), ("hates_i0", {"i0"})):
        want = [(a, s) for a, s in ranked if a not in rated][:10]
        assert [a for a, _ in lists[user]] == [a for a, _ in want]
        assert [s for _, s in lists[user]] == pytest.approx([s for _, s in want], rel=1e-6)

    # Best mode reads every rating: no fallback, and the column is there all the same.
    best = tmp_path / "best.parquet"
    _recommend(root, best, ratings_file=ratings)
    assert not any(pq.read_table(best)["fallback"].to_pylist())


def test_a_known_users_own_low_ratings_alone_are_nothing_to_go_on(tmp_path: Path) -> None:
    """solo rated i5 and i6 low, which everyone else rated high: in the worst-mode matrix only
    solo's own row links them, so ease-worst scores every other item 0 for solo (a tie in index
    order). Their own ratings do not count as something to go on."""
    rows = []
    for u in range(20):
        for i in range(5):
            rating = 1.0 if (u + i) % 3 == 0 else 5.0
            rows.append((f"o{u:02d}", f"i{i}", rating, 1000 + 10 * u + i, "t", "x", 0))
        rows += [(f"o{u:02d}", f"i{i}", 5.0, 2000 + 10 * u + i, "t", "x", 0) for i in (5, 6)]
    rows += [("solo", "i0", 5.0, 5000, "t", "x", 0), ("solo", "i5", 1.0, 5001, "t", "x", 0)]
    rows += [("solo", "i6", 2.0, 5002, "t", "x", 0)]
    cols = list(zip(*rows, strict=True))
    names = ["user_id", "parent_asin", "rating", "timestamp", "title", "text", "helpful_vote"]
    table = pa.table(
        {**dict(zip(names, cols, strict=True)), "verified_purchase": [True] * len(rows)},
        schema=schema_for("reviews"),
    )
    pq.write_table(table, tmp_path / "r.parquet")
    build_dataset(
        reviews_file=tmp_path / "r.parquet", items_file=None, output_dir=tmp_path / "data",
        tag="t", min_interactions=1, min_ratings=1, echo=lambda s: None,
    )  # fmt: skip
    common = ["--data-dir", str(tmp_path / "data"), "--data-tag", "t", "--model-dir"]
    common += [str(tmp_path / "m"), "--type", "ease", "--quiet"]
    assert main(["train", *common, "--split", "none", "--mode", "worst"]) == 0
    out = tmp_path / "w.parquet"
    recommend_users(
        data_dir=tmp_path / "data", tag="t", model_type="ease", out=out, k=3, mode="worst",
        model_dir=tmp_path / "m", min_engagement=1, echo=lambda s: None,
    )  # fmt: skip
    got = pq.read_table(out).to_pylist()
    solo = [r for r in got if r["user_id"] == "solo"]
    assert solo and all(r["fallback"] for r in solo)
    assert {r["parent_asin"] for r in solo}.isdisjoint({"i0", "i5", "i6"})
    # everyone else has low ratings of i0..i4 that others share: their own lists
    assert not any(r["fallback"] for r in got if r["user_id"] != "solo")
