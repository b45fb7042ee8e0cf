"""`deepcart deploy` and `deepcart quickstart` as real processes: the URL is printed, the page
and the API answer on it, ``--share`` without network is one line and the demo keeps serving."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from deepcart.serve.share import SERVER_ENV
from deepcart.serve.ui import CSP

from .conftest import TAG, World
from .demo_process import DemoProcess, free_port

URL = r"DeepCart demo: (http://127\.0\.0\.1:\d+) "


@pytest.mark.slow
def test_quickstart_ends_by_serving_the_demo(tmp_path: Path) -> None:
    port = free_port()
    demo = DemoProcess(
        "quickstart", "--workdir", str(tmp_path), "--users", "300", "--items", "120",
        "--reviews", "3000", "--quiet", "--port", str(port),
    )  # fmt: skip
    try:
        base = demo.wait_for(URL, timeout=300).group(1)
        assert base == f"http://127.0.0.1:{port}"
        demo.wait_up(base)
        page = httpx.get(base + "/", timeout=10)
        assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
        health = httpx.get(base + "/health", timeout=10).json()
        assert health["data_tag"] == "quickstart" and health["modes"] == ["best", "worst"]
        worst = httpx.get(
            f"{base}/users/web-0123456789abcdef/recommendations",
            params={"mode": "worst", "k": 5},
            timeout=10,
        )
        assert worst.status_code == 200 and len(worst.json()["items"]) == 5
    finally:
        code = demo.stop()
    out = demo.output()
    assert code == 0, out
    assert "Quickstart done" in out and "deepcart deploy --data-dir" in out
    assert (tmp_path / "models" / "quickstart" / "none" / "als-worst").is_dir()


def test_deploy_share_offline_is_one_line_and_keeps_serving(world: World, tmp_path: Path) -> None:
    if shutil.which("ssh") is None:
        pytest.skip("no ssh client on PATH (the OpenSSH client opens the --share tunnel)")
    closed = free_port()  # nothing listens there: the relay is unreachable
    port = free_port()
    demo = DemoProcess(
        "deploy", "--data-dir", str(world.data_dir), "--data-tag", TAG,
        "--model-dir", str(world.model_dir), "--port", str(port),
        "--db-url", f"sqlite:///{tmp_path / 'reviews.db'}", "--share",
        env={SERVER_ENV: f"ssh://nokey@127.0.0.1:{closed}"},
    )  # fmt: skip
    try:
        base = demo.wait_for(URL).group(1)
        line = demo.wait_for(r"^--share: ", timeout=60).string
        assert line.startswith("--share: no public link could be made (")
        assert line.endswith(f"serving locally only at http://127.0.0.1:{port}")
        demo.wait_up(base)
        assert httpx.get(base + "/", timeout=10).status_code == 200
        r = httpx.post(
            f"{base}/users/web-00000000000000aa/reviews",
            json={"parent_asin": world.items[0], "rating": 4},
            timeout=10,
        )
        assert r.status_code == 201, r.text
    finally:
        code = demo.stop()
    out = demo.output()
    assert code == 0, out
    assert sum("--share" in x for x in demo.lines) == 1, out
    assert "Traceback" not in out
