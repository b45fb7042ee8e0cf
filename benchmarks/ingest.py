"""Benchmark `deepcart ingest` on a synthetic Electronics.jsonl.gz of at least 1 GB of JSON.

Measures, in one run, on the same file:

1. ``gzip -dc FILE > /dev/null``: the decompression floor (wall time);
2. ``ingest_file(FILE)`` in a child process: wall time and peak RSS (``ru_maxrss`` of the child);
3. ``pandas.read_json(FILE, lines=True, chunksize=100_000)`` iterated to the end: the naive way
   (``--pandas-fraction`` times only the first part of the file and extrapolates, and says so).

It prints the throughput of each in MB/s of uncompressed JSON, the ratios against the targets
(ingest >= 0.5x the gzip floor, >= 10x pandas) and the peak RSS (target < 1.5 GB), and where
ingest's time went (``IngestReport.stages``: the reader, scanner and writer threads' CPU time,
the writer's and the parsing thread's busy time).

Example::

    python benchmarks/ingest.py --target-gb 1.0 --workdir /tmp/deepcart-bench

The synthetic file is made by :func:`deepcart.data.synth.synthesize` and kept in ``--workdir`` for
the next run (delete it, or pass ``--fresh``, to make a new one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

BYTES_PER_REVIEW = 465  # a synthetic 2023 review line is ~475 bytes: err on the large side
MB = 1e6

_CHILD = """
import json, resource, sys, time
from deepcart.data.ingest import ingest_file
def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime
c0, t0 = cpu(), time.perf_counter()
report = ingest_file(sys.argv[1], sys.argv[2], progress=False)
seconds, cpu_s = time.perf_counter() - t0, cpu() - c0
print(json.dumps({"seconds": seconds, "cpu": cpu_s, "summary": report.summary(),
                  "lines": report.lines_read, "rows": report.rows_written,
                  "stages": report.stages}))
"""


def _synthesize(workdir: Path, n_reviews: int, fresh: bool) -> Path:
    from deepcart.data.synth import synthesize

    target = workdir / "synth"
    marker = target / "n_reviews.txt"
    path = target / "Electronics.jsonl.gz"
    if not fresh and path.exists() and marker.exists() and marker.read_text() == str(n_reviews):
        print(f"reusing {path} ({n_reviews:,} reviews)")
        return path
    shutil.rmtree(target, ignore_errors=True)
    n_users = max(1000, n_reviews // 12)
    n_items = max(500, n_reviews // 40)
    print(f"synthesizing {n_reviews:,} reviews ({n_users:,} users, {n_items:,} items) ...")
    t0 = time.perf_counter()
    res = synthesize(
        target, n_users=n_users, n_items=n_items, n_reviews=n_reviews, seed=0, progress=False
    )
    print(f"  {res.summary()} in {time.perf_counter() - t0:.1f} s")
    marker.write_text(str(n_reviews))
    return res.reviews_path


def _inflated_size(path: Path) -> int:
    size = 0
    d = zlib.decompressobj(31)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            while chunk:
                size += len(d.decompress(chunk, 1 << 26))
                chunk = d.unconsumed_tail
                if d.eof:
                    chunk, d = d.unused_data + chunk, zlib.decompressobj(31)
    return size


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _gzip_floor(path: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``gzip -dc FILE > /dev/null``."""
    cpu0, t0 = _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    with open(os.devnull, "wb") as sink:
        subprocess.run(["gzip", "-dc", str(path)], stdout=sink, check=True)
    return time.perf_counter() - t0, _cpu(resource.RUSAGE_CHILDREN) - cpu0


