"""Benchmark `deepcart build` on DuckDB and on Spark local mode at Electronics scale.

Steps (each reused from ``--workdir`` on the next run with the same size, unless ``--fresh``):

1. synthesize a category with ``--reviews`` reviews (default 20M) and the users and items of
   Amazon Reviews 2023 Electronics in proportion (18.3M users and 1.6M items for 43.9M ratings:
   most users write one or two reviews, as in the real file);
2. ingest both files once (``ingest_file``, in this process; the time is reported);
3. build the same dataset (``--min-interactions``/``--min-ratings``, default the 5-core rule
   without iteration; ``--k-core`` to iterate) with each engine in a child process, measuring
   its wall time and its peak memory: the sum of the RSS of the child's whole process tree
   (for Spark: the Python driver and the JVM that holds the executors in local mode), sampled
   every 0.1 s from /proc (helpers forked by the JVM that have not exec'd share its memory and
   are not counted), and the largest single-process high-water mark (``VmHWM``; for Spark, the
   JVM);
4. check that both engines wrote identical reviews and items (compared in slices) and counts.

For Spark it also reports, from the child's debug log, the time of Spark's sort into staged part
files and of the driver's sequential combine of the parts into the single ``reviews.parquet``
(with its rate in reviews/s and MB/s of output): the one step that does not scale out.

Prints one table and writes ``<workdir>/scale-<reviews>.json`` (``scale-<reviews>-<engine>.json``
when ``--engines`` names one engine; the parity check then uses the other engine's output left in
the workdir by an earlier run, if any). Example::

    python benchmarks/scale.py --reviews 2000000 --workdir /tmp/deepcart-scale
    python benchmarks/scale.py --reviews 20000000 --workdir /tmp/deepcart-scale
    python benchmarks/scale.py --reviews 20000000 --engines spark  # Spark again, same input

Spark runs with ``--spark-master`` (default ``local[*]``) and DeepCart's local-mode defaults
(driver heap half the machine's memory); DuckDB with its defaults (80% of memory, every core).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

# Amazon Reviews 2023, Electronics: 43.9M ratings by 18.3M users of 1.6M items.
USERS_PER_REVIEW = 18.3 / 43.9
ITEMS_PER_REVIEW = 1.6 / 43.9
MB = 1 << 20

# The child logs DeepCart's diagnostics (debug level; not py4j's or DuckDB's) to its stderr,
# which _measure saves as build-<engine>.log: the Spark engine's per-phase times come from there.
_CHILD = """
import json, logging, sys, time
from deepcart.data.build import build_dataset
handler = logging.StreamHandler(sys.stderr)
handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
logging.getLogger("deepcart").addHandler(handler)
logging.getLogger("deepcart").setLevel(logging.DEBUG)
a = json.loads(sys.argv[1])
t0 = time.perf_counter()
rep = build_dataset(reviews_file=a["reviews"], items_file=a["items"], output_dir=a["out"],
                    tag="bench", min_interactions=a["mi"], min_ratings=a["mr"],
                    k_core=a["k_core"], progress=False, engine=a["engine"],
                    spark_master=a["master"], echo=lambda s: print(s, file=sys.stderr))
