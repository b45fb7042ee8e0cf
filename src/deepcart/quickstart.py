"""`deepcart quickstart`: what a newcomer runs first, on the embedded synthetic default.

It synthesizes a small Electronics category in the exact Amazon Reviews 2023 format under
``<workdir>/data/synthetic`` (never touching real downloads in data/raw), builds the tagged
dataset ``quickstart`` under ``<workdir>/data/processed``, evaluates every model side by side in
best and worst mode (reports under ``<workdir>/reports``), trains the production model (best
and worst mode) and writes recommendations for every user, says what to run next, and ends by
starting the web demo (``deepcart deploy``) on what it built, until Ctrl-C (``deploy=False``:
it returns instead).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from pathlib import Path

from deepcart.data.build import BuildReport, build_dataset
from deepcart.data.split import SplitParams
from deepcart.data.synth import synthesize
from deepcart.errors import InputError
from deepcart.eval.evaluate import evaluate_models
from deepcart.models import NEEDS_TORCH, model_names
from deepcart.recommend import recommend_users
from deepcart.training import train_model


def quickstart(
    *,
    workdir: str | Path = ".",
    users: int = 3000,
    items: int = 1500,
    reviews: int = 40000,
    seed: int = 0,
    tag: str = "quickstart",
    production: str = "als",
    progress: bool = True,
    deploy: bool = True,
    port: int = 7860,
    echo: Callable[[str], None] = print,
) -> BuildReport:
    """Synthesize, build, train, print the next steps and (``deploy``) serve the web demo on
    ``port`` until interrupted; returns the build report."""
    started = time.perf_counter()
    root = Path(workdir)
    if deploy:
        _check_demo_port(port)  # before a minute of work, not after
    raw_dir = root / "data" / "synthetic"
    data_dir = root / "data" / "processed"
    echo(
        f"[1/5] Synthesizing {reviews:,} Electronics reviews by {users:,} users of "
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
    echo("[2/5] Building the dataset...")
    try:
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
    except InputError as exc:
        if not str(exc).startswith(("--min-", "--k-core")):
            raise
        # build's message names its own flags, which quickstart does not take
        raise InputError(
            f"--users {users:,} --items {items:,} --reviews {reviews:,}: too few ratings per "
            "user and item to build a dataset (quickstart keeps users and items with at least "
            "5 ratings); give more --reviews per user and item (defaults: 3,000 users, "
            "1,500 items, 40,000 reviews)"
        ) from None
    model_dir, reports_dir = root / "models", root / "reports"
    common = dict(
        data_dir=data_dir,
        tag=tag,
        split_params=SplitParams(seed=seed),
        model_dir=model_dir,
        progress=progress,
    )
    echo("")
    # The neural models train for many epochs; the quickstart stays under a minute without them.
    fast = [m for m in model_names() if m not in NEEDS_TORCH]
    echo("[3/5] Evaluating the classic models on held-out users (best mode)...")
    evaluate_models(model_types=fast, reports_dir=reports_dir, echo=echo, **common)
    echo("")
    echo("[4/5] Worst mode: which engaged products will each user hate?")
    evaluate_models(model_types=fast, reports_dir=reports_dir, mode="worst", echo=echo, **common)
    echo("")
    echo(f"[5/5] Training the production model ({production}) and recommending for everyone...")
    for mode in ("best", "worst"):  # the demo serves both
        train_model(
            data_dir=data_dir,
            tag=tag,
            model_type=production,
            split_params=SplitParams(protocol="none"),
            model_dir=model_dir,
            mode=mode,
            echo=echo,
            progress=progress,
        )
    recs = root / "recommendations.parquet"
    recommend_users(
        data_dir=data_dir,
        tag=tag,
        model_type=production,
        out=recs,
        model_dir=model_dir,
        echo=echo,
    )
    elapsed = time.perf_counter() - started
    echo("")
    echo(f"Quickstart done in {elapsed:.1f} s. You now have:")
    echo(f"  raw files        {synth.reviews_path}, {synth.meta_path}")
    echo(f"  tagged dataset   {report.paths.root}/ (reviews.parquet, items.parquet, manifest.json)")
    echo(f"  model reports    {reports_dir / tag}/ (metrics.json and recs.parquet per model)")
    echo(f"  production model {model_dir / tag / 'none' / production}/ (and {production}-worst)")
    echo(f"  recommendations  {recs}")
    echo("Next:")
    # Shell-quoted: a --workdir with a space (or a quote) gives commands that run as printed.
    d, m, t = shlex.quote(str(data_dir)), shlex.quote(str(model_dir)), shlex.quote(tag)
    demo = f"  deepcart deploy --data-dir {d} --data-tag {t} --model-dir {m} --type {production} "
    demo += f"--port {port}"
    echo(demo + ("   # the web demo, started below" if deploy else ""))
    echo(
        f"  deepcart test --data-dir {d} --data-tag {t} --model-dir {m} "
        f"--type als,itemknn --split last-out"
    )
    echo(
        f"  deepcart build --reviews-file {shlex.quote(str(synth.reviews_path))} --items-file "
        f"{shlex.quote(str(synth.meta_path))} --output-dir {d} --tag mine --min-interactions 10 "
        "--min-ratings 20"
    )
    echo("  deepcart download --category Electronics --output-dir data/raw   # the real data")
    if deploy:
        _deploy_demo(data_dir, tag, model_dir, production, port, echo)
    return report


def _check_demo_port(port: int) -> None:
    try:
        from deepcart.serve.config import check_port
    except ImportError:
        return  # no serve extra: _deploy_demo says so at the end
    check_port("127.0.0.1", port)


def _deploy_demo(
    data_dir: Path,
    tag: str,
    model_dir: Path,
    model_type: str,
    port: int,
    echo: Callable[[str], None],
) -> None:
    echo("")
    try:
        from deepcart.serve.config import load_settings
        from deepcart.serve.deploy import deploy
    except ImportError as exc:
        echo(
            f"The web demo needs the 'serve' extra ({exc}): pip install -c constraints.txt "
            "-e '.[serve]', then run the deploy command above."
        )
        return
    settings = load_settings(
        data_dir=data_dir, data_tag=tag, model_dir=model_dir, type=model_type, port=port
    )
    deploy(settings)
