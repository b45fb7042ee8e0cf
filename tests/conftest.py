"""Shared fixtures: where the staged real Amazon data lives, and small canonical datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_AMAZON = REPO.parent / "shared" / "data" / "amazon"


@pytest.fixture(scope="session")
def amazon_dir() -> Path:
    """The staged real Amazon data (../shared/data/amazon); tests using it skip without it."""
    if not SHARED_AMAZON.is_dir():
        pytest.skip(f"real Amazon data not staged at {SHARED_AMAZON} (a fresh clone has none)")
    return SHARED_AMAZON
