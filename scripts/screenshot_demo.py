"""Take the README's screenshot of the web demo (docs/demo.png).

Builds the quickstart data in a work folder (``deepcart quickstart --no-deploy``), starts
``deepcart deploy`` on it, and drives Debian's chromium with Playwright like a visitor: rate two
products, switch to worst mode, open a product with its scathing review. Requests to other hosts
are blocked, so the picture is the same with or without network (product images show the local
placeholder; the synthetic catalog's image URLs do not exist anyway).

    .venv/bin/python scripts/screenshot_demo.py [--out docs/demo.png] [--workdir DIR]

Needs the 'serve' and 'dev' extras and chromium on PATH (scripts/setup-test-deps.sh).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _deepcart(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "deepcart", *args], text=True, **kwargs)


def _start_demo(workdir: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    proc = _deepcart(
        "deploy", "--data-dir", str(workdir / "data" / "processed"), "--data-tag", "quickstart",
        "--model-dir", str(workdir / "models"), "--port", str(port),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.search(r"DeepCart demo: (http://\S+) ", line)
        if found:
            base = found.group(1)
            break
    else:
        raise SystemExit(f"deepcart deploy exited with code {proc.wait()}")
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(base + "/health", timeout=2).raise_for_status()
            return proc, base
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit(f"{base} did not answer in 60 s") from None
            time.sleep(0.2)


def _shoot(base: str, out: Path, profile: Path) -> None:
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium")
    if exe is None:
        raise SystemExit("chromium is not on PATH (install it with scripts/setup-test-deps.sh)")

    def route(r) -> None:  # noqa: ANN001
        if urlsplit(r.request.url).hostname == "127.0.0.1":
            r.continue_()
        else:
            r.abort()

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=exe,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            context.route("**/*", route)
            page = context.new_page()
            page.goto(base + "/")
            page.wait_for_selector('#gallery[data-state="ready"]')
            cards = "#gallery .card-button"
            for nth, stars in ((0, 5), (3, 4)):
                page.locator(cards).nth(nth).click()
                page.wait_for_selector("#details:not([hidden])")
                page.click(f'#stars .star[data-stars="{stars}"]')
                page.wait_for_selector(f"#rated li:nth-child({1 if nth == 0 else 2})")
            page.click("#mode-worst")
            page.wait_for_selector('#gallery[data-state="ready"][data-mode="worst"]')
            page.locator(f"{cards}:has(.card-worst)").first.click()
            page.wait_for_selector("#worst-review:not([hidden])")
            page.wait_for_function(
                "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
            )
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out))
        finally:
            context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "demo.png")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="deepcart-demo-") as tmp:
        workdir = args.workdir or Path(tmp)
        code = _deepcart(
            "quickstart", "--workdir", str(workdir), "--no-deploy", "--quiet",
            stdout=subprocess.DEVNULL,
        ).wait()  # fmt: skip
        if code != 0:
            raise SystemExit(f"deepcart quickstart failed with code {code}")
        proc, base = _start_demo(workdir, _free_port())
        try:
            _shoot(base, args.out, Path(tmp) / "profile")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    print(f"Wrote {args.out} ({os.path.getsize(args.out) / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
