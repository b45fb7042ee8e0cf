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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ReviewStore:
    """The store on SQLite, and on a throwaway PostgreSQL server (skips without one)."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'db' / 'reviews.db'}"
    s = ReviewStore(url)
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


def test_sqlite_is_wal_and_synchronous_full(tmp_path: Path) -> None:
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    store.put(_review("u", "i", 1.0))  # the writing thread's own connection too
    try:
        with store.engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store._sqlite().execute("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        store.close()


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


def test_one_batch_with_a_rerating_keeps_the_last_and_exports(
    store: ReviewStore, tmp_path: Path
) -> None:
    """A group commit may hold two reviews of the same user and item (PostgreSQL refuses an
    upsert that touches a row twice): the later one is stored."""
    store.put_many(
        [
            _review("u1", "i1", 2.0, 10, "first"),
            _review("u2", "i1", 3.0, 11),
            _review("u1", "i1", 5.0, 12, "second"),
        ]
    )
    assert store.ratings(["u1", "u2"]) == {"u1": [("i1", 5.0)], "u2": [("i1", 3.0)]}
    assert [(r.text, r.timestamp) for r in store.reviews("u1")] == [("second", 12)]
    out = tmp_path / "export.parquet"
    assert store.export(out) == 2
    rows = pq.read_table(out).to_pylist()
    assert [(r["user_id"], r["rating"], r["text"]) for r in rows] == [
        ("u1", 5.0, "second"),
        ("u2", 3.0, None),
    ]


def test_reload_generations(store: ReviewStore) -> None:
    assert store.generations() == {"data": 0, "model": 0}
    assert store.bump_generation("model") == {"data": 0, "model": 1}
    assert store.bump_generation("model") == {"data": 0, "model": 2}
    assert store.bump_generation("data") == {"data": 1, "model": 2}


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


def test_a_rerating_survives_the_loop_back_to_build(world: World, tmp_path: Path) -> None:
    """A known user re-rates an item they rated in the raw data (twice: the newest is their
    opinion). After export, a rebuild with --extra-reviews, a retrain and reload_data, their
    training row holds the newest rating, not the raw data's: their list is the same with or
    without the stored reviews."""
    from fastapi.testclient import TestClient

    from deepcart.data.split import SplitParams
    from deepcart.serve.api import create_app
    from deepcart.training import train_model

    from .conftest import admin

    data, models, raw = tmp_path / "data", tmp_path / "models", world.root / "raw"

    def build(extra: list[Path] | None) -> dict[str, int]:
        return build_dataset(
            reviews_file=raw / "Electronics.jsonl.gz",
            items_file=raw / "meta_Electronics.jsonl.gz",
            output_dir=data,
            tag=TAG,
            min_interactions=3,
            min_ratings=3,
            extra_reviews=extra,
            progress=False,
            echo=lambda s: None,
        ).counts

    def train() -> None:
        train_model(
            data_dir=data,
            tag=TAG,
            model_type="als",
            split_params=SplitParams(protocol="none"),
            params={"factors": 16, "iterations": 5},
            model_dir=models,
            echo=lambda s: None,
        )

    build(None)
    train()
    first = pq.read_table(data / TAG / "splits" / "none" / "train.parquet").slice(0, 1)
    user, item = first["user_id"][0].as_py(), first["parent_asin"][0].as_py()
    latest = 1 if first["rating"][0].as_py() >= 3 else 5
    db = tmp_path / "reviews.db"
    with TestClient(create_app(world.settings(db, data_dir=data, model_dir=models))) as c:
        for rating in (3, latest):
            r = c.post(f"/users/{user}/reviews", json={"parent_asin": item, "rating": rating})
            assert r.status_code == 201, r.text
        stored = tmp_path / "stored.parquet"
        assert export_reviews(data_dir=data, tag=TAG, out=stored, db_url=f"sqlite:///{db}") == 1
        counts = build([stored])
        assert (counts["ratings_replaced"], counts["extra_reviews_read"]) == (1, 1)
        train()
        assert c.post("/reload_data", headers=admin()).status_code == 200
        state = c.app.state.holder.state
        assert state.user_row(user, ()).toarray()[0, state.item_index[item]] == latest
        served = c.get(f"/users/{user}/recommendations").json()
    fresh = world.settings(tmp_path / "fresh.db", data_dir=data, model_dir=models)
    with TestClient(create_app(fresh)) as c:
        assert c.get(f"/users/{user}/recommendations").json() == served


def test_sqlite_checkpoints_run_beside_the_writer(tmp_path: Path) -> None:
    """The writer's commits do not checkpoint; the checkpoint thread copies the WAL into the
    database file (read here with immutable=1, which ignores the WAL)."""
    import time

    db = tmp_path / "ck.db"

    def rows_in_the_file() -> int:
        conn = sqlite3.connect(f"file:{db}?immutable=1", uri=True)
        try:
            return conn.execute("SELECT count(*) FROM reviews").fetchone()[0]
        except sqlite3.DatabaseError:
            # Not even the table checkpointed yet; or, immutable=1 taking no lock, the file read
            # in the middle of a checkpoint's write ("malformed"): look again.
            return 0
        finally:
            conn.close()

    store = ReviewStore(f"sqlite:///{db}")
    writer = GroupCommitter(store, checkpoint_seconds=0.1)
    try:
        for i in range(5):
            writer.submit(_review("u", f"i{i}", 4.0)).result(timeout=30)
        # The writer thread's connection, the first one made (before the checkpoint thread's).
        assert store._raw[0].execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        deadline = time.monotonic() + 30
        while rows_in_the_file() < 5:
            assert time.monotonic() < deadline, "no checkpoint reached the database file"
            time.sleep(0.05)
    finally:
        writer.close()
        store.close()
    assert writer._checkpointer is not None and not writer._checkpointer.is_alive()
    assert rows_in_the_file() == 5  # at rest, the file itself is whole
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_a_refused_row_does_not_fail_the_rest_of_its_group_commit(store: ReviewStore) -> None:
    # A row the database refuses (here NOT NULL; on PostgreSQL a NUL in a text was one) used to
    # fail every review committed with it; the others are now stored one by one.
    from concurrent.futures import Future

    from deepcart.serve.store import RowRefused

    committer = GroupCommitter(store)
    try:
        good1, bad, good2 = (
            _review("g1", "i1", 4.0),
            _review("b", "i1", None),
            _review("g2", "i2", 2.0),
        )
        batch = [(r, Future()) for r in (good1, bad, good2)]
        committer._commit(batch)  # one group, as the writer thread would commit it
        assert batch[0][1].result(5) == good1 and batch[2][1].result(5) == good2
        with pytest.raises(RowRefused, match="could not store the review"):
            batch[1][1].result(5)
        assert store.ratings(["g1", "g2", "b"]) == {"g1": [("i1", 4.0)], "g2": [("i2", 2.0)]}
    finally:
        committer.close()
