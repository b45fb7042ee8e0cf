"""``deepcart deploy --share``: a public https link to the local demo, through an SSH tunnel.

The system's OpenSSH client opens a reverse tunnel (``ssh -R 80:127.0.0.1:PORT``) to a relay
host, by default ``nokey@localhost.run``, which needs no account and answers with a public https
URL that lives as long as the tunnel (so as long as the process). Another relay (or one of your
own) is set with ``DEEPCART_SHARE_SERVER`` (any ssh destination, ``ssh://user@host:port`` too).

It never blocks the server: the tunnel is opened in a background thread, which prints the public
URL when it arrives, or ONE line saying why no public link could be made (no ssh client, the
relay unreachable, no URL within :data:`WAIT_SECONDS`) while the demo keeps serving locally.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

#: The relay when ``DEEPCART_SHARE_SERVER`` is not set.
DEFAULT_SERVER = "nokey@localhost.run"
SERVER_ENV = "DEEPCART_SHARE_SERVER"
#: How long to wait for the relay's URL before giving up.
WAIT_SECONDS = 15.0

_URL = re.compile(r"https://[A-Za-z0-9.-]+\.[A-Za-z]{2,}(?::\d+)?(?:/\S*)?")
#: Relays announce the link on a line like "abc.lhr.life tunneled with tls termination, https://
#: abc.lhr.life" (localhost.run) or "Forwarding HTTP traffic from https://abc.serveo.net".
_ANNOUNCE = re.compile(r"tunnel|forward", re.IGNORECASE)
#: Links relays print that are not the tunnel (their own pages).
_NOT_THE_LINK = re.compile(r"^https://(admin\.|www\.)?localhost\.run(/|$)")


def public_url(line: str) -> str | None:
    """The public link a relay announces on ``line``, or None."""
    if not _ANNOUNCE.search(line):
        return None
    for match in _URL.finditer(line):
        url = match.group(0).rstrip(".,;)")
        if not _NOT_THE_LINK.match(url):
            return url
    return None


def ssh_command(ssh: str, port: int, server: str, host: str = "127.0.0.1") -> list[str]:
    """The ssh command line of the reverse tunnel to ``host:port``."""
    return [
        ssh,
        "-o", "BatchMode=yes",  # never prompt: there is nobody to answer
        "-o", "StrictHostKeyChecking=accept-new",
        "-o", "ConnectTimeout=10",
        "-o", "ServerAliveInterval=30",
        "-o", "ExitOnForwardFailure=yes",
        "-R", f"80:{f'[{host}]' if ':' in host else host}:{port}",
        server,
    ]  # fmt: skip


class ShareTunnel:
    """A reverse SSH tunnel opened in the background; :meth:`close` ends it.

    After :meth:`start`, :attr:`done` is set once the outcome is known: :attr:`url` is the
    public link, or :attr:`failure` says why there is none (the line that was printed).
    """

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        server: str | None = None,
        ssh: str = "ssh",
        wait: float = WAIT_SECONDS,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.port = port
        #: Where the tunnel leads: the server's address (loopback when it listens on all).
        self.host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        self.server = server or os.environ.get(SERVER_ENV) or DEFAULT_SERVER
        self.ssh = ssh
        self.wait = wait
        self.echo = echo
        self.url: str | None = None
        self.failure: str | None = None
        self.done = threading.Event()
        self._proc: subprocess.Popen[str] | None = None
        self._closed = False
        self._lock = threading.Lock()

    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> ShareTunnel:
        threading.Thread(target=self._run, name="deepcart-share", daemon=True).start()
        return self

    def _fail(self, why: str) -> None:
        self.failure = (
            f"--share: no public link could be made ({why}); serving locally only at "
            f"http://{self._netloc()}"
        )
        self.echo(self.failure)

    def _run(self) -> None:
        try:
            self._open()
        except Exception as exc:  # the demo keeps serving whatever happens here
            log.debug("share tunnel failed", exc_info=exc)
            self._fail(f"{type(exc).__name__}: {exc}")
        finally:
            self.done.set()

    def _open(self) -> None:
        exe = shutil.which(self.ssh)
        if exe is None:
            self._fail(f"no ssh client: {self.ssh!r} is not on PATH; install OpenSSH's client")
            return
        with self._lock:
            if self._closed:
                return
            self._proc = proc = subprocess.Popen(
                ssh_command(exe, self.port, self.server, self.host),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:  # drains ssh's output for as long as it runs
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line.rstrip())
            lines.put(None)

        threading.Thread(target=read, name="deepcart-share-output", daemon=True).start()
        deadline = time.monotonic() + self.wait
        last = ""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                self._fail(f"no URL from {self.server} within {self.wait:.0f} s")
                return
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:  # ssh ended
                if self._closed:
                    return
                code = proc.wait()
                why = last or f"ssh exited with code {code}"
                self._fail(f"{self.server}: {why}")
                return
            log.debug("ssh: %s", line)
            if line.strip():
                last = line.strip()
            url = public_url(line)
            if url is not None:
                self.url = url
                self.echo(f"Public link: {url} (open while this process runs)")
                return

    def close(self) -> None:
        """End the tunnel (the public link stops working)."""
        with self._lock:
            self._closed = True
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
