"""ALS: our numpy/scipy implementation against the ``implicit`` library, same data, same model.

For each size, synthesizes a dataset with the project's generator (3,000 users and 1,500 items
per 40,000 reviews, like ``deepcart quickstart``), builds it (>= 5 ratings per user and item),
splits it by users and fits:

- ``numpy cg``: :class:`deepcart.models.als.ALSModel` with ``backend="numpy"`` (vectorised
  conjugate gradient, ``cg_steps=3``);
- ``numpy exact``: the same with ``cg_steps=0`` (batched exact solves);
- ``implicit cg`` / ``implicit exact``: ``backend="implicit"``, i.e. the sweeps run by
  ``implicit.cpu.als.AlternatingLeastSquares`` (C++, multithreaded) on the same confidences
  ``c = 1 + alpha r``, the same initial factors, ``regularization``, ``factors``,
  ``iterations`` and CG steps. Skipped with a message when implicit isn't installed.

Both backends hold BLAS to one thread while fitting (as implicit recommends), and every variant
is scored with the same fold-in (``ALSModel._score``), so the NDCG@10 column compares the
factors. Fit seconds are the best of ``--repeats`` runs, variants interleaved (the machine may
be shared). implicit runs ``OMP_NUM_THREADS`` threads (default: every CPU); OpenMP reads it when
the libraries load, so set it in the environment, not in the script.

    python benchmarks/als.py                          # 40k and 500k ratings
    python benchmarks/als.py --sizes 40000 --repeats 1
    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/als.py   # both on one CPU
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from deepcart.data.build import build_dataset
from deepcart.data.split import SplitParams, make_split
from deepcart.data.splitdata import SplitData, load_split_data
from deepcart.data.synth import synthesize
from deepcart.eval.evaluate import evaluate_model
from deepcart.models.als import ALSModel, implicit_available


def dataset(root: Path, reviews: int, seed: int) -> SplitData:
    users, items = max(10, reviews * 3 // 40), max(10, reviews * 3 // 80)
    tag = f"als{reviews}"
    if not (root / "processed" / tag / "manifest.json").is_file():
        synth = synthesize(
            root / "synthetic" / tag,
            n_users=users,
            n_items=items,
            n_reviews=reviews,
            seed=seed,
            progress=False,
        )
        build_dataset(
            reviews_file=synth.reviews_path,
            items_file=synth.meta_path,
            output_dir=root / "processed",
            tag=tag,
            progress=False,
            echo=lambda s: None,
        )
    split = make_split(root / "processed", tag, SplitParams(seed=seed), echo=None)
    return load_split_data(split)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="40000,500000", help="synthetic review counts")
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--regularization", type=float, default=None, help="default: ALSModel's")
    ap.add_argument("--alpha", type=float, default=None, help="default: ALSModel's")
    ap.add_argument("--repeats", type=int, default=3, help="fit seconds: best of this many")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the datasets here")
    args = ap.parse_args()

    if implicit_available():
        import implicit

        print(f"implicit {implicit.__version__} installed")
    else:
        print("implicit is not installed (pip install implicit): skipping its rows")

    defaults = ALSModel().get_params()
    params = dict(
        defaults,
        factors=args.factors,
        iterations=args.iterations,
        regularization=args.regularization or defaults["regularization"],
        alpha=args.alpha if args.alpha is not None else defaults["alpha"],
        seed=args.seed,
    )
    print(f"ALSModel params: {params}; {len(os.sched_getaffinity(0))} CPUs")
    with contextlib.ExitStack() as stack:
        root = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        print(
            f"{'ratings':>9} {'train nnz':>9} {'users':>7} {'items':>6}  {'variant':<16}"
            f"{'fit s':>8} {'NDCG@10':>8}"
        )
        for size in [int(s) for s in args.sizes.split(",")]:
            data = dataset(root, size, args.seed)
            x = data.train
            variants = {
                "numpy cg": dict(params, backend="numpy"),
                "numpy exact": dict(params, backend="numpy", cg_steps=0),
            }
            if implicit_available():
                variants["implicit cg"] = dict(params, backend="implicit")
                variants["implicit exact"] = dict(params, backend="implicit", cg_steps=0)
            times: dict[str, float] = dict.fromkeys(variants, float("inf"))
            models: dict[str, ALSModel] = {}
            for _ in range(args.repeats):
                for label, p in variants.items():
                    started = time.perf_counter()
                    models[label] = ALSModel(**p).fit(x)
                    times[label] = min(times[label], time.perf_counter() - started)
            for label, model in models.items():
                seconds = times[label]
                per_user, *_ = evaluate_model(model, data, k=10)
                ndcg = float(np.nanmean(per_user["ndcg"]))
                print(
                    f"{size:>9,} {x.nnz:>9,} {x.shape[0]:>7,} {x.shape[1]:>6,}  {label:<16}"
                    f"{seconds:>8.2f} {ndcg:>8.4f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