def _ingest(path: Path, out: Path) -> tuple[dict, float, int]:
    """(the child's figures, child wall seconds, peak RSS bytes of any child so far)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    # the largest RSS of any waited-for child: the gzip runs (tiny) and the ingest runs
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall, peak_kb * 1024


def _pandas(path: Path, total_lines: int, fraction: float) -> tuple[float, float, int, bool]:
    import pandas as pd

    limit = total_lines if fraction >= 1 else max(1, int(total_lines * fraction))
    lines = 0
    cpu0, t0 = _cpu(resource.RUSAGE_SELF), time.perf_counter()
    with pd.read_json(path, lines=True, chunksize=100_000, compression="gzip") as reader:
        for chunk in reader:
            lines += len(chunk)
            if lines >= limit:
                break
    seconds = time.perf_counter() - t0
    partial = lines < total_lines
    return seconds, _cpu(resource.RUSAGE_SELF) - cpu0, lines, partial


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--reviews", type=int, help="number of synthetic reviews")
    size.add_argument(
        "--target-gb", type=float, default=1.0, help="uncompressed JSON size to synthesize (GB)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path("bench-work"), help="where the files go"
    )
    parser.add_argument(
        "--pandas-fraction",
        type=float,
        default=1.0,
        help="time pandas on this fraction of the lines only and extrapolate (0 < f <= 1)",
    )
    parser.add_argument("--skip-pandas", action="store_true", help="do not run pandas at all")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run gzip and ingest this many times, interleaved, and keep the fastest of each "
        "(useful on a shared machine)",
    )
    parser.add_argument("--fresh", action="store_true", help="synthesize a new file")
    args = parser.parse_args(argv)
    if not 0 < args.pandas_fraction <= 1:
        parser.error("--pandas-fraction must be in (0, 1]")

    n_reviews = args.reviews or int(args.target_gb * 1e9 / BYTES_PER_REVIEW) + 1
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = _synthesize(args.workdir, n_reviews, args.fresh)
    raw = _inflated_size(path)
    packed = path.stat().st_size
    cpus = os.cpu_count()
    print(
        f"\nfile: {path} ({packed / MB:,.0f} MB gzip, {raw / MB:,.0f} MB JSON, "
        f"{n_reviews:,} reviews)"
    )
    print(f"machine: {platform.machine()}, {cpus} CPUs, Python {platform.python_version()}")

    if raw < args.target_gb * 1e9 and not args.reviews:
        print(f"warning: only {raw / 1e9:.2f} GB of JSON; raise --target-gb")
    floors, ingests = [], []
    for _ in range(max(1, args.repeat)):
        floors.append(_gzip_floor(path))
        ingests.append(_ingest(path, args.workdir / "ingested"))
    floor, floor_cpu = min(floors)
    result, wall, peak = min(ingests, key=lambda r: r[0]["seconds"])
    peak = max(r[2] for r in ingests)
    ingest_s, ingest_cpu = result["seconds"], result["cpu"]
    mbs = raw / MB
    print(f"\n{'step':<34}{'wall s':>8}{'MB/s':>8}{'CPU s':>8}")
    print(f"{'gzip -dc > /dev/null':<34}{floor:>8.2f}{mbs / floor:>8.1f}{floor_cpu:>8.2f}")
    print(f"{'deepcart ingest_file':<34}{ingest_s:>8.2f}{mbs / ingest_s:>8.1f}{ingest_cpu:>8.2f}")
    print(f"  (child process incl. interpreter start and imports: {wall:.2f} s wall)")
    print(f"  {result['summary']}")
    st = result["stages"]
    print(
        f"  stages: reader {st['read_cpu']:.2f} CPU s (inflate, cut blocks), scanner "
        f"{st['scan_cpu']:.2f}, writer {st['write_cpu']:.2f} ({st['write_busy']:.2f} s busy), "
        f"main thread parsing {st['parse_busy']:.2f} s busy; the rest of the CPU time is "
        "PyArrow's threads"
    )
    if args.repeat > 1:
        print(f"  (fastest of {args.repeat} interleaved runs each)")

    pandas_s = None
    if not args.skip_pandas:
        seconds, cpu, lines, partial = _pandas(path, result["lines"], args.pandas_fraction)
        scale = result["lines"] / lines
        pandas_s = seconds * scale
        label = "pandas read_json(chunksize=100k)"
        print(f"{label:<34}{pandas_s:>8.2f}{mbs / pandas_s:>8.1f}{cpu * scale:>8.2f}")
        if partial:
            print(
                f"  (pandas timed on the first {lines:,} of {result['lines']:,} lines, "
                f"{seconds:.2f} s, and extrapolated linearly)"
            )

    vs_floor = floor / ingest_s
    print("\ntargets")
    print(
        f"  ingest vs gzip floor: {vs_floor:.2f}x the gzip -dc throughput "
        f"(target >= 0.5) {'MET' if vs_floor >= 0.5 else 'MISSED'}"
    )
    if pandas_s is not None:
        speedup = pandas_s / ingest_s
        print(
            f"  ingest vs pandas:     {speedup:.1f}x faster "
            f"(target >= 10) {'MET' if speedup >= 10 else 'MISSED'}"
        )
    print(
        f"  ingest peak RSS:      {peak / 1e9:.2f} GB "
        f"(target < 1.5 GB) {'MET' if peak < 1.5e9 else 'MISSED'}"
    )
    load = os.getloadavg()
    print(f"\nload average while running: {load[0]:.1f} (1 min) on {cpus} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