print("RESULT " + json.dumps({"seconds": time.perf_counter() - t0, "counts": rep.counts}))
"""


# Debug lines of deepcart.data.engine_spark._write: Spark's sort into staged part files, then the
# driver's sequential combine of the parts into the single output file.
_STAGED = re.compile(r"spark build: (\w+) sorted and staged in ([0-9.]+) s")
_COMBINED = re.compile(r"spark build: (\w+) combined \((\d+) parts\) in ([0-9.]+) s")


def _spark_phases(log: Path) -> dict[str, dict[str, float]]:
    """Per output (``reviews``, ``items``): ``staged_seconds``, ``combined_seconds`` and
    ``parts``, parsed from the build log (empty for DuckDB, or if the log lines change)."""
    phases: dict[str, dict[str, float]] = {}
    text = log.read_text(errors="replace")
    for kind, secs in _STAGED.findall(text):
        phases.setdefault(kind, {})["staged_seconds"] = float(secs)
    for kind, parts, secs in _COMBINED.findall(text):
        phases.setdefault(kind, {}).update(parts=int(parts), combined_seconds=float(secs))
    return phases


def _tree(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc/<pid>/stat)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _forked_not_exec(pid: int) -> bool:
    """Whether ``pid`` was forked and has not exec'd yet (PF_FORKNOEXEC): the JVM's short-lived
    helper children (vfork/posix_spawn) share the JVM's memory until they exec; counting them
    would count the JVM twice."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            flags = int(fh.read().rsplit(")", 1)[1].split()[6])
    except (OSError, ValueError, IndexError):
        return True
    return bool(flags & 0x40)


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _measure(cmd: list[str], log: Path) -> dict:
    """Run ``cmd``; its wall time, sampled peak tree RSS, per-process VmHWM, and its JSON line."""
    started = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        peak_tree, hwm, names = 0, {}, {}
        while proc.poll() is None:
            pids = _tree(proc.pid)
            rss = 0
            for pid in pids:
                if _forked_not_exec(pid):
                    continue
                rss += _status_kb(pid, "VmRSS")
                hwm[pid] = max(hwm.get(pid, 0), _status_kb(pid, "VmHWM"))
                try:  # read every time: spark-class is a shell script that execs java
                    names[pid] = Path(f"/proc/{pid}/comm").read_text().strip()
                except OSError:
                    names.setdefault(pid, "?")
            peak_tree = max(peak_tree, rss)
            time.sleep(0.1)
        out = proc.stdout.read() if proc.stdout else ""
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed (exit {proc.returncode}); see {log}")
    found = re.findall(r"RESULT (\{.*\})", out)  # DuckDB may draw a progress bar before it
    if not found:
        raise SystemExit(f"{cmd[:3]} printed no result; its output: {out[-2000:]!r}")
    result = json.loads(found[-1])
    result.update(
        wall_seconds=wall,
        peak_tree_rss_mb=peak_tree / 1024,
        max_process_hwm_mb=max(hwm.values(), default=0) / 1024,
        processes_hwm_mb={f"{names[p]}[{p}]": v / 1024 for p, v in hwm.items() if v > 10240},
    )
    return result


