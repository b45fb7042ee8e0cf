"""A throwaway PostgreSQL server for the tests (marker ``postgres``).

``initdb`` and ``pg_ctl`` from Debian's ``postgresql`` package (``scripts/setup-test-deps.sh``
installs it) make a cluster in a fresh temporary directory, listening on 127.0.0.1 and a free
port with trust authentication for the user ``deepcart``, its Unix socket in that directory; it
is stopped and the directory removed at the end. PostgreSQL refuses to run as root, so as root
every server command runs as the ``postgres`` system user (``runuser``), which the package
creates. Without the binaries, the driver (psycopg, the ``postgres`` extra) or, as root, that
user, :func:`unavailable_reason` says why and the tests skip.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "deepcart"
_SYSTEM_USER = "postgres"
_databases = itertools.count(1)


def _binaries() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: on PATH, else Debian's newest
    ``/usr/lib/postgresql/<version>/bin``."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        found = Path(initdb).resolve().parent
        if (found / "pg_ctl").exists():
            return found
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    for initdb_path in reversed(versions):
        if (initdb_path.parent / "pg_ctl").exists():
            return initdb_path.parent
    return None


def _as_root() -> bool:
    return os.geteuid() == 0


def unavailable_reason() -> str | None:
    """Why no throwaway server can start here, or None."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    if _binaries() is None:
        return (
            "PostgreSQL's initdb and pg_ctl not found (on PATH or in /usr/lib/postgresql/*/bin); "
            "install Debian's postgresql: scripts/setup-test-deps.sh"
        )
    if _as_root():
        try:
            pwd.getpwnam(_SYSTEM_USER)
        except KeyError:
            return f"running as root and no {_SYSTEM_USER!r} user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and no runuser to run PostgreSQL as another user"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One cluster in a temporary directory; :meth:`database` makes a fresh database."""

    def __init__(self) -> None:
        bindir = _binaries()
        assert bindir is not None, unavailable_reason()
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="deepcart-pg-"))
        if _as_root():
            owner = pwd.getpwnam(_SYSTEM_USER)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self._run(
            "initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if _as_root():
            cmd = ["runuser", "-u", _SYSTEM_USER, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
                f"\n{log}"
            )

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", "60", "start")  # fmt: skip

    def crash(self) -> None:
        """Stop the server the way a crash would (``-m immediate``: no checkpoint, no flush;
        the next start recovers from the write-ahead log), then start it again."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        self.start()

    def database(self) -> str:
        """A new, empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"test_{next(_databases)}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
