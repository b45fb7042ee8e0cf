"""The small datasets the evaluation tests build: power-law popularity, random stars."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepcart.cli import main
from deepcart.data.build import build_dataset
from tests.data.test_build import write_reviews


def power_law_dataset(
    root: Path, *, seed: int, n_users: int, n_items: int, max_ratings: int
) -> Path:
    """Build the dataset ``t`` under ``root / "data"`` and return ``root``: each of ``n_users``
    users rates 4 to ``max_ratings - 1`` different items, drawn with probability proportional to
    1 / popularity rank, 1 to 5 stars at random (one timestamp a second apart per user)."""
    rng = np.random.default_rng(seed)
    p = np.arange(1, n_items + 1, dtype=float) ** -1.0
    p /= p.sum()
    rows = []
    for u in range(n_users):
        items = rng.choice(n_items, size=int(rng.integers(4, max_ratings)), replace=False, p=p)
        for j, i in enumerate(items):
            rows.append((f"u{u:04d}", f"i{i:03d}", int(rng.integers(1, 6)), 10**12 + j * 1000))
    return _build_t(root, rows, min_interactions=3)


def one_user_dataset(root: Path) -> Path:
    """Build the dataset ``t`` under ``root / "data"`` (one user, three items) and return
    ``root``: with ``--split random`` that user's held-out items are known to no training
    rating, so nothing can be scored."""
    rows = [("u0", f"i{i}", 4, 10**12 + i * 1000) for i in range(3)]
    return _build_t(root, rows, min_interactions=1)


def _build_t(root: Path, rows: list[tuple], *, min_interactions: int) -> Path:
    """Build dataset ``t`` of ``rows`` (user, item, stars, ms) under ``root / "data"``."""
    build_dataset(
        reviews_file=write_reviews(root / "r.parquet", rows),
        items_file=None,
        output_dir=root / "data",
        tag="t",
        min_interactions=min_interactions,
        min_ratings=1,
        echo=lambda s: None,
    )
    return root


def run_with_reports_dir_a_file(args: list[str], tmp_path: Path) -> Path:
    """Run the CLI ``args`` (which name ``--reports-dir``) with ``--reports-dir`` pointing at a
    plain file; assert it exits 2 and return that file (the caller reads capsys)."""
    blocker = tmp_path / "reports-file"
    blocker.write_text("x")
    args = list(args)
    args[args.index("--reports-dir") + 1] = str(blocker)
    assert main(args) == 2
    return blocker
