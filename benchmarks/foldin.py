"""Benchmark: the service's fold-in call, in process, for a few rows at a time.

Loads the serving state that ``benchmarks/serve.py`` serves (the same ``--workdir``: the
quickstart-sized synthetic dataset and its production ``als`` models, built there first if
missing) and times, with one BLAS thread as ``deepcart serve`` runs:

- ``model.recommend``: the model call a fold-in makes (``ServingState.recommend_many`` builds
  the rows, then one call for the batch): in best mode ``recommend(rows, k=10)``, in worst mode
  with the worst-mode candidate mask and ``exclude`` (every item the user rated);
- ``recommend_many``: the whole served computation for the batch (the users' rows from their
  training row and a new review, the model call, the JSON of each list; the cache is off).

Each batch holds known users, each with one extra random review, as the round trip of
``benchmarks/serve.py`` makes them. Prints CPU microseconds per call and per row (the best of
``--repeats`` runs of ``--calls`` calls over 20 different batches; the machine may be shared).

    python benchmarks/foldin.py --workdir /tmp/deepcart-bench-serve
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from pathlib import Path

import scipy.sparse as sp
from bench_data import load_average
from serve import TAG, prepare
from threadpoolctl import threadpool_limits

from deepcart.modes import model_input
from deepcart.serve.config import load_settings
from deepcart.serve.state import ServingState, load_state


def cpu_us(fn: Callable[[int], object], calls: int, repeats: int) -> float:
    """Best of ``repeats``: CPU microseconds per call of ``fn(i)`` over ``calls`` calls."""
    for i in range(20):
        fn(i)
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for i in range(calls):
            fn(i)
        best = min(best, (time.process_time() - started) / calls * 1e6)
    return best


def batches(state: ServingState, n: int, seed: int) -> list[list[tuple[str, list]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(20):
        batch = []
        for _ in range(n):
            review = (rng.choice(state.item_ids), float(rng.randint(1, 5)))
            batch.append((rng.choice(state.user_ids), [review]))
        out.append(batch)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/deepcart-bench-serve"))
    ap.add_argument("--rows", default="1,8,64", help="batch sizes (rows per call)")
    ap.add_argument("--calls", type=int, default=2000, help="calls per timing")
    ap.add_argument("--repeats", type=int, default=3, help="report the best of this many")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    work = args.workdir.resolve()
    prepare(work, users=3000, items=1500, reviews=40000)
    settings = load_settings(
        data_dir=work / "data",
        model_dir=work / "models",
        data_tag=TAG,
        type="als",
        db_url=f"sqlite:///{work / 'foldin-unused.db'}",
        cache_size=0,
    )
    with threadpool_limits(limits=1, user_api="blas"):
        state = load_state(settings)
        print(f"load average before: {load_average()}")
        print(f"{'mode':<6} {'rows':>4}  {'model.recommend us/call':>23} {'us/row':>7}"
              f"  {'recommend_many us/call':>22} {'us/row':>7}")  # fmt: skip
        for mode in ("best", "worst"):
            model = state.models[mode]
            for n in (int(r) for r in args.rows.split(",")):
                groups = batches(state, n, args.seed)
                raw = [
                    sp.vstack([state.user_row(u, s) for u, s in b], format="csr") for b in groups
                ]
                inputs = [model_input(x, mode, model.feedback) for x in raw]

                def call(i: int, mode: str = mode, model=model, raw=raw, inputs=inputs) -> object:
                    j = i % len(inputs)
                    exclude = None if mode == "best" else raw[j]
                    allowed = state.allowed[mode]
                    return model.recommend(inputs[j], k=10, candidates=allowed, exclude=exclude)

                def served(i: int, mode: str = mode, groups=groups) -> object:
                    return state.recommend_many(groups[i % len(groups)], 10, mode)

                calls = max(20, args.calls // max(1, n // 8))
                a = cpu_us(call, calls, args.repeats)
                b = cpu_us(served, calls, args.repeats)
                print(f"{mode:<6} {n:>4}  {a:>23.1f} {a / n:>7.1f}  {b:>22.1f} {b / n:>7.1f}")
        print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
