"""A real uvicorn process on 127.0.0.1: HTTP answers, reload under load, and kill -9 durability."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .conftest import TAG, TOKEN, World
from .postgres import PostgresServer


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``deepcart serve`` in a subprocess; ``db``: a SQLite file, or any database URL."""

    def __init__(self, world: World, db: Path | str, *extra: str) -> None:
        url = db if isinstance(db, str) else f"sqlite:///{db}"
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DEEPCART_ADMIN_TOKEN": TOKEN, "DEEPCART_TYPE": "als"}
        env.pop("DEEPCART_DATA_TAG", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deepcart", "serve", "--data-dir", str(world.data_dir),
             "--data-tag", TAG, "--model-dir", str(world.model_dir), "--port", str(self.port),
             "--db-url", url, *extra],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stdout.read()}")
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("server did not come up in 90 s")
            time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "reviews.db"


def test_http_answers_and_reload_under_load(world: World, db: Path) -> None:
    server = Server(world, db)
    try:
        with httpx.Client(base_url=server.base, timeout=30) as c:
            assert c.get("/docs").status_code == 200
            users = c.get("/random_users", params={"n": 20}).json()
            body = c.get("/recommendations", params={"users": ",".join(users[:3])}).json()
            assert list(body) == users[:3] and all(len(v) == 10 for v in body.values())
            r = c.get("/recommendations", params={"users": "a b"})
            assert r.status_code == 422 and r.json()["message"].startswith("users:")

        def hammer(n: int) -> list[int]:
            codes = []
            with httpx.Client(base_url=server.base, timeout=30) as c:
                for i in range(40):
                    user = users[(n + i) % len(users)]
                    mode = "worst" if i % 3 == 0 else "best"
                    r = c.get("/recommendations", params={"users": user, "mode": mode, "k": 5})
                    codes.append(r.status_code)
            return codes

        auth = {"Authorization": f"Bearer {TOKEN}"}
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(hammer, n) for n in range(4)]
            with httpx.Client(base_url=server.base, timeout=60) as c:
                paths = ("/reload_model", "/reload_data", "/reload_model")
                versions = [c.post(w, headers=auth).json()["version"] for w in paths]
            codes = [code for f in futures for code in f.result()]
        assert versions == [2, 3, 4]
        assert codes and set(codes) == {200}, codes
    finally:
        server.stop()


def test_acknowledged_review_survives_kill_9(world: World, db: Path) -> None:
    _survives_kill_9(world, db)


@pytest.mark.postgres
def test_acknowledged_review_survives_kill_9_on_postgresql(
    world: World, postgres_server: PostgresServer, postgres_url: str
) -> None:
    """The same on a PostgreSQL database, whose server then crashes too (an immediate stop:
    no checkpoint; it recovers from its write-ahead log) before the service starts again."""
    _survives_kill_9(world, postgres_url, between=postgres_server.crash)


def _survives_kill_9(
    world: World, db: Path | str, between: Callable[[], None] | None = None
) -> None:
    user, item = "KILL9USER", world.items[7]
    server = Server(world, db)
    try:
        r = httpx.post(
            f"{server.base}/users/{user}/reviews",
            json={"parent_asin": item, "rating": 2, "text": "survives"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
    finally:
        server.stop(signal.SIGKILL)  # no shutdown, no flush: only what was committed remains
    assert server.proc.returncode == -signal.SIGKILL
    if between is not None:
        between()

    again = Server(world, db)
    try:
        body = httpx.get(f"{again.base}/users/{user}/reviews", timeout=30).json()
        assert [(r["parent_asin"], r["rating"], r["text"]) for r in body["reviews"]] == [
            (item, 2.0, "survives")
        ]
        recs = httpx.get(f"{again.base}/users/{user}/recommendations", timeout=30).json()
        assert recs["fallback"] is False
        assert item not in {i["parent_asin"] for i in recs["items"]}
    finally:
        again.stop()


def test_two_workers_share_reviews_and_reloads(world: World, db: Path) -> None:
    server = Server(world, db, "--workers", "2")
    try:
        fresh = {"headers": {"Connection": "close"}, "timeout": 30}  # a new connection each time
        assert (
            httpx.post(
                f"{server.base}/users/TWOWORKERS/reviews",
                json={"parent_asin": world.items[3], "rating": 5},
                **fresh,
            ).status_code
            == 201
        )
        for _ in range(6):  # whichever worker answers, the review is there
            body = httpx.get(f"{server.base}/users/TWOWORKERS/recommendations", **fresh).json()
            assert body["fallback"] is False
        auth = {"Authorization": f"Bearer {TOKEN}"}
        r = httpx.post(f"{server.base}/reload_model", headers=auth, timeout=60)
        assert r.status_code == 200 and r.json()["version"] == 2
        # The other worker follows within about a second (longer on a busy machine): poll
        # until 16 answers in a row, from whichever worker the kernel picks, say version 2.
        deadline, streak = time.monotonic() + 60, 0
        while streak < 16:
            assert time.monotonic() < deadline, "a worker did not follow the reload"
            version = httpx.get(f"{server.base}/health", **fresh).json()["version"]
            streak = streak + 1 if version == 2 else 0
            if version != 2:
                time.sleep(0.5)
    finally:
        server.stop()
