"""Benchmark: `deepcart serve` under 32 concurrent clients, driven by wrk from a second process.

Builds the quickstart-sized synthetic dataset in ``--workdir`` (once), trains the production ALS
models (best and worst mode), starts ``deepcart serve`` on 127.0.0.1 (a fresh review database
each run) and runs wrk (``apt-get install -y wrk``) against it, each phase for ``--duration``
seconds with ``--connections`` connections:

1. ``GET /recommendations?users=<random known user>&k=10`` (the cache of unchanged users' lists
   warmed up first; ``--cache-size 0`` on the server measures every request as a fold-in);
2. the fold-in round trip: ``POST /users/<u>/reviews`` then ``GET /recommendations?users=<u>``
   on the same connection (one wrk thread per connection so each keeps its own state), timed
   from sending the POST to receiving the GET with LuaJIT's clock;
3. phase 1 again while ``POST /reload_model`` runs every second: every error counts (non-2xx
   answers, socket errors, wrk's 2 s timeouts).

Prints one JSON object per phase and a Markdown table. Targets (issue): >= 1,000 requests/s
with p99 <= 25 ms for known users; round-trip p99 <= 50 ms; zero errors, also during reloads.

    python benchmarks/serve.py --workdir /tmp/deepcart-bench-serve --duration 15
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq

TAG = "bench"
TOKEN = "bench-token"

GET_LUA = r"""
local users = {}
for line in io.lines("USERS") do users[#users + 1] = line end
local n = 0
function setup(thread) n = n + 1; thread:set("seed", n) end
function init(args) math.randomseed(seed * 7919 + os.time()) end
function request()
  return wrk.format("GET", "/recommendations?users=" .. users[math.random(#users)] .. "&k=10")
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write("RESULT " .. string.format(
    '{"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.2f, "p90_ms": %.2f, ' ..
    '"p99_ms": %.2f, "max_ms": %.2f, "non_2xx": %d, "socket_errors": %d}',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, e.status, e.connect + e.read + e.write + e.timeout) .. "\n")
end
"""

ROUND_TRIP_LUA = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } dc_timespec;
int clock_gettime(int clk_id, dc_timespec *tp);
]]
local ts = ffi.new("dc_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end
local users, items = {}, {}
for line in io.lines("USERS") do users[#users + 1] = line end
for line in io.lines("ITEMS") do items[#items + 1] = line end
local threads, n = {}, 0
function setup(thread) n = n + 1; thread:set("seed", n); table.insert(threads, thread) end
phase, user, t0, bad, rts = 0, nil, 0, 0, {}
function init(args) math.randomseed(seed * 7919 + os.time()) end
function request()
  if phase == 0 then
    user = users[math.random(#users)]
    local body = string.format('{"parent_asin": "%s", "rating": %d}',
                               items[math.random(#items)], math.random(5))
    t0 = now_us()
    return wrk.format("POST", "/users/" .. user .. "/reviews",
                      {["Content-Type"] = "application/json"}, body)
  end
  return wrk.format("GET", "/recommendations?users=" .. user .. "&k=10")
end
function response(status, headers, body)
  if phase == 0 then
    if status ~= 201 then bad = bad + 1 end
    phase = 1
  else
    if status ~= 200 then bad = bad + 1 end
    rts[#rts + 1] = now_us() - t0
    phase = 0
  end
end
function done(summary, latency, requests)
  local all, errors = {}, 0
  for _, t in ipairs(threads) do
    for _, v in ipairs(t:get("rts")) do all[#all + 1] = v end
    errors = errors + t:get("bad")
  end
  table.sort(all)
  local function pct(p) return all[math.max(1, math.ceil(p / 100 * #all))] / 1e3 end
  local e = summary.errors
  io.write("RESULT " .. string.format(
    '{"round_trips": %d, "seconds": %.3f, "round_trips_per_s": %.1f, "requests_per_s": %.1f, ' ..
    '"p50_ms": %.2f, "p90_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f, ' ..
    '"request_p50_ms": %.2f, "request_p99_ms": %.2f, "bad_status": %d, "socket_errors": %d}',
    #all, summary.duration / 1e6, #all / (summary.duration / 1e6),
    summary.requests / (summary.duration / 1e6), pct(50), pct(90), pct(99), all[#all] / 1e3,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, errors,
    e.connect + e.read + e.write + e.timeout) .. "\n")
end
"""


def prepare(workdir: Path, users: int, items: int, reviews: int) -> None:
    """The dataset and both production models (built once per workdir)."""
    from deepcart.data.build import build_dataset
    from deepcart.data.split import SplitParams
    from deepcart.data.synth import synthesize
    from deepcart.training import train_model

    if (workdir / "models" / TAG / "none" / "als-worst" / "model.json").is_file():
        return
    synthesize(workdir / "raw", n_users=users, n_items=items, n_reviews=reviews, progress=False)
    build_dataset(
        reviews_file=workdir / "raw" / "Electronics.jsonl.gz",
        items_file=workdir / "raw" / "meta_Electronics.jsonl.gz",
        output_dir=workdir / "data",
        tag=TAG,
        progress=False,
        echo=lambda s: None,
    )
    for mode in ("best", "worst"):
        train_model(
            data_dir=workdir / "data",
            tag=TAG,
            model_type="als",
            split_params=SplitParams(protocol="none"),
            model_dir=workdir / "models",
            mode=mode,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, workdir: Path, cache_size: int, workers: int = 1) -> None:
        db = workdir / "reviews.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable, "-m", "deepcart", "serve", "--data-dir", str(workdir / "data"),
            "--data-tag", TAG, "--type", "als", "--model-dir", str(workdir / "models"),
            "--port", str(self.port), "--db-url", f"sqlite:///{db}",
            "--cache-size", str(cache_size), "--workers", str(workers),
        ]  # fmt: skip
        env = {**os.environ, "DEEPCART_ADMIN_TOKEN": TOKEN}
        self.proc = subprocess.Popen(cmd, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.3)
        self.stop()
        raise SystemExit("the server did not start in 120 s")

    def cpu_seconds(self) -> float:
        """CPU time of the server process and its children (uvicorn's workers)."""
        total = 0
        pids = [self.proc.pid]
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        if children.is_file():
            pids += [int(p) for p in children.read_text().split()]
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wrk(
    script: Path, base: str, duration: float, connections: int, threads: int
) -> dict[str, float]:
    cmd = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{round(duration)}s", "--timeout", "2s",
        "-s", str(script), base,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def run_phase(name: str, server: Server, **kwargs: object) -> dict[str, float]:
    cpu = server.cpu_seconds()
    result = wrk(base=server.base, **kwargs)  # type: ignore[arg-type]
    result["server_cpu_s"] = round(server.cpu_seconds() - cpu, 2)
    result["load_avg_1m"] = os.getloadavg()[0]
    print(json.dumps({"phase": name, **result}), flush=True)
    return result


def reload_loop(base: str, stop: threading.Event, out: list[tuple[int, float]]) -> None:
    with httpx.Client(base_url=base, timeout=60) as c:
        while not stop.is_set():
            started = time.perf_counter()
            r = c.post("/reload_model", headers={"Authorization": f"Bearer {TOKEN}"})
            out.append((r.status_code, time.perf_counter() - started))
            stop.wait(1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/deepcart-bench-serve"))
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--items", type=int, default=1500)
    ap.add_argument("--reviews", type=int, default=40000)
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per phase")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--wrk-threads", type=int, default=2, help="wrk threads for the GET phases")
    ap.add_argument("--cache-size", type=int, default=100_000, help="the server's --cache-size")
    ap.add_argument("--repeat", type=int, default=1, help="run the measured phases this often")
    ap.add_argument("--workers", type=int, default=1, help="the server's --workers")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    prepare(work, args.users, args.items, args.reviews)
    train = pq.read_table(work / "data" / TAG / "splits" / "none" / "train.parquet")
    (work / "users.txt").write_text("\n".join(sorted(set(train["user_id"].to_pylist()))) + "\n")
    (work / "items.txt").write_text("\n".join(sorted(set(train["parent_asin"].to_pylist()))) + "\n")
    scripts = {}
    for name, text in (("get", GET_LUA), ("round_trip", ROUND_TRIP_LUA)):
        text = text.replace("USERS", str(work / "users.txt")).replace(
            "ITEMS", str(work / "items.txt")
        )
        scripts[name] = work / f"{name}.lua"
        scripts[name].write_text(text)

    server = Server(work, args.cache_size, args.workers)
    runs: list[dict[str, dict[str, float]]] = []
    try:
        c, d = args.connections, args.duration
        get = {"script": scripts["get"], "connections": c, "threads": args.wrk_threads}
        run_phase("warm-up", server, duration=min(d, 5.0), **get)
        for _ in range(args.repeat):
            runs.append(measure(server, scripts, get, c, d))
    finally:
        server.stop()

    print()
    print(
        "| run | load (1 min) | GET: req/s | GET: p50 / p99 ms | GET: errors "
        "| round trip: per s | round trip: p50 / p99 ms | round trip: errors "
        "| during reload_model: req/s, p99 ms | reloads ok | errors during reloads |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n, res in enumerate(runs, 1):
        g, r, rl = res["get"], res["round_trip"], res["reload"]
        print(
            f"| {n} | {g['load_avg_1m']:.1f} | {g['rps']:,.0f} | {g['p50_ms']:.1f} / "
            f"{g['p99_ms']:.1f} | {g['non_2xx'] + g['socket_errors']:.0f} "
            f"| {r['round_trips_per_s']:,.0f} | {r['p50_ms']:.1f} / {r['p99_ms']:.1f} "
            f"| {r['bad_status'] + r['socket_errors']:.0f} "
            f"| {rl['rps']:,.0f}, {rl['p99_ms']:.1f} | {rl['reloads_ok']:.0f}/{rl['reloads']:.0f} "
            f"| {rl['non_2xx'] + rl['socket_errors']:.0f} |"
        )
    print("targets: GET >= 1,000 req/s with p99 <= 25 ms; round trip p99 <= 50 ms; 0 errors")


def measure(
    server: Server, scripts: dict[str, Path], get: dict[str, object], c: int, d: float
) -> dict[str, dict[str, float]]:
    """One run of the three measured phases."""
    results = {
        "get": run_phase("GET /recommendations, known users", server, duration=d, **get),
        "round_trip": run_phase(
            "POST review + GET recommendations",
            server,
            script=scripts["round_trip"],
            duration=d,
            connections=c,
            threads=c,
        ),
    }
    stop, reloads = threading.Event(), []
    loop = threading.Thread(target=reload_loop, args=(server.base, stop, reloads))
    loop.start()
    try:
        results["reload"] = run_phase(
            "GET /recommendations during reload_model", server, duration=d, **get
        )
    finally:
        stop.set()
        loop.join()
    results["reload"]["reloads"] = len(reloads)
    results["reload"]["reloads_ok"] = sum(1 for status, _ in reloads if status == 200)
    results["reload"]["reload_s_max"] = round(max((s for _, s in reloads), default=0.0), 3)
    return results


if __name__ == "__main__":
    main()
