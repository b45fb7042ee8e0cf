"""Shared fixtures: where the staged real Amazon data lives, and small canonical datasets."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_AMAZON = REPO.parent / "shared" / "data" / "amazon"


@pytest.fixture(autouse=True)
def tensorboard_logs_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The neural models' default TensorBoard log root (``log_dir="runs"``, under the current
    directory) is ``<tmp_path>/runs`` in tests, so that pytest leaves no runs/ behind wherever
    it was started (``deepcart test --type all`` trains them too). Returns that directory."""
    from deepcart.models import neural  # imports torch lazily: this works without it

    runs = tmp_path / "runs"
    monkeypatch.setitem(neural.SHARED_DEFAULTS, "log_dir", str(runs))
    return runs


@pytest.fixture(scope="session")
def amazon_dir() -> Path:
    """The staged real Amazon data (../shared/data/amazon); tests using it skip without it."""
    if not SHARED_AMAZON.is_dir():
        pytest.skip(f"real Amazon data not staged at {SHARED_AMAZON} (a fresh clone has none)")
    return SHARED_AMAZON


#: How the browser tests start Debian's chromium as root (headless, no sandbox, nothing fetched
#: in the background).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]  # fmt: skip


@pytest.fixture(scope="session")
def chromium() -> dict[str, Any]:
    """Playwright launch options for Debian's chromium (through its executable_path; never
    ``playwright install``: it downloads); tests using it skip, saying what is missing."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("chromium is not on PATH (install it with scripts/setup-test-deps.sh)")
    return {"executable_path": exe, "headless": True, "args": CHROMIUM_ARGS}
