"""Benchmark: evaluate the popularity model on 100,000 test users over 50,000 items at K=10.

Writes a canonical reviews Parquet file (long-tailed items, every user with >= 3 ratings), builds
it, then runs `deepcart test --type popular --split random` in a child process and reports wall
time and the child's peak RSS (target: under 2 GB). The random split makes every user with
enough ratings a test user, so 100,000 users are evaluated.

    python benchmarks/evaluate.py --users 100000 --items 50000 --workdir /tmp/bench-eval
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from deepcart.data.build import build_dataset
from deepcart.data.schema import schema_for


def make_reviews(path: Path, n_users: int, n_items: int, mean_per_user: float, seed: int) -> int:
    rng = np.random.default_rng(seed)
    counts = 3 + rng.poisson(mean_per_user - 3, n_users)
    p = np.arange(1, n_items + 1, dtype=np.float64) ** -0.9
    p /= p.sum()
    writer = pq.ParquetWriter(path, schema_for("reviews"))
    total = 0
    for start in range(0, n_users, 20_000):
        users = np.arange(start, min(n_users, start + 20_000))
        c = counts[users]
        u = np.repeat(users, c)
        items = rng.choice(n_items, size=len(u), p=p)
        n = len(u)
        batch = pa.table(
            {
                "user_id": pa.array([f"U{x:09d}" for x in u]),
                "parent_asin": pa.array([f"B{x:09d}" for x in items]),
                "rating": rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], n, p=[0.1, 0.05, 0.08, 0.17, 0.6]),
                "timestamp": rng.integers(1.3e12, 1.69e12, n),
                "title": pa.nulls(n, pa.string()),
                "text": pa.nulls(n, pa.string()),
                "helpful_vote": pa.nulls(n, pa.int32()),
                "verified_purchase": pa.nulls(n, pa.bool_()),
            },
            schema=schema_for("reviews"),
        )
        writer.write_table(batch)
        total += n
    writer.close()
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--per-user", type=float, default=12.0, help="mean ratings per user")
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/deepcart-bench-eval"))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    raw = args.workdir / "reviews.parquet"
    t0 = time.perf_counter()
    n = make_reviews(raw, args.users, args.items, args.per_user, seed=0)
    print(f"wrote {n:,} ratings by {args.users:,} users in {time.perf_counter() - t0:.1f} s")
    data = args.workdir / "data"
    build_dataset(
        reviews_file=raw,
        items_file=None,
        output_dir=data,
        tag="bench",
        min_interactions=1,
        min_ratings=1,
        echo=lambda s: None,
    )
    cmd = [
        sys.executable, "-m", "deepcart", "test", "--data-dir", str(data), "--data-tag", "bench",
        "--type", "popular", "--split", "random", "--top-k", str(args.top_k),
        "--model-dir", str(args.workdir / "models"), "--reports-dir", str(args.workdir / "reports"),
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    print(proc.stdout[-3000:], proc.stderr[-2000:], sep="\n")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"deepcart test: exit {proc.returncode}, wall {wall:.1f} s, peak RSS {peak_mb:,.0f} MB")
    print(f"target: peak RSS < 2048 MB -> {'PASS' if peak_mb < 2048 else 'FAIL'}")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
