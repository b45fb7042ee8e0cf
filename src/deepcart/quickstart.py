"""`deepcart quickstart`: what a newcomer runs first, on the embedded synthetic default.

It synthesizes a small Electronics category in the exact Amazon Reviews 2023 format under
``<workdir>/data/synthetic`` (never touching real downloads in data/raw), builds the tagged
dataset ``quickstart`` under ``<workdir>/data/processed`` and says what to run next.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from deepcart.data.build import BuildReport, build_dataset
from deepcart.data.synth import synthesize


def quickstart(
    *,
    workdir: str | Path = ".",
    users: int = 3000,
    items: int = 1500,
    reviews: int = 40000,
    seed: int = 0,
    tag: str = "quickstart",
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> BuildReport:
    """Synthesize, build, and print the next steps; returns the build report."""
    started = time.perf_counter()
    root = Path(workdir)
    raw_dir = root / "data" / "synthetic"
    data_dir = root / "data" / "processed"
    echo(
        f"[1/2] Synthesizing {reviews:,} Electronics reviews by {users:,} users of "
        f"{items:,} items (seed {seed})..."
    )
    synth = synthesize(
        raw_dir,
        category="Electronics",
        n_users=users,
        n_items=items,
        n_reviews=reviews,
        seed=seed,
        progress=progress,
    )
    echo(synth.summary())
    echo("[2/2] Building the dataset...")
    report = build_dataset(
        reviews_file=synth.reviews_path,
        items_file=synth.meta_path,
        output_dir=data_dir,
        tag=tag,
        min_interactions=5,
        min_ratings=5,
        seed=seed,
        progress=progress,
        echo=echo,
    )
    elapsed = time.perf_counter() - started
    echo("")
    echo(f"Quickstart done in {elapsed:.1f} s. You now have:")
    echo(f"  raw files        {synth.reviews_path}, {synth.meta_path}")
    echo(f"  tagged dataset   {report.paths.root}/ (reviews.parquet, items.parquet, manifest.json)")
    echo("Next:")
    echo(
        f"  deepcart build --reviews-file {synth.reviews_path} --items-file {synth.meta_path} "
        f"--output-dir {data_dir} --tag mine --min-interactions 10 --min-ratings 20"
    )
    echo("  deepcart download --category Electronics --output-dir data/raw   # the real data")
    return report
