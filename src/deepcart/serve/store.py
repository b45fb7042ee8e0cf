"""Submitted reviews, kept in a real database (SQLAlchemy Core; every statement parameterized).

One table, ``reviews``, keyed by (user_id, parent_asin): rating (1..5), title, text and
timestamp (Unix ms, when the server accepted it). Re-rating an item replaces the earlier review.
A second, tiny table, ``service_meta``, counts successful reloads so that every worker process
of one service follows a reload that reached one of them.

SQLite is the default, ``<data-dir>/_reviews/<tag>.db``, in WAL mode
with ``synchronous=FULL``: a review is acknowledged only after its transaction is committed and
the WAL is synced, so it survives ``kill -9`` of the server (and a power cut). Any other
SQLAlchemy URL works too (``postgresql+psycopg://...``). The SQLite file lives outside the
dataset's own directory on purpose: ``deepcart build`` replaces ``<data-dir>/<tag>/`` whole when
it rebuilds a tag (the loop below does exactly that), which would take a database inside it
along; no tag starts with ``_``, so ``_reviews`` never collides with a dataset.

Writes from the service go through a :class:`GroupCommitter`: one writer thread commits
whatever has queued up in one transaction (one fsync for many reviews), so concurrent writers
neither wait on SQLite's busy handler nor pay one sync each.

With SQLite the two statements on the service's hot path (a user's ratings, the batch upsert)
run on a connection of the calling thread's own (the same URL, connect arguments and pragmas,
taken from the engine once and kept), not through SQLAlchemy's per-call machinery: a read is
12 microseconds of CPU instead of 55, and a batch is one multi-row ``INSERT ... ON CONFLICT``
(one statement step, so the writer thread gives up and waits for the GIL two or three times per
batch instead of once per review). They are still parameterized; every other statement and
every other database goes through SQLAlchemy. Writers of several processes (``--workers N``)
take turns on an ``flock`` of ``<db>-writer.lock`` around each transaction: the next one wakes
the moment the last one commits, where SQLite's busy handler would poll with sleeps of 1, 2, 5,
10 ... ms (the round trip's tail with two workers).

:func:`export_reviews` writes the stored reviews as canonical reviews Parquet, which
``deepcart build --extra-reviews`` takes: the loop from served recommendations back to training
data closes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from deepcart.data.paths import check_outside_dataset, check_tag
from deepcart.data.schema import schema_for
from deepcart.errors import DeepCartError, InputError
from deepcart.fsutil import atomic_path

log = logging.getLogger(__name__)

metadata = sa.MetaData()

reviews_table = sa.Table(
    "reviews",
    metadata,
    sa.Column("user_id", sa.String(128), primary_key=True),
    sa.Column("parent_asin", sa.String(64), primary_key=True),
    sa.Column("rating", sa.Float, nullable=False),
    sa.Column("title", sa.Text, nullable=True),
    sa.Column("text", sa.Text, nullable=True),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
)

#: Reload generations shared by the worker processes of one service (see StateHolder).
meta_table = sa.Table(
    "service_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)
GENERATION_KEYS = ("data", "model")

_EXPORT_BATCH = 50_000

_COLUMNS = ("user_id", "parent_asin", "rating", "title", "text", "timestamp")
#: Rows per multi-row upsert statement (6 parameters each, under SQLite's oldest limit of 999).
_UPSERT_ROWS = 128
_SQLITE_UPSERT = (
    f"INSERT INTO reviews ({', '.join(_COLUMNS)}) VALUES {{values}} "
    "ON CONFLICT (user_id, parent_asin) DO UPDATE SET rating = excluded.rating, "
    "title = excluded.title, text = excluded.text, timestamp = excluded.timestamp"
)
_SQLITE_ONE_USER = (
    "SELECT user_id, parent_asin, rating FROM reviews WHERE user_id = ? ORDER BY parent_asin"
)
_SQLITE_USERS = (
    "SELECT user_id, parent_asin, rating FROM reviews WHERE user_id IN ({marks}) "
    "ORDER BY user_id, parent_asin"
)


class StoreError(DeepCartError):
    """The review database failed (unreachable, full, locked too long)."""


class RowRefused(StoreError):
    """The database refused a row's values (a data or integrity error), not the connection: the
    other reviews of a group commit can still be stored one by one."""


@dataclass(frozen=True)
class StoredReview:
    user_id: str
    parent_asin: str
    rating: float
    title: str | None
    text: str | None
    timestamp: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "parent_asin": self.parent_asin,
            "rating": self.rating,
            "title": self.title,
            "text": self.text,
            "timestamp": self.timestamp,
        }


def default_db_path(data_dir: str | Path, tag: str) -> Path:
    """The default SQLite database of dataset ``tag``: ``<data_dir>/_reviews/<tag>.db``."""
    return Path(data_dir) / "_reviews" / f"{check_tag(tag)}.db"


def default_db_url(data_dir: str | Path, tag: str) -> str:
    return f"sqlite:///{default_db_path(data_dir, tag)}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class ReviewStore:
    """The reviews table behind one SQLAlchemy engine (thread-safe: a connection pool)."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise InputError(f"--db-url: not a database URL: {url!r}") from None
        self.url = parsed
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            db = parsed.database or ""
            if db in ("", ":memory:"):
                raise InputError("--db-url: an in-memory SQLite database would lose every review")
            path = Path(db)
            if not create and not path.is_file():
                raise InputError(
                    f"no review database at {path} (the service creates it on its first start)"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            # Writes are serialized by the GroupCommitter; the timeout covers other processes.
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        try:
            self.engine = sa.create_engine(parsed, **kwargs)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise InputError(f"--db-url: cannot use {parsed!r}: {exc}") from None
        if self.is_sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._upsert = self._upsert_statement()
        #: SQLite: each thread's own DBAPI connection (see the module docstring), all of them.
        self._local = threading.local()
        self._raw: list[sqlite3.Connection] = []
        self._raw_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._lock_fd: int | None = None
        self._lock_path = Path(f"{parsed.database}-writer.lock") if self.is_sqlite else None
        self._by_users = (
            sa.select(reviews_table.c.user_id, reviews_table.c.parent_asin, reviews_table.c.rating)
            .where(reviews_table.c.user_id.in_(sa.bindparam("users", expanding=True)))
            .order_by(reviews_table.c.user_id, reviews_table.c.parent_asin)
        )
        self._one_user = (
            sa.select(reviews_table.c.user_id, reviews_table.c.parent_asin, reviews_table.c.rating)
            .where(reviews_table.c.user_id == sa.bindparam("user"))
            .order_by(reviews_table.c.parent_asin)
        )
        self._by_user = (
            sa.select(reviews_table)
            .where(reviews_table.c.user_id == sa.bindparam("user"))
            .order_by(reviews_table.c.timestamp, reviews_table.c.parent_asin)
        )
        try:
            if create:
                metadata.create_all(self.engine)
            else:
                with self.engine.connect() as conn:
                    conn.execute(sa.select(sa.func.count()).select_from(reviews_table))
        except SQLAlchemyError as exc:
            self.engine.dispose()
            raise InputError(f"review database {parsed!r}: {_short(exc)}") from None

    def _upsert_statement(self) -> Any:
        t = reviews_table
        backend = self.url.get_backend_name()
        if backend in ("sqlite", "postgresql"):
            if backend == "sqlite":
                from sqlalchemy.dialects.sqlite import insert
            else:
                from sqlalchemy.dialects.postgresql import insert
            stmt = insert(t)
            cols = ("rating", "title", "text", "timestamp")
            return stmt.on_conflict_do_update(
                index_elements=[t.c.user_id, t.c.parent_asin],
                set_={c: stmt.excluded[c] for c in cols},
            )
        return None  # other databases: delete + insert in one transaction

    def _sqlite(self) -> sqlite3.Connection:
        """This thread's own sqlite3 connection (SQLite only): a pool connection, detached."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            fairy = self.engine.raw_connection()
            conn = fairy.driver_connection
            fairy.detach()  # kept by this thread, never handed back to the pool
            self._local.conn = conn
            with self._raw_lock:
                self._raw.append(conn)
        return conn

    # ---------------------------------------------------------------- writes

    def put_many(self, reviews: Sequence[StoredReview]) -> None:
        """Insert or replace ``reviews`` in one committed transaction (of several reviews of the
        same user and item, the last one wins)."""
        if not reviews:
            return
        latest = {(r.user_id, r.parent_asin): r for r in reviews}
        if self.is_sqlite:
            self._put_sqlite(list(latest.values()))
            return
        rows = [r.as_dict() for r in latest.values()]
        try:
            with self.engine.begin() as conn:
                if self._upsert is not None:
                    conn.execute(self._upsert, rows)
                else:
                    t = reviews_table
                    for row in rows:
                        conn.execute(
                            t.delete().where(
                                (t.c.user_id == row["user_id"])
                                & (t.c.parent_asin == row["parent_asin"])
                            )
                        )
                    conn.execute(t.insert(), rows)
        except (sa.exc.DataError, sa.exc.IntegrityError) as exc:
            raise RowRefused(f"could not store the review: {_short(exc)}") from None
        except SQLAlchemyError as exc:
            raise StoreError(f"could not store the review: {_short(exc)}") from None

    def defer_checkpoints(self) -> None:
        """SQLite: this thread's commits no longer checkpoint (:meth:`checkpoint` does)."""
        self._sqlite().execute("PRAGMA wal_autocheckpoint = 0")

    def checkpoint(self) -> None:
        """SQLite: copy the committed pages of the WAL into the database file (PASSIVE: it
        neither waits for nor blocks a writer or a reader)."""
        self._sqlite().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """SQLite: the one writer among this machine's processes (module docstring)."""
        assert self._lock_path is not None
        with self._write_lock:
            if self._lock_fd is None:
                try:
                    self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                except OSError as exc:
                    raise StoreError(f"cannot open {self._lock_path}: {exc.strerror}") from None
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _put_sqlite(self, reviews: list[StoredReview]) -> None:
        conn = self._sqlite()
        statements = []
        for b in range(0, len(reviews), _UPSERT_ROWS):
            part = reviews[b : b + _UPSERT_ROWS]
            sql = _SQLITE_UPSERT.format(values=", ".join(["(?, ?, ?, ?, ?, ?)"] * len(part)))
            params = [
                v
                for r in part
                for v in (r.user_id, r.parent_asin, r.rating, r.title, r.text, r.timestamp)
            ]
            statements.append((sql, params))
        try:
            with self._exclusive():
                for sql, params in statements:
                    conn.execute(sql, params)  # the driver opens the transaction
                conn.commit()
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.rollback()
            refused = isinstance(exc, sqlite3.DataError | sqlite3.IntegrityError)
            error = RowRefused if refused else StoreError
            raise error(f"could not store the review: {_short(exc)}") from None

    def put(self, review: StoredReview) -> StoredReview:
        self.put_many([review])
        return review

    # ---------------------------------------------------------------- reads

    def ratings(self, users: Iterable[str]) -> dict[str, list[tuple[str, float]]]:
        """``{user_id: [(parent_asin, rating), ...]}`` (sorted by item) for users with reviews."""
        users = list(dict.fromkeys(users))
        out: dict[str, list[tuple[str, float]]] = {}
        if not users:
            return out
        if self.is_sqlite:
            try:
                if len(users) == 1:
                    rows = self._sqlite().execute(_SQLITE_ONE_USER, users)
                else:
                    marks = ", ".join(["?"] * len(users))
                    rows = self._sqlite().execute(_SQLITE_USERS.format(marks=marks), users)
                for user, asin, rating in rows:
                    out.setdefault(user, []).append((asin, float(rating)))
            except sqlite3.Error as exc:
                raise StoreError(f"could not read reviews: {_short(exc)}") from None
            return out
        try:
            with self.engine.connect() as conn:
                if len(users) == 1:  # the common case, without an expanding IN to compile
                    rows = conn.execute(self._one_user, {"user": users[0]})
                else:
                    rows = conn.execute(self._by_users, {"users": users})
                for user, asin, rating in rows:
                    out.setdefault(user, []).append((asin, float(rating)))
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read reviews: {_short(exc)}") from None
        return out

    def reviews(self, user_id: str) -> list[StoredReview]:
        """A user's stored reviews, oldest first."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(self._by_user, {"user": user_id}).all()
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read reviews: {_short(exc)}") from None
        return [StoredReview(**row._asdict()) for row in rows]

    def generations(self) -> dict[str, int]:
        """The reload generations: how many data and model reloads succeeded so far."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(sa.select(meta_table.c.key, meta_table.c.value)).all()
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read the reload generations: {_short(exc)}") from None
        values = {str(k): int(v) for k, v in rows}
        return {k: values.get(k, 0) for k in GENERATION_KEYS}

    def bump_generation(self, key: str) -> dict[str, int]:
        """Count one more successful ``key`` reload; the generations after it."""
        if key not in GENERATION_KEYS:
            raise ValueError(f"key must be one of {GENERATION_KEYS}, got {key!r}")
        t = meta_table
        try:
            with self.engine.begin() as conn:
                done = conn.execute(
                    t.update().where(t.c.key == key).values(value=t.c.value + 1)
                ).rowcount
                if not done:
                    conn.execute(t.insert().values(key=key, value=1))
        except SQLAlchemyError as exc:
            raise StoreError(f"could not record the reload: {_short(exc)}") from None
        return self.generations()

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(reviews_table)).one()[0])

    def export(self, path: str | Path) -> int:
        """Write every stored review to ``path`` as canonical reviews Parquet; the row count."""
        schema = schema_for("reviews")
        t = reviews_table
        query = sa.select(t).order_by(t.c.user_id, t.c.parent_asin)
        n = 0
        out = Path(path)
        with atomic_path(out, suffix=".parquet") as tmp, pq.ParquetWriter(tmp, schema) as writer:
            with self.engine.connect() as conn:
                result = conn.execution_options(yield_per=_EXPORT_BATCH).execute(query)
                for part in result.partitions(_EXPORT_BATCH):
                    writer.write_table(_to_table(part, schema))
                    n += len(part)
        return n

    def close(self) -> None:
        with self._raw_lock:
            raw, self._raw = self._raw, []
        for conn in raw:
            with contextlib.suppress(Exception):
                conn.close()
        with self._write_lock:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
        self.engine.dispose()