def _slices(path: Path, rows: int):
    """The table at ``path`` as consecutive tables of ``rows`` rows (bounded memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pending: list = []
    n = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
        pending.append(batch)
        n += batch.num_rows
        while n >= rows:
            t = pa.Table.from_batches(pending).combine_chunks()
            yield t.slice(0, rows)
            rest = t.slice(rows)
            pending, n = rest.to_batches(), rest.num_rows
    if n:
        yield pa.Table.from_batches(pending)


def _same_file(a: Path, b: Path, rows: int = 250_000) -> bool:
    import pyarrow.parquet as pq

    if pq.read_schema(a) != pq.read_schema(b):
        return False
    if pq.ParquetFile(a).metadata.num_rows != pq.ParquetFile(b).metadata.num_rows:
        return False
    return all(x.equals(y) for x, y in zip(_slices(a, rows), _slices(b, rows), strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reviews", type=int, default=20_000_000, help="synthetic reviews")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/deepcart-scale"))
    ap.add_argument("--engines", nargs="+", default=["duckdb", "spark"])
    ap.add_argument("--spark-master", default="local[*]")
    ap.add_argument("--min-interactions", type=int, default=5)
    ap.add_argument("--min-ratings", type=int, default=5)
    ap.add_argument("--k-core", action="store_true", help="iterate the filters (k-core)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fresh", action="store_true", help="synthesize and ingest again")
    args = ap.parse_args()

    from deepcart.data.ingest import ingest_file
    from deepcart.data.synth import synthesize

    n = args.reviews
    work = args.workdir / f"electronics-{n}"
    raw, ing = work / "raw", work / "ingested"
    stamp = work / "ready.json"
    free = shutil.disk_usage(args.workdir.parent if not args.workdir.exists() else args.workdir)
    print(
        f"disk free at {args.workdir}: {free.free / 1e9:.0f} GB; this size needs about "
        f"{n * 160 / 1e9 * 1.6:.1f} GB (raw gzip + Parquet + two datasets)"
    )
    if args.fresh or not stamp.exists():
        shutil.rmtree(work, ignore_errors=True)
        n_users = max(1, round(n * USERS_PER_REVIEW))
        n_items = max(1, round(n * ITEMS_PER_REVIEW))
        t0 = time.perf_counter()
        res = synthesize(
            raw, n_users=n_users, n_items=n_items, n_reviews=n, seed=args.seed, progress=False
        )
        synth_s = time.perf_counter() - t0
        print(res.summary())
        t0 = time.perf_counter()
        reports = [ingest_file(p, ing) for p in (res.reviews_path, res.meta_path)]
        ingest_s = time.perf_counter() - t0
        for r in reports:
            print(r.summary())
        stamp.write_text(
            json.dumps(
                {
                    "n_reviews": n,
                    "n_users": n_users,
                    "n_items": n_items,
                    "synth_seconds": synth_s,
                    "ingest_seconds": ingest_s,
                    "raw_bytes": sum(p.stat().st_size for p in raw.iterdir()),
                    "reviews": str(reports[0].output),
                    "items": str(reports[1].output),
                }
            )
        )
    data = json.loads(stamp.read_text())
    print(
        f"data: {n:,} reviews, {data['n_users']:,} users, {data['n_items']:,} items; "
        f"synthesized in {data['synth_seconds']:.0f} s, ingested in {data['ingest_seconds']:.0f} s "
        f"(both files, one process); reviews Parquet "
        f"{Path(data['reviews']).stat().st_size / MB:,.0f} MB"
    )

    results = {}
    for engine in args.engines:
        out = work / f"out-{engine}"
        shutil.rmtree(out, ignore_errors=True)
        child_args = {
            "reviews": data["reviews"],
            "items": data["items"],
            "out": str(out),
            "mi": args.min_interactions,
            "mr": args.min_ratings,
            "k_core": args.k_core,
            "engine": engine,
            "master": args.spark_master,
        }
        print(f"building with {engine}...", flush=True)
        cmd = [sys.executable, "-c", _CHILD, json.dumps(child_args)]
        log = work / f"build-{engine}.log"
        results[engine] = r = _measure(cmd, log)
        r["output_mb"] = {f.stem: f.stat().st_size / MB for f in (out / "bench").glob("*.parquet")}
        print(
            f"  {engine}: {r['wall_seconds']:.1f} s wall ({r['seconds']:.1f} s in build_dataset), "
            f"peak tree RSS {r['peak_tree_rss_mb']:,.0f} MB, largest process "
            f"{r['max_process_hwm_mb']:,.0f} MB; wrote {r['counts']['reviews_written']:,} reviews",
            flush=True,
        )
        if engine == "spark":
            r["phases"] = _spark_phases(log)
            rev = r["phases"].get("reviews", {})
            if rev.get("combined_seconds"):  # the driver's sequential pass: its rate sizes a run
                secs = rev["combined_seconds"]
                r["combine_reviews_per_second"] = r["counts"]["reviews_written"] / secs
                r["combine_output_mb_per_second"] = r["output_mb"]["reviews"] / secs
                print(
                    f"  spark: reviews staged in {rev.get('staged_seconds', 0):.1f} s, combined "
                    f"by the driver ({rev['parts']} parts -> {r['output_mb']['reviews']:,.0f} MB) "
                    f"in {secs:.1f} s: {r['combine_reviews_per_second']:,.0f} reviews/s, "
                    f"{r['combine_output_mb_per_second']:,.1f} MB/s",
                    flush=True,
                )
            else:
                print(f"  spark: no combine time found in {log}", flush=True)

    # Parity of the two outputs: both built now, or one now and the other left in the workdir by
    # an earlier run on the same inputs and parameters (its manifest's counts stand in for its
    # result).
    parity = None
    a, b = work / "out-duckdb" / "bench", work / "out-spark" / "bench"
    manifests = [d / "manifest.json" for d in (a, b)]
    ma, mb = (json.loads(m.read_text()) if m.exists() else None for m in manifests)
    if not results or ma is None or mb is None:
        pass
    elif (ma["params"], ma["inputs"]) != (mb["params"], mb["inputs"]):
        print("parity: not checked (the other engine's output is from other inputs or parameters)")
    else:
        parity = {
            "counts": ma["counts"] == mb["counts"],
            "reviews": _same_file(a / "reviews.parquet", b / "reviews.parquet"),
            "items": _same_file(a / "items.parquet", b / "items.parquet"),
            "built_now": sorted(results),
        }
        print(f"parity (identical rows and counts): {parity}")

    print()
    print(f"{'engine':<8} {'wall s':>8} {'peak tree RSS MB':>17} {'largest process MB':>19}")
    for engine, r in results.items():
        print(
            f"{engine:<8} {r['wall_seconds']:>8.1f} {r['peak_tree_rss_mb']:>17,.0f} "
            f"{r['max_process_hwm_mb']:>19,.0f}"
        )
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_end": os.getloadavg(),
        },
        "data": data,
        "params": vars(args) | {"workdir": str(args.workdir)},
        "results": results,
        "parity": parity,
    }
    both = {"duckdb", "spark"} <= set(results)
    out_json = args.workdir / (f"scale-{n}.json" if both else f"scale-{n}-{'-'.join(results)}.json")
    out_json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {out_json}")


if __name__ == "__main__":
    main()
