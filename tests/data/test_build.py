"""`deepcart build`: the filter semantics on hand-made canonical Parquet, reports, manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deepcart.cli import main
from deepcart.data.build import build_dataset
from deepcart.data.schema import schema_for
from deepcart.errors import InputError


def write_reviews(path: Path, rows: list[tuple], row_group_size: int | None = None) -> Path:
    """rows: (user_id, parent_asin, rating, timestamp[, title])"""
    cols = {
        "user_id": [r[0] for r in rows],
        "parent_asin": [r[1] for r in rows],
        "rating": [float(r[2]) for r in rows],
        "timestamp": [int(r[3]) for r in rows],
        "title": [r[4] if len(r) > 4 else None for r in rows],
        "text": [None] * len(rows),
        "helpful_vote": [0] * len(rows),
        "verified_purchase": [True] * len(rows),
    }
    table = pa.table(cols, schema=schema_for("reviews"))
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def write_items(path: Path, asins: list[str]) -> Path:
    n = len(asins)
    cols = {name: [None] * n for name in schema_for("items").names}
    cols["parent_asin"] = asins
    cols["title"] = [f"Title of {a}" for a in asins]
    pq.write_table(pa.table(cols, schema=schema_for("items")), path)
    return path


def read_keys(path: Path) -> list[tuple]:
    t = pq.read_table(path).to_pylist()
    return [(r["user_id"], r["parent_asin"], r["rating"], r["timestamp"]) for r in t]


def test_dedup_keeps_earliest_and_first_on_ties(tmp_path: Path) -> None:
    rev = write_reviews(
        tmp_path / "r.parquet",
        [
            ("u1", "i1", 5, 300, "late"),
            ("u1", "i1", 1, 100, "early"),
            ("u1", "i1", 2, 100, "early-second"),
            ("u2", "i1", 4, 50),
        ],
    )
    rep = build_dataset(
        reviews_file=rev,
        items_file=None,
        output_dir=tmp_path / "out",
        tag="t",
        min_interactions=0,
        min_ratings=0,
        echo=lambda s: None,
    )
    rows = pq.read_table(rep.paths.reviews).to_pylist()
    assert [(r["user_id"], r["title"]) for r in rows] == [("u1", "early"), ("u2", None)]
    assert rep.counts["duplicates_dropped"] == 2
    assert rep.counts["ratings_found"] == 2


def _toy(tmp_path: Path) -> Path:
    # i1: 3 ratings, i2: 2, i3: 1. u1 rates i1,i2,i3; u2 i1,i2; u3 i1.
    return write_reviews(
        tmp_path / "r.parquet",
        [
            ("u1", "i1", 5, 1),
            ("u1", "i2", 4, 2),
            ("u1", "i3", 1, 3),
            ("u2", "i1", 3, 4),
            ("u2", "i2", 2, 5),
            ("u3", "i1", 4, 6),
        ],
    )


def test_plain_filters_items_then_users(tmp_path: Path) -> None:
    lines: list[str] = []
    items = write_items(tmp_path / "m.parquet", ["i1", "i2", "i3", "i9"])
    rep = build_dataset(
        reviews_file=_toy(tmp_path),
        items_file=items,
        output_dir=tmp_path / "out",
        tag="t",
        min_interactions=2,
        min_ratings=2,
        echo=lines.append,
    )
    # i3 (1 rating) goes; then u3 has 1 review (<2) and goes; u1 keeps i1,i2; u2 keeps i1,i2.
    assert read_keys(rep.paths.reviews) == [
        ("u1", "i1", 5.0, 1),
        ("u1", "i2", 4.0, 2),
        ("u2", "i1", 3.0, 4),
        ("u2", "i2", 2.0, 5),
    ]
    c = rep.counts
    assert c["items_dropped_min_ratings"] == 1
    assert c["reviews_dropped_no_item"] == 1
    assert c["users_dropped_min_interactions"] == 1
    assert c["reviews_dropped_no_user"] == 1
    # i9 has metadata but no review; i3 was dropped for its ratings.
    assert c["items_dropped_no_review"] == 1
    assert c["items_written"] == 2
    assert [r["parent_asin"] for r in pq.read_table(rep.paths.items).to_pylist()] == ["i1", "i2"]
    # Counts reconcile.
    assert c["reviews_read"] == (
        c["duplicates_dropped"]
        + c["reviews_dropped_no_item"]
        + c["reviews_dropped_no_user"]
        + c["reviews_dropped_not_sampled"]
        + c["reviews_written"]
    )
    assert "Found 3 users with 6 ratings of 3 items." in lines
    assert "Dropped 1 items (<2 ratings)" in lines
    assert "Dropped 1 users (reviews <2)" in lines
    assert any(s.startswith("Writing 4 reviews as ") for s in lines)
    assert lines[-1] == f"Wrote 't' dataset to {tmp_path / 'out'}."


def test_k_core_iterates_until_stable(tmp_path: Path) -> None:
    # A cascade with k=2: d has 1 review, so (d,z) goes; then z has 1 rating, so (c,z) goes;
    # then c has 1 review, so (c,y) goes. The a/b block is a 2-core and stays.
    rows = [
        ("a", "x", 5, 1),
        ("a", "y", 5, 2),
        ("b", "x", 5, 3),
        ("b", "y", 5, 4),  # a 2-core block
        ("c", "y", 5, 5),
        ("c", "z", 5, 6),
        ("d", "z", 5, 7),  # d has 1 -> z falls -> c falls
    ]
    rev = write_reviews(tmp_path / "r.parquet", rows)
    plain = build_dataset(
        reviews_file=rev,
        items_file=None,
        output_dir=tmp_path / "o1",
        tag="p",
        min_interactions=2,
        min_ratings=2,
        echo=lambda s: None,
    )
    core = build_dataset(
        reviews_file=rev,
        items_file=None,
        output_dir=tmp_path / "o2",
        tag="k",
        min_interactions=2,
        min_ratings=2,
        k_core=True,
        echo=lambda s: None,
    )
    core_users = {r[0] for r in read_keys(core.paths.reviews)}
    assert core_users == {"a", "b"}
    assert core.counts["k_core_rounds"] >= 2
    # Plain mode filters once: every item has >= 2 ratings, only d goes, c keeps y and z.
    assert {r[0] for r in read_keys(plain.paths.reviews)} == {"a", "b", "c"}
    assert len(read_keys(core.paths.reviews)) == 4


def test_sampling_is_deterministic_and_seeded(tmp_path: Path) -> None:
    rows = [(f"u{u:03d}", f"i{i}", 4, u * 10 + i) for u in range(100) for i in range(3)]
    rev = write_reviews(tmp_path / "r.parquet", rows)

    def users(seed: int, tag: str) -> set[str]:
        rep = build_dataset(
            reviews_file=rev,
            items_file=None,
            output_dir=tmp_path / "o",
            tag=tag,
            min_interactions=1,
            min_ratings=1,
            sample_n=10,
            seed=seed,
            echo=lambda s: None,
        )
        assert rep.counts["users_written"] == 10
        assert rep.counts["reviews_dropped_not_sampled"] == 270
        return {r[0] for r in read_keys(rep.paths.reviews)}

    assert users(1, "a") == users(1, "b")
    assert users(1, "a") != users(2, "c")


def test_same_inputs_same_content_and_manifest(tmp_path: Path) -> None:
    rev = _toy(tmp_path)
    a = build_dataset(
        reviews_file=rev,
        items_file=None,
        output_dir=tmp_path / "a",
        tag="t",
        min_interactions=1,
        min_ratings=1,
        echo=lambda s: None,
    )
    b = build_dataset(
        reviews_file=rev,
        items_file=None,
        output_dir=tmp_path / "b",
        tag="t",
        min_interactions=1,
        min_ratings=1,
        echo=lambda s: None,
    )
    assert pq.read_table(a.paths.reviews).equals(pq.read_table(b.paths.reviews))
    ma, mb = json.loads(a.paths.manifest.read_text()), json.loads(b.paths.manifest.read_text())
    assert ma == mb
    assert ma["inputs"]["reviews"]["sha256"] and ma["counts"]["reviews_written"] == 6
    assert ma["params"]["min_ratings"] == 1 and ma["engine"] == "duckdb"


def test_rebuild_replaces_and_failure_keeps_old(tmp_path: Path) -> None:
    rev = _toy(tmp_path)
    out = tmp_path / "out"
    build_dataset(
        reviews_file=rev,
        items_file=None,
        output_dir=out,
        tag="t",
        min_interactions=1,
        min_ratings=1,
        echo=lambda s: None,
    )
    with pytest.raises(InputError, match="--reviews-file: no such file"):
        build_dataset(
            reviews_file=tmp_path / "missing.parquet",
            items_file=None,
            output_dir=out,
            tag="t",
            echo=lambda s: None,
        )
    assert (out / "t" / "manifest.json").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["t"]  # no leftovers


def test_cli_errors_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(
        [
            "build",
            "--reviews-file",
            str(tmp_path / "nope.jsonl"),
            "--items-file",
            str(tmp_path / "nope2.jsonl"),
            "--tag",
            "x",
            "--output-dir",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "no such file" in err and "nope.jsonl" in err
    code = main(
        [
            "build",
            "--reviews-file",
            str(_toy(tmp_path)),
            "--tag",
            "bad/tag",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert code == 2 and "--tag" in capsys.readouterr().err


def test_cli_bad_flag_value_exit_2(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["build", "--tag", "x", "--min-ratings", "-3"])
    assert exc.value.code == 2
    assert "--min-ratings" in capsys.readouterr().err


def test_extra_reviews_are_added_before_dedup(tmp_path: Path) -> None:
    rev = _toy(tmp_path)
    extra = write_reviews(
        tmp_path / "extra.parquet",
        [("u9", "i1", 1, 7), ("u9", "i2", 2, 8), ("u1", "i1", 1, 0)],  # u1/i1 earlier: replaces
    )
    rep = build_dataset(
        reviews_file=rev,
        items_file=None,
        output_dir=tmp_path / "out",
        tag="t",
        min_interactions=1,
        min_ratings=1,
        extra_reviews=[extra],
        echo=lambda s: None,
    )
    keys = read_keys(rep.paths.reviews)
    assert ("u9", "i1", 1.0, 7) in keys and ("u9", "i2", 2.0, 8) in keys
    assert ("u1", "i1", 1.0, 0) in keys and ("u1", "i1", 5.0, 1) not in keys
    assert rep.counts["reviews_read"] == 9 and rep.counts["duplicates_dropped"] == 1
    assert rep.manifest["inputs"]["extra_reviews"][0]["sha256"]


def test_extra_reviews_keep_the_users_latest_opinion(tmp_path: Path) -> None:
    """--extra-reviews win over the reviews file for the same (user, item), whatever their
    timestamps; among extra reviews the latest timestamp wins, then the later in the input."""
    base = write_reviews(
        tmp_path / "base.parquet",
        [
            ("u1", "i1", 5, 100, "base, then re-rated later"),
            ("u1", "i1", 4, 50, "base, earliest duplicate"),
            ("u1", "i2", 2, 100, "base, re-rated with an older timestamp"),
            ("u2", "i1", 3, 100, "base only"),
        ],
    )
    extra1 = write_reviews(
        tmp_path / "extra1.parquet",
        [
            ("u1", "i1", 1, 500, "extra: u1 changed their mind"),
            ("u1", "i2", 4, 10, "extra: older clock, still the newest opinion"),
            ("u3", "i1", 2, 700, "extra: first of a tie"),
            ("u3", "i1", 5, 700, "extra: second of a tie"),
        ],
    )
    extra2 = write_reviews(
        tmp_path / "extra2.parquet",
        [("u3", "i1", 4, 600, "extra: earlier than file 1's"), ("u4", "i2", 5, 1, "extra only")],
    )
    lines: list[str] = []
    rep = build_dataset(
        reviews_file=base,
        items_file=None,
        output_dir=tmp_path / "out",
        tag="t",
        min_interactions=1,
        min_ratings=1,
        extra_reviews=[extra1, extra2],
        echo=lines.append,
    )
    titles = {
        (r["user_id"], r["parent_asin"]): (r["rating"], r["title"])
        for r in pq.read_table(rep.paths.reviews).to_pylist()
    }
    assert titles == {
        ("u1", "i1"): (1.0, "extra: u1 changed their mind"),
        ("u1", "i2"): (4.0, "extra: older clock, still the newest opinion"),
        ("u2", "i1"): (3.0, "base only"),
        ("u3", "i1"): (5.0, "extra: second of a tie"),
        ("u4", "i2"): (5.0, "extra only"),
    }
    c = rep.counts
    assert (c["reviews_read"], c["duplicates_dropped"], c["ratings_found"]) == (10, 5, 5)
    assert (c["extra_reviews_read"], c["extra_reviews_superseded"]) == (6, 2)
    assert c["ratings_replaced"] == 2  # (u1, i1) and (u1, i2) of the reviews file
    assert rep.manifest["counts"]["ratings_replaced"] == 2
    assert "Replaced 2 ratings of the reviews file" in "\n".join(lines)
    assert "kept the earliest, or the latest extra review" in "\n".join(lines)


def test_without_extra_reviews_nothing_is_replaced(tmp_path: Path) -> None:
    rev = write_reviews(tmp_path / "r.parquet", [("u1", "i1", 5, 300), ("u1", "i1", 1, 100)])
    rep = build_dataset(
        reviews_file=rev,
        items_file=None,
        output_dir=tmp_path / "out",
        tag="t",
        min_interactions=1,
        min_ratings=1,
        echo=lambda s: None,
    )
    assert read_keys(rep.paths.reviews) == [("u1", "i1", 1.0, 100)]
    c = rep.counts
    assert (c["extra_reviews_read"], c["extra_reviews_superseded"], c["ratings_replaced"]) == (
        0,
        0,
        0,
    )


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        (
            {"min_ratings": 4, "min_interactions": 1},
            "--min-ratings 4 left no reviews: each of the 3 items has fewer ratings "
            "(found 6 ratings by 3 users of 3 items); lower it",
        ),
        (
            {"min_ratings": 2, "min_interactions": 3},
            "--min-interactions 3 left no reviews: each user has fewer of the 5 ratings that "
            "--min-ratings 2 kept (found 6 ratings by 3 users of 3 items); lower it",
        ),
        (
            {"min_ratings": 3, "min_interactions": 3, "k_core": True},
            "--k-core (--min-interactions 3, --min-ratings 3) left no reviews "
            "(found 6 ratings by 3 users of 3 items); lower them",
        ),
    ],
)
def test_filters_leaving_nothing_refuse_and_keep_the_old_dataset(
    tmp_path: Path, kw: dict, expected: str
) -> None:
    rev = _toy(tmp_path)
    out = tmp_path / "out"
    build_dataset(
        reviews_file=rev, items_file=None, output_dir=out, tag="t", min_interactions=1,
        min_ratings=1, echo=lambda s: None,
    )  # fmt: skip
    before = (out / "t" / "reviews.parquet").read_bytes()
    with pytest.raises(InputError) as exc:
        build_dataset(
            reviews_file=rev, items_file=None, output_dir=out, tag="t", echo=lambda s: None, **kw
        )
    assert str(exc.value) == expected
    assert (out / "t" / "reviews.parquet").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["t"]  # no half dataset, no leftovers


def test_cli_empty_build_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    empty = write_reviews(tmp_path / "empty.parquet", [])
    argv = ["build", "--items-file", "none", "--tag", "x", "--output-dir", str(tmp_path / "out")]
    assert main([*argv, "--reviews-file", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err == f"deepcart: error: --reviews-file: {empty} holds no reviews; nothing to build\n"
    assert main([*argv, "--reviews-file", str(_toy(tmp_path)), "--min-ratings", "100000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--min-ratings 100000 left no reviews" in err
    assert list((tmp_path / "out").iterdir()) == []


def test_output_dir_that_is_a_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Was a FileExistsError traceback from mkdir.
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    code = main(["build", "--reviews-file", str(_toy(tmp_path)), "--items-file", "none",
                 "--tag", "x", "--output-dir", str(blocker), "--quiet"])  # fmt: skip
    assert code == 2
    assert capsys.readouterr().err == (
        f"deepcart: error: --output-dir: {blocker} exists and is not a directory\n"
    )


def test_skipped_raw_lines_are_reported_without_the_scratch_file(tmp_path: Path) -> None:
    # The line named the build's scratch copy (.t.building-.../ingest/...), gone afterwards.
    good = {
        "rating": 5.0,
        "title": "",
        "text": "",
        "images": [],
        "asin": "A",
        "parent_asin": "A",
        "user_id": "u",
        "timestamp": 10**12,
        "helpful_vote": 0,
        "verified_purchase": True,
    }
    raw = tmp_path / "r.jsonl"
    raw.write_text(json.dumps(good) + "\n{not json\n" + json.dumps({**good, "user_id": "v"}) + "\n")
    lines: list[str] = []
    rep = build_dataset(
        reviews_file=raw, items_file=None, output_dir=tmp_path / "out", tag="t",
        min_interactions=1, min_ratings=1, on_bad_lines="skip", echo=lines.append,
    )  # fmt: skip
    said = [line for line in lines if "skipped 1" in line]
    assert len(said) == 1 and "->" not in said[0] and "building" not in said[0], lines
    assert rep.manifest["inputs"]["reviews"]["lines_skipped"] == {"invalid_json": 1}


def test_spark_build_checks_its_inputs_before_spark_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A missing file or a bad tag took a Spark start (5-10 s of Java) to be reported.
    def no_spark(master: str) -> None:
        raise AssertionError("Spark started before the cheap checks")

    monkeypatch.setattr("deepcart.data.spark_session.get_spark", no_spark)
    monkeypatch.setattr("deepcart.data.spark_session.check_spark", lambda master: None)
    for kw, message in [
        ({"reviews_file": tmp_path / "missing.jsonl"}, "--reviews-file: no such file"),
        ({"reviews_file": tmp_path}, "--reviews-file: not a file"),
    ]:
        with pytest.raises(InputError, match=message):
            build_dataset(items_file=None, output_dir=tmp_path / "out", tag="t",
                          engine="spark", echo=lambda s: None, **kw)  # fmt: skip
    reviews = write_reviews(tmp_path / "r.parquet", [("u", "a", 5, 10**12)])
    with pytest.raises(InputError, match="--items-file: no such file"):
        build_dataset(reviews_file=reviews, items_file=tmp_path / "nope.jsonl",
                      output_dir=tmp_path / "out", tag="t", engine="spark",
                      echo=lambda s: None)  # fmt: skip
