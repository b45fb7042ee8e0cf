"""The review store: upserts, durability, group commit, export and the loop back to build."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from deepcart.cli import main
from deepcart.data.build import build_dataset
from deepcart.data.schema import parquet_kind, schema_for
from deepcart.errors import InputError
from deepcart.serve.store import (
    GroupCommitter,
    ReviewStore,
    StoredReview,
    default_db_path,
    export_reviews,
)

from .conftest import TAG, World


def _review(user: str, item: str, rating: float, ts: int = 1, text: str | None = None):
    return StoredReview(user, item, rating, None, text, ts)


@pytest.fixture
def store(tmp_path: Path) -> ReviewStore:
    s = ReviewStore(f"sqlite:///{tmp_path / 'db' / 'reviews.db'}")
    yield s
    s.close()


def test_upsert_replaces_and_reads(store: ReviewStore) -> None:
    store.put(_review("u1", "i1", 2.0, 10, "bad"))
    store.put(_review("u1", "i2", 5.0, 11))
    store.put(_review("u1", "i1", 4.0, 12))  # re-rating replaces
    store.put(_review("u2", "i1", 1.0, 13))
    assert store.count() == 3
    assert store.ratings(["u1", "u2", "nobody"]) == {
        "u1": [("i1", 4.0), ("i2", 5.0)],
        "u2": [("i1", 1.0)],
    }
    assert store.ratings(["u2"]) == {"u2": [("i1", 1.0)]}
    assert store.ratings([]) == {}
    reviews = store.reviews("u1")
    assert [(r.parent_asin, r.rating, r.text, r.timestamp) for r in reviews] == [
        ("i2", 5.0, None, 11),
        ("i1", 4.0, None, 12),
    ]


def test_parameterized_against_injection(store: ReviewStore) -> None:
    evil = "x'; DROP TABLE reviews; --"
    store.put(_review(evil, "i1", 3.0))
    assert store.ratings([evil]) == {evil: [("i1", 3.0)]}
    assert store.count() == 1


def test_sqlite_is_wal_and_synchronous_full(store: ReviewStore) -> None:
    with store.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_group_commit_under_concurrency(store: ReviewStore) -> None:
    writer = GroupCommitter(store)
    futures = []
    lock = threading.Lock()

    def submit(t: int) -> None:
        for i in range(25):
            fut = writer.submit(_review(f"u{t}", f"i{i}", float(1 + i % 5)))
            with lock:
                futures.append(fut)

    threads = [threading.Thread(target=submit, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(f.result(timeout=30) for f in futures)
    writer.close()
    assert store.count() == 200
    assert writer.submit(_review("late", "i", 1.0)).exception() is not None


def test_bad_urls_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a database URL"):
        ReviewStore("::nonsense::")
    with pytest.raises(InputError, match="in-memory"):
        ReviewStore("sqlite://")
    with pytest.raises(InputError, match="no review database"):
        ReviewStore(f"sqlite:///{tmp_path / 'absent.db'}", create=False)


def test_export_is_canonical_and_closes_the_loop(world: World, tmp_path: Path) -> None:
    db = default_db_path(world.data_dir, "loop")
    assert db == world.data_dir / "_reviews" / "loop.db"
    store = ReviewStore(f"sqlite:///{db}")
    items = world.items[:4]
    for n, item in enumerate(items):
        store.put(_review("LOOPUSER", item, float(1 + n), 1700000000000 + n, f"text {n}"))
    store.put(_review(world.users[0], items[0], 1.0, 1800000000000))
    store.close()

    out = tmp_path / "stored.parquet"
    code = main(
        ["export-reviews", "--data-dir", str(world.data_dir), "--data-tag", "loop",
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    table = pq.read_table(out)
    assert table.schema.equals(schema_for("reviews"), check_metadata=False)
    assert parquet_kind(table.schema) == "reviews" and table.num_rows == 5

    build_dataset(
        reviews_file=world.root / "raw" / "Electronics.jsonl.gz",
        items_file=world.root / "raw" / "meta_Electronics.jsonl.gz",
        output_dir=tmp_path / "data",
        tag="next",
        min_interactions=3,
        min_ratings=3,
        extra_reviews=[out],
        progress=False,
        echo=lambda s: None,
    )
    rebuilt = pq.read_table(tmp_path / "data" / "next" / "reviews.parquet")
    mine = rebuilt.filter(pc.equal(rebuilt["user_id"], "LOOPUSER"))
    assert sorted(mine["parent_asin"].to_pylist()) == sorted(items)


def test_export_errors(world: World, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(InputError, match="--out"):
        export_reviews(data_dir=world.data_dir, tag=TAG, out=tmp_path / "x.csv")
    code = main(
        ["export-reviews", "--data-dir", str(tmp_path), "--data-tag", "none-here",
         "--out", str(tmp_path / "x.parquet")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no review database" in err


def test_empty_export(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    ReviewStore(f"sqlite:///{db}").close()
    out = tmp_path / "e.parquet"
    assert export_reviews(data_dir=tmp_path, tag="t", out=out, db_url=f"sqlite:///{db}") == 0
    assert pq.read_table(out).num_rows == 0


def test_raw_sqlite_sees_committed_rows(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    s = ReviewStore(f"sqlite:///{db}")
    s.put(_review("u", "i", 5.0))
    other = sqlite3.connect(db)
    assert other.execute("SELECT user_id, rating FROM reviews").fetchall() == [("u", 5.0)]
    other.close()
    s.close()