def _to_table(rows: Sequence[Any], schema: pa.Schema) -> pa.Table:
    n = len(rows)
    return pa.table(
        {
            "user_id": pa.array([r.user_id for r in rows], pa.string()),
            "parent_asin": pa.array([r.parent_asin for r in rows], pa.string()),
            "rating": pa.array([r.rating for r in rows], pa.float32()),
            "timestamp": pa.array([r.timestamp for r in rows], pa.int64()),
            "title": pa.array([r.title for r in rows], pa.string()),
            "text": pa.array([r.text for r in rows], pa.string()),
            "helpful_vote": pa.array([0] * n, pa.int32()),
            "verified_purchase": pa.nulls(n, pa.bool_()),
        },
        schema=schema,
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
    finally:
        cur.close()


def _short(exc: BaseException) -> str:
    """The first line of a database error, without SQLAlchemy's statement dump."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    return text.splitlines()[0] if text else type(exc).__name__


def export_reviews(
    *, data_dir: str | Path, tag: str, out: str | Path, db_url: str | None = None
) -> int:
    """``deepcart export-reviews``: the stored reviews of dataset ``tag`` as reviews Parquet."""
    out = Path(out)
    check_outside_dataset(out, data_dir, tag, "the stored reviews")
    if out.suffix != ".parquet":
        raise InputError(f"--out: expected a .parquet file name, got {out}")
    store = ReviewStore(db_url or default_db_url(data_dir, tag), create=False)
    try:
        return store.export(out)
    finally:
        store.close()


# -------------------------------------------------------------------- group commit


class GroupCommitter:
    """One writer thread; :meth:`submit` returns a future resolved once the review is committed.

    The thread takes everything queued (up to ``max_batch``) and commits it in one transaction,
    so N concurrent writers cost one transaction and one WAL sync, not N.

    With SQLite, the writer's commits do not checkpoint (copy the WAL's pages into the database
    file, with its own syncs, every 1,000 pages: 10 to 100 ms during which every review waited);
    a second thread does, every ``checkpoint_seconds``, with a PASSIVE checkpoint that neither
    waits for nor blocks the writer. Durability is the WAL's: a commit is synced before it is
    acknowledged either way.
    """

    def __init__(
        self, store: ReviewStore, max_batch: int = 256, checkpoint_seconds: float = 1.0
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        self.checkpoint_seconds = checkpoint_seconds
        self._queue: queue.Queue[tuple[StoredReview, Future[StoredReview]] | None] = queue.Queue()
        self._thread = threading.Thread(
            target=self._run, name="deepcart-review-writer", daemon=True
        )
        self._closed = False
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if store.is_sqlite:
            self._checkpointer = threading.Thread(
                target=self._checkpoints, name="deepcart-review-checkpoints", daemon=True
            )
        self._thread.start()

    def _checkpoints(self) -> None:
        while not self._stop.wait(self.checkpoint_seconds):
            try:
                self.store.checkpoint()
            except Exception:  # the next one retries; the writer's commits are unaffected
                log.exception("checkpointing the review database failed")

    def submit(self, review: StoredReview) -> Future[StoredReview]:
        fut: Future[StoredReview] = Future()
        if self._closed:
            fut.set_exception(StoreError("the review store is closed"))
            return fut
        self._queue.put((review, fut))
        return fut

    def _run(self) -> None:
        if self._checkpointer is not None:
            try:
                self.store.defer_checkpoints()
                self._checkpointer.start()
            except Exception:  # then the writer's commits keep checkpointing themselves
                log.exception("could not hand checkpoints to a thread of their own")
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[tuple[StoredReview, Future[StoredReview]]]) -> None:
        try:
            self.store.put_many([r for r, _ in batch])
        except RowRefused as exc:
            if len(batch) > 1:  # one review's values failed the group: the others one by one
                for one in batch:
                    self._commit([one])
                return
            batch[0][1].set_exception(exc)
            return
        except Exception as exc:  # every waiter learns that its review was not stored
            if not isinstance(exc, StoreError):
                log.exception("review store failure")
                exc = StoreError(f"could not store the review: {type(exc).__name__}")
            for _, fut in batch:
                fut.set_exception(exc)
            return
        for review, fut in batch:
            fut.set_result(review)

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        self._stop.set()
        if self._checkpointer is not None and self._checkpointer.is_alive():
            self._checkpointer.join(timeout)
