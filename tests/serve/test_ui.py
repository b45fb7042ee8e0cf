"""The web demo's wiring (TestClient): the page and its files with their headers, nothing from
another host, the item details it shows; and ``--share``'s offline path against real ssh."""

from __future__ import annotations

import re
import shutil
import socket
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from deepcart.cli import main
from deepcart.serve.share import DEFAULT_SERVER, SERVER_ENV, ShareTunnel, public_url, ssh_command
from deepcart.serve.ui import CSP, FILES, UI_DIR

from .conftest import TAG, World


def test_page_is_served_with_its_policy(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/ui/app.js"></script>' in r.text
    assert client.head("/").status_code == 200
    policy = dict(p.strip().split(" ", 1) for p in CSP.split(";"))
    assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'"
    assert policy["img-src"] == "'self' https: http:" and policy["connect-src"] == "'self'"


@pytest.mark.parametrize(
    ("name", "kind"),
    [("app.js", "text/javascript"), ("app.css", "text/css"), ("placeholder.svg", "image/svg+xml"),
     ("index.html", "text/html")],
)  # fmt: skip
def test_static_files(client: TestClient, name: str, kind: str) -> None:
    r = client.get(f"/ui/{name}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(kind)
    assert r.headers["content-security-policy"] == CSP
    assert r.content == (UI_DIR / name).read_bytes()


@pytest.mark.parametrize("path", ["/ui/__init__.py", "/ui/nope.js", "/ui/../api.py", "/ui/"])
def test_only_the_page_files_are_served(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_page_is_left_out_of_the_api_spec(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/ui") for p in paths)


def test_page_asks_nothing_of_another_host() -> None:
    """Every reference in the page's files is to this server: no CDN, font or script host."""
    html = (UI_DIR / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    refs = [r for r in refs if not r.startswith("#")]  # a link within the page (skip link)
    assert refs and all(r.startswith("/") and not r.startswith("//") for r in refs), refs
    for name in ("app.js", "app.css"):
        text = (UI_DIR / name).read_text()
        assert not re.search(r"https?://", text), name
        assert "@import" not in text and "url(" not in text, name
    js = (UI_DIR / "app.js").read_text()
    assert "innerHTML" not in js  # product and review text never becomes markup
    assert set(FILES) <= {p.name for p in UI_DIR.iterdir()}


def test_item_details_carry_features_and_description(client: TestClient, world: World) -> None:
    detail = client.get(f"/items/{world.items[0]}").json()
    assert isinstance(detail["features"], list) and isinstance(detail["description"], list)
    assert detail["features"] and all(isinstance(f, str) and f for f in detail["features"])
    assert sum(map(len, detail["features"])) <= 2000


# ------------------------------------------------------------------------------ --share


def test_public_url_parsing() -> None:
    lhr = "abc123def.lhr.life tunneled with tls termination, https://abc123def.lhr.life"
    assert public_url(lhr) == "https://abc123def.lhr.life"
    serveo = "Forwarding HTTP traffic from https://xyz.serveo.net"
    assert public_url(serveo) == "https://xyz.serveo.net"
    assert public_url("Visit https://admin.localhost.run/ to get a custom domain tunnel") is None
    assert public_url("Welcome! see https://localhost.run/docs/") is None
    assert public_url("https://abc.lhr.life") is None  # not an announcement
    cmd = ssh_command("/usr/bin/ssh", 7860, DEFAULT_SERVER)
    assert cmd[-3:] == ["-R", "80:127.0.0.1:7860", "nokey@localhost.run"]
    assert "BatchMode=yes" in cmd


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is


def _ssh() -> str:
    if shutil.which("ssh") is None:
        pytest.skip("no ssh client on PATH (the OpenSSH client opens the --share tunnel)")
    return "ssh"


def test_share_without_a_relay_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _ssh()
    port = _closed_port()
    monkeypatch.setenv(SERVER_ENV, f"ssh://nokey@127.0.0.1:{port}")
    lines: list[str] = []
    tunnel = ShareTunnel(8123, echo=lines.append).start()
    assert tunnel.done.wait(30)
    tunnel.close()
    assert tunnel.url is None and len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("--share: no public link could be made (") and "\n" not in line
    assert f"127.0.0.1:{port}" in line and "refused" in line.lower()
    assert line.endswith("serving locally only at http://127.0.0.1:8123")


def test_share_gives_up_when_no_url_arrives() -> None:
    """A relay that accepts the connection but never answers: one line after the wait."""
    _ssh()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    held: list[socket.socket] = []
    accepting = threading.Thread(target=lambda: held.append(silent.accept()[0]), daemon=True)
    accepting.start()
    lines: list[str] = []
    try:
        server = f"ssh://nokey@127.0.0.1:{silent.getsockname()[1]}"
        tunnel = ShareTunnel(8124, server=server, wait=2.0, echo=lines.append).start()
        assert tunnel.done.wait(30)
        tunnel.close()
    finally:
        for s in held:
            s.close()
        silent.close()
    assert len(lines) == 1 and "within 2 s" in lines[0], lines
    assert tunnel._proc is not None and tunnel._proc.poll() is not None  # ssh was ended


def test_share_without_ssh_says_so() -> None:
    lines: list[str] = []
    tunnel = ShareTunnel(8125, ssh="deepcart-no-such-ssh", echo=lines.append).start()
    assert tunnel.done.wait(10)
    assert len(lines) == 1 and "no ssh client" in lines[0], lines


# ------------------------------------------------------------------------------ the command


def test_deploy_without_a_model_is_one_line(
    tmp_path: Path, world: World, capsys: pytest.CaptureFixture
) -> None:
    code = main(["deploy", "--data-dir", str(world.data_dir), "--data-tag", TAG,
                 "--model-dir", str(tmp_path / "none"), "--port", "0"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "deepcart train" in err and "--split none" in err


def test_deploy_on_a_busy_port_is_one_line(world: World, capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["deploy", "--data-dir", str(world.data_dir), "--data-tag", TAG,
                     "--model-dir", str(world.model_dir), "--port", str(port)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in err
