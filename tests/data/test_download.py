"""download: resume, retries, size check, atomic rename, one-line errors; against a local server."""

from __future__ import annotations

import gzip
import json
import logging
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deepcart.cli import main
from deepcart.data import download as dl
from deepcart.data.download import (
    CATEGORIES,
    DEFAULT_BASE_URL,
    category_files,
    download_category,
    download_file,
    part_path,
)
from deepcart.errors import DownloadError, InputError

REVIEWS = "review_categories/All_Beauty.jsonl.gz"
META = "meta_categories/meta_All_Beauty.jsonl.gz"


def _payload(n: int, seed: int) -> bytes:
    """n bytes that start like a gzip file (download checks the magic number of a .gz)."""
    return b"\x1f\x8b" + random.Random(seed).randbytes(n - 2)


@dataclass
class _State:
    files: dict[str, bytes]
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    ignore_range: bool = False
    drop_first_get: set[str] = field(default_factory=set)  # first GET stops at half the file
    drop_always: set[str] = field(default_factory=set)  # every GET stops at half the file
    stall_first_get: set[str] = field(default_factory=set)  # first GET stalls at half the file
    lie_total: set[str] = field(default_factory=set)  # 206 whose total is 10 bytes too small
    gets: dict[str, int] = field(default_factory=dict)
    on_get: Callable[[_State, str, int], None] | None = None  # (state, path, earlier GETs)
    etags: dict[str, str] = field(default_factory=dict)  # path -> its ETag (sent, If-Range)
    if_ranges: list[str | None] = field(default_factory=list)  # each GET's If-Range header
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ranges(self, path: str) -> list[str | None]:
        return [r for m, p, r in self.requests if m == "GET" and p == path]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        st = self.server.state
        path = self.path.lstrip("/")
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if rng and if_range is not None and if_range != st.etags.get(path):
            rng = None  # RFC 9110: the file changed, so the whole of it (200)
        with st.lock:
            st.requests.append((self.command, path, self.headers.get("Range")))
            if not head:
                st.if_ranges.append(if_range)
            n_get = st.gets.get(path, 0)
            if not head:
                st.gets[path] = n_get + 1
                if st.on_get is not None:
                    st.on_get(st, path, n_get)
        data = st.files.get(path)
        if data is None:
            self.send_error(404)
            return
        n = len(data)
        start = 0
        if path in st.lie_total and not head:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes 0-{n - 1}/{n - 10}")
        elif rng and not st.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= n:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{n}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{n - 1}/{n}")
        else:
            self.send_response(200)
        if path in st.etags:
            self.send_header("ETag", st.etags[path])
        self.send_header("Content-Length", str(n - start))
        self.end_headers()
        if head:
            return
        body = data[start:]
        if path in st.stall_first_get and n_get == 0:
            self.wfile.write(body[: n // 2])
            self.wfile.flush()
            time.sleep(1.0)  # the client's read times out meanwhile
            self.close_connection = True
            return
        if path in st.drop_always or (path in st.drop_first_get and n_get == 0):
            # full Content-Length announced, but the connection dies at half the file
            self.wfile.write(body[: max(n // 2 - start, 0)])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: _State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that went away (the stall test) is expected here

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dl, "BACKOFF_S", 0.0)


@pytest.fixture
def files() -> dict[str, bytes]:
    return {REVIEWS: _payload(300_000, 1), META: _payload(70_001, 2)}


@pytest.fixture
def server(files: dict[str, bytes]) -> Iterator[_Server]:
    srv = _Server(_State(files=dict(files)))
    thread = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(srv: _Server, tmp_path: Path, **kw: object) -> list[Path]:
    kw.setdefault("progress", False)
    kw.setdefault("timeout", 5.0)
    return download_category("All_Beauty", tmp_path, base_url=srv.base_url, **kw)


# --------------------------------------------------------------------------- names


def test_categories_and_urls() -> None:
    assert len(CATEGORIES) == len(set(CATEGORIES)) == 34
    assert category_files("Electronics") == [
        (DEFAULT_BASE_URL + "review_categories/Electronics.jsonl.gz", "Electronics.jsonl.gz"),
        (
            DEFAULT_BASE_URL + "meta_categories/meta_Electronics.jsonl.gz",
            "meta_Electronics.jsonl.gz",
        ),
    ]
    # a base without its trailing slash keeps its last segment
    assert category_files("Books", "http://m/raw", ["meta"]) == [
        ("http://m/raw/meta_categories/meta_Books.jsonl.gz", "meta_Books.jsonl.gz")
    ]


def test_bad_category_names_the_flag_and_close_names(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        download_category("electronic", tmp_path, base_url="http://127.0.0.1:9/")
    msg = str(err.value)
    assert "--category" in msg and "'electronic'" in msg and "Electronics" in msg
    assert "\n" not in msg
    assert not list(tmp_path.iterdir())


def test_bad_what_and_base_url(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--what"):
        download_category("Books", tmp_path, what=["ratings"])
    with pytest.raises(InputError, match="--base-url"):
        download_category("Books", tmp_path, base_url="ftp://example.org/raw/")


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--base-url", "http://[::1/raw/"),  # urlsplit: "Invalid IPv6 URL"
        ("--base-url", "http://127.0.0.1:abc/"),  # was retried 5 times as a dropped connection
        ("--base-url", "http://127.0.0.1:99999/"),
        ("--timeout", "inf"),  # socket.settimeout: OverflowError
        ("--timeout", "1e12"),
    ],
)
def test_cli_bad_base_url_or_timeout_is_one_line_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    argv = ["download", "--category", "All_Beauty", "--output-dir", str(tmp_path / "raw")]
    argv += ["--base-url", "http://127.0.0.1:9/", "--timeout", "5", flag, value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"deepcart: error: {flag}: ") and err.count("\n") == 1, err
    assert not (tmp_path / "raw").exists()


# --------------------------------------------------------------------------- downloads


def test_full_download_gives_identical_bytes(server: _Server, tmp_path: Path) -> None:
    paths = _get(server, tmp_path)
    assert paths == [tmp_path / "All_Beauty.jsonl.gz", tmp_path / "meta_All_Beauty.jsonl.gz"]
    assert paths[0].read_bytes() == server.state.files[REVIEWS]
    assert paths[1].read_bytes() == server.state.files[META]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


def test_an_html_page_instead_of_gzip_is_refused_and_not_kept(
    server: _Server, tmp_path: Path
) -> None:
    # A mirror or captive proxy that answers 200 with a page: its exact size passes the check.
    server.state.files[REVIEWS] = b"<!DOCTYPE html>\n<html><body>Sign in</body></html>\n"
    with pytest.raises(DownloadError, match=r"not gzip \(it begins '<!DOCTYPE html> <html>"):
        _get(server, tmp_path, what=["reviews"])
    assert list(tmp_path.iterdir()) == []  # neither the final name nor a .part to resume


def test_what_selects_files(server: _Server, tmp_path: Path) -> None:
    assert _get(server, tmp_path, what=("meta",)) == [tmp_path / "meta_All_Beauty.jsonl.gz"]
    assert not (tmp_path / "All_Beauty.jsonl.gz").exists()


def test_dropped_connection_is_resumed_with_a_range_request(
    server: _Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.state.drop_first_get.add(REVIEWS)
    n = len(server.state.files[REVIEWS])
    with caplog.at_level(logging.WARNING, logger=dl.__name__):
        (path,) = _get(server, tmp_path, what=["reviews"])
    assert server.state.ranges(REVIEWS) == [None, f"bytes={n // 2}-"]
    assert path.read_bytes() == server.state.files[REVIEWS]
    assert not part_path(path).exists()
    assert "resuming" in caplog.text


def test_timeout_mid_body_is_resumed(server: _Server, tmp_path: Path) -> None:
    server.state.stall_first_get.add(META)
    n = len(server.state.files[META])
    (path,) = _get(server, tmp_path, what=["meta"], timeout=0.3)
    assert server.state.ranges(META) == [None, f"bytes={n // 2}-"]
    assert path.read_bytes() == server.state.files[META]


def _part_from(server: _Server, dest: Path, data: bytes, validator: str | None = None) -> None:
    """A part file as an interrupted run leaves it: its bytes and where they came from."""
    part_path(dest).write_bytes(data)
    source = part_path(dest).with_name(part_path(dest).name + ".source")
    url = server.base_url + (META if dest.name.startswith("meta_") else REVIEWS)
    source.write_text(json.dumps({"url": url, "validator": validator}))


def test_existing_part_resumes_from_its_size(server: _Server, tmp_path: Path) -> None:
    data = server.state.files[META]
    dest = tmp_path / "meta_All_Beauty.jsonl.gz"
    _part_from(server, dest, data[:12_345])
    assert _get(server, tmp_path, what=["meta"]) == [dest]
    assert server.state.ranges(META) == ["bytes=12345-"]
    assert dest.read_bytes() == data
    assert not part_path(dest).exists()


def test_complete_part_is_finished_on_416(server: _Server, tmp_path: Path) -> None:
    data = server.state.files[META]
    dest = tmp_path / "meta_All_Beauty.jsonl.gz"
    _part_from(server, dest, data)
    _get(server, tmp_path, what=["meta"])
    assert server.state.ranges(META) == [f"bytes={len(data)}-"]
    assert dest.read_bytes() == data and not part_path(dest).exists()


def test_server_ignoring_range_restarts_from_zero(server: _Server, tmp_path: Path) -> None:
    server.state.ignore_range = True
    data = server.state.files[META]
    dest = tmp_path / "meta_All_Beauty.jsonl.gz"
    _part_from(server, dest, b"x" * 5000)  # appending to these would corrupt the file
    _get(server, tmp_path, what=["meta"])
    assert server.state.ranges(META) == ["bytes=5000-"]
    assert dest.read_bytes() == data


def test_a_part_of_unknown_origin_starts_over(server: _Server, tmp_path: Path) -> None:
    """A part file without its record (another tool's, or garbage): resuming it would append
    the rest of the file to foreign bytes, and the gzip check of the first bytes then blamed the
    server. It is started over instead."""
    data = server.state.files[META]
    dest = tmp_path / "meta_All_Beauty.jsonl.gz"
    part_path(dest).write_bytes(os.urandom(1000))
    _get(server, tmp_path, what=["meta"])
    assert server.state.ranges(META) == [None]
    assert dest.read_bytes() == data and not list(tmp_path.glob("*.part*"))


def test_a_file_changed_on_the_server_is_fetched_again_not_appended(
    server: _Server, tmp_path: Path
) -> None:
    """The first run stops half way; the file then changes on the server (same size or not).
    Resuming sent only Range, so the new file's second half went after the old first half: a
    corrupt .gz, reported downloaded, and skipped on every later run. If-Range makes the server
    send the whole new file."""
    st = server.state
    st.etags[REVIEWS] = '"v1"'
    st.drop_always.add(REVIEWS)
    dest = tmp_path / "All_Beauty.jsonl.gz"
    with pytest.raises(DownloadError):
        _get(server, tmp_path, what=["reviews"])
    assert part_path(dest).exists()
    st.drop_always.clear()
    st.files[REVIEWS] = gzip.compress(b'{"changed": true}\n' * 500)
    st.etags[REVIEWS] = '"v2"'
    st.if_ranges.clear()
    st.requests.clear()
    _get(server, tmp_path, what=["reviews"])
    assert st.if_ranges == ['"v1"']  # the resume asked for the old file's rest, or all
    assert dest.read_bytes() == st.files[REVIEWS]
    assert gzip.decompress(dest.read_bytes()).startswith(b'{"changed": true}')
    # the same file (its ETag unchanged) resumes with a range as before
    st.etags[META] = '"m1"'
    _part_from(server, tmp_path / "meta_All_Beauty.jsonl.gz", st.files[META][:1000], '"m1"')
    st.requests.clear()
    _get(server, tmp_path, what=["meta"])
    assert st.ranges(META) == ["bytes=1000-"]
    assert (tmp_path / "meta_All_Beauty.jsonl.gz").read_bytes() == st.files[META]


def test_server_ignoring_range_after_a_drop(server: _Server, tmp_path: Path) -> None:
    server.state.ignore_range = True
    server.state.drop_first_get.add(REVIEWS)
    (path,) = _get(server, tmp_path, what=["reviews"])
    assert path.read_bytes() == server.state.files[REVIEWS]


def test_no_final_file_while_incomplete(server: _Server, tmp_path: Path) -> None:
    server.state.drop_always.add(REVIEWS)
    n = len(server.state.files[REVIEWS])
    dest = tmp_path / "All_Beauty.jsonl.gz"
    with pytest.raises(DownloadError) as err:
        _get(server, tmp_path, what=["reviews"])
    msg = str(err.value)
    assert "\n" not in msg and server.base_url + REVIEWS in msg and "resume" in msg
    assert not dest.exists()
    assert part_path(dest).read_bytes() == server.state.files[REVIEWS][: n // 2]
    # the first GET brought half the file, then RETRIES + 1 attempts brought nothing
    assert len(server.state.ranges(REVIEWS)) == 1 + dl.RETRIES + 1

    # the server recovers: a later run finishes from the part file
    server.state.drop_always.clear()
    server.state.requests.clear()
    _get(server, tmp_path, what=["reviews"])
    assert server.state.ranges(REVIEWS) == [f"bytes={n // 2}-"]
    assert dest.read_bytes() == server.state.files[REVIEWS]


def test_file_changed_between_attempts(server: _Server, tmp_path: Path) -> None:
    def grow(st: _State, path: str, n_get: int) -> None:
        if n_get == 1:
            st.files[path] += b"more"

    server.state.drop_first_get.add(META)
    server.state.on_get = grow
    with pytest.raises(DownloadError, match="changed size") as err:
        _get(server, tmp_path, what=["meta"])
    assert "\n" not in str(err.value)
    assert not (tmp_path / "meta_All_Beauty.jsonl.gz").exists()


def test_size_mismatch_is_an_error_and_keeps_the_part(server: _Server, tmp_path: Path) -> None:
    server.state.lie_total.add(META)
    dest = tmp_path / "meta_All_Beauty.jsonl.gz"
    with pytest.raises(DownloadError, match="size mismatch") as err:
        _get(server, tmp_path, what=["meta"])
    assert "\n" not in str(err.value)
    assert not dest.exists()
    assert part_path(dest).read_bytes() == server.state.files[META]


def test_existing_complete_file_is_skipped(
    server: _Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _get(server, tmp_path)
    dest = tmp_path / "All_Beauty.jsonl.gz"
    stamp = dest.stat().st_mtime_ns
    server.state.requests.clear()
    assert _get(server, tmp_path, progress=True)[0] == dest
    assert [m for m, _p, _r in server.state.requests] == ["HEAD", "HEAD"]
    assert dest.stat().st_mtime_ns == stamp
    assert "already complete" in capsys.readouterr().err


def test_existing_file_of_the_wrong_size_is_replaced(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "meta_All_Beauty.jsonl.gz"
    dest.write_bytes(b"stale")
    _get(server, tmp_path, what=["meta"])
    assert dest.read_bytes() == server.state.files[META]
    # the right size but not gzip (a same-size file of anything): fetched again, not skipped
    dest.write_bytes(bytes(len(server.state.files[META])))
    _get(server, tmp_path, what=["meta"])
    assert dest.read_bytes() == server.state.files[META]


def test_connection_refused_is_one_line_with_the_url(closed_port: int, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{closed_port}/"
    with pytest.raises(DownloadError) as err:
        download_category("All_Beauty", tmp_path, base_url=base, progress=False, timeout=5)
    msg = str(err.value)
    assert msg.startswith(f"cannot reach {base}{REVIEWS}: ")
    assert "offline" in msg and "--base-url" in msg and "\n" not in msg
    assert not list(tmp_path.iterdir())


def test_giving_up_before_any_byte_claims_no_part_file(server: _Server, tmp_path: Path) -> None:
    def no_answer(_state: _State, _path: str, _n: int) -> None:
        raise ConnectionAbortedError("the server closes without answering")

    server.state.on_get = no_answer
    with pytest.raises(DownloadError) as err:
        _get(server, tmp_path, what=["reviews"])
    msg = str(err.value)
    assert "giving up" in msg and "no bytes received" in msg and ".part" not in msg
    assert not list(tmp_path.iterdir())


def test_http_404_is_a_download_error(server: _Server, tmp_path: Path) -> None:
    del server.state.files[META]
    with pytest.raises(DownloadError) as err:
        _get(server, tmp_path)
    assert str(err.value) == f"HTTP 404 Not Found for {server.base_url}{META}"
    # the reviews file came before the failure and is complete
    assert (tmp_path / "All_Beauty.jsonl.gz").read_bytes() == server.state.files[REVIEWS]
    assert not (tmp_path / "meta_All_Beauty.jsonl.gz").exists()


def test_download_file_with_progress_bar(
    server: _Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.state.drop_first_get.add(META)
    dest = tmp_path / "sub" / "m.gz"
    assert download_file(server.base_url + META, dest, progress=True, timeout=5) == dest
    assert dest.read_bytes() == server.state.files[META]
    assert "m.gz" in capsys.readouterr().err


def test_atomic_rename_is_the_only_way_to_the_final_name(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str | Path, dst: str | Path) -> None:
        seen.append((Path(src).name, Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(dl.os, "replace", spy)
    _get(server, tmp_path, what=["meta"])
    assert seen == [("meta_All_Beauty.jsonl.gz.part", "meta_All_Beauty.jsonl.gz")]


# --------------------------------------------------------------------------- CLI


def test_cli_offline_prints_one_error_line(
    closed_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = f"http://127.0.0.1:{closed_port}/"
    argv = ["download", "--category", "All_Beauty", "--output-dir", str(tmp_path)]
    code = main([*argv, "--base-url", base, "--timeout", "5"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"deepcart: error: cannot reach {base}{REVIEWS}: ")


def test_cli_bad_category(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["download", "--category", "Beauty", "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepcart: error: --category: ") and "All_Beauty" in err


def test_cli_download(server: _Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["download", "--category", "All_Beauty", "--output-dir", str(tmp_path)]
    assert main([*argv, "--base-url", server.base_url, "--quiet"]) == 0
    out = capsys.readouterr().out
    reviews, meta = tmp_path / "All_Beauty.jsonl.gz", tmp_path / "meta_All_Beauty.jsonl.gz"
    assert out == f"Downloaded {reviews} (300,000 bytes)\nDownloaded {meta} (70,001 bytes)\n"
    assert meta.read_bytes() == server.state.files[META]


@pytest.mark.parametrize("quiet", [True, False])
def test_cli_download_again_says_skipped_not_downloaded(
    server: _Server, tmp_path: Path, capsys: pytest.CaptureFixture[str], quiet: bool
) -> None:
    argv = ["download", "--category", "All_Beauty", "--output-dir", str(tmp_path),
            "--base-url", server.base_url, "--what", "meta"]  # fmt: skip
    assert main([*argv, "--quiet"]) == 0
    capsys.readouterr()
    # --quiet drops the progress bars only, like every command; the result line stays true.
    assert main([*argv, "--quiet"] if quiet else argv) == 0
    out, err = capsys.readouterr()
    meta = tmp_path / "meta_All_Beauty.jsonl.gz"
    assert out == f"{meta} is already complete (70,001 bytes), skipped\n"
    assert err == ""
