"""What the model benchmarks (`models.py`, `neural.py`) share: datasets and the machine load.

The datasets: the synthetic benchmark set (`synthesize` 10,000 users, 5,000 items, 150,000
reviews by default, seed 0, built with min 5/5) and the staged real Amazon sets, built with no
item metadata and min 2 interactions / 2 ratings. A dataset already built under
``<workdir>/processed`` is reused (delete the workdir to rebuild).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from deepcart.data.build import build_dataset
from deepcart.data.synth import synthesize
from deepcart.eval.evaluate import fmt_number as fmt  # noqa: F401 (the benchmarks' formatter)

#: Tag -> reviews file relative to the staged data (../shared/data/amazon).
REAL = {
    "giftcards": "amazon2018_giftcards_5core/Gift_Cards_5.json",
    "fashion": "amazon2018_fashion_5core/AMAZON_FASHION_5.json",
    "music": "amazon2014_digital_music_prefix/reviews_Digital_Music_5.prefix.json",
    "magazine": "amazon2018_magazine_ratings/Magazine_Subscriptions.csv",
    "beauty5": "amazon2023_all_beauty_benchmark/5core/rating_only/All_Beauty.csv",
}
DATASETS = ["synthetic", *REAL]


def add_dataset_args(ap: argparse.ArgumentParser, workdir: str, datasets: list[str]) -> None:
    ap.add_argument("--shared", type=Path, default=Path("../shared/data/amazon"))
    ap.add_argument("--workdir", type=Path, default=Path(workdir))
    ap.add_argument("--synth-users", type=int, default=10_000)
    ap.add_argument("--synth-items", type=int, default=5_000)
    ap.add_argument("--synth-reviews", type=int, default=150_000)
    ap.add_argument(
        "--datasets",
        default=",".join(datasets),
        help=f"comma-separated, of {','.join(DATASETS)}",
    )


def build_datasets(args: argparse.Namespace) -> list[str]:
    """Build the datasets of ``args.datasets`` not built yet under ``<workdir>/processed``;
    return the tags that are there (a missing staged file is skipped with a line)."""
    data = args.workdir / "processed"
    quiet = dict(echo=lambda s: None, progress=False)
    tags = []
    for tag in args.datasets.split(","):
        if tag not in DATASETS:
            raise SystemExit(f"--datasets: unknown {tag!r}; choose from {', '.join(DATASETS)}")
        built = (data / tag / "manifest.json").is_file()
        if tag == "synthetic":
            if not built:
                synth = synthesize(
                    args.workdir / "synthetic",
                    n_users=args.synth_users,
                    n_items=args.synth_items,
                    n_reviews=args.synth_reviews,
                    seed=0,
                    progress=False,
                )
                build_dataset(
                    reviews_file=synth.reviews_path,
                    items_file=synth.meta_path,
                    output_dir=data,
                    tag=tag,
                    min_interactions=5,
                    min_ratings=5,
                    **quiet,
                )
        else:
            path = args.shared / REAL[tag]
            if not path.is_file():
                print(f"skipping {tag}: {path} not found")
                continue
            if not built:
                build_dataset(
                    reviews_file=path,
                    items_file=None,
                    output_dir=data,
                    tag=tag,
                    min_interactions=2,
                    min_ratings=2,
                    **quiet,
                )
        tags.append(tag)
    return tags


def load_average() -> str:
    """The 1, 5 and 15-minute load averages (the machine may be shared: times are noisy)."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())
