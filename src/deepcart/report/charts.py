"""The report's charts: matplotlib figures on the headless Agg backend, as PNG data URIs."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from deepcart.errors import InputError
from deepcart.report.comparison import Group, ndcg, num
from deepcart.report.stats import Tail

BEST_COLOR = "#2b6cb0"
WORST_COLOR = "#c53030"
MUTED_COLOR = "#718096"
RATING_COLORS = {1: "#c53030", 2: "#dd6b20", 3: "#d69e2e", 4: "#68a063", 5: "#2f855a"}


def pyplot():
    """matplotlib.pyplot on the headless Agg backend, or a one-line InputError naming the extra."""
    try:
        import matplotlib
    except ImportError:
        raise InputError(
            "deepcart report needs matplotlib: pip install 'deepcart[report]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@dataclass
class Figure:
    """A rendered chart: its data: URI, alt text and caption."""

    uri: str
    alt: str
    caption: str = ""


def render_png(plt: Any, fig: Any, alt: str, caption: str = "") -> Figure:
    """Render ``fig`` to a PNG data: URI and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return Figure(uri, alt, caption)


def _style(ax: Any) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.grid(axis="both", color="#e2e8f0", linewidth=0.8)
    ax.set_axisbelow(True)


def _no_data(plt: Any, alt: str, message: str) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", color=MUTED_COLOR)
    return render_png(plt, fig, alt)


def fig_ratings(plt: Any, ratings: list[tuple[float, int]]) -> Figure:
    alt = "Bar chart: number of reviews per star rating"
    if not ratings:
        return _no_data(plt, alt, "no reviews")
    total = sum(c for _, c in ratings)
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    xs = [r for r, _ in ratings]
    ys = [c for _, c in ratings]
    colors = [RATING_COLORS.get(int(round(r)), MUTED_COLOR) for r in xs]
    bars = ax.bar([f"{r:g}★" for r in xs], ys, color=colors)
    ax.bar_label(bars, labels=[f"{100 * c / total:.1f}%" for c in ys], fontsize=9)
    ax.set_ylabel("reviews")
    ax.set_title("Ratings")
    _style(ax)
    ax.grid(axis="x", visible=False)
    return render_png(plt, fig, alt)


def fig_tail(plt: Any, items: Tail, users: Tail) -> Figure:
    alt = "Log-log rank plots: reviews per item and reviews per user, most popular first"
    if not items.entities:
        return _no_data(plt, alt, "no reviews")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, tail, what, color in (
        (axes[0], items, "items", BEST_COLOR),
        (axes[1], users, "users", "#805ad5"),
    ):
        ax.plot(tail.ranks, tail.values, color=color, linewidth=2)
        ax.fill_between(tail.ranks, tail.values, color=color, alpha=0.15)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"{what} ranked by reviews (log)")
        ax.set_ylabel("reviews (log)")
        ax.set_title(
            f"{what.capitalize()}: the top 20% hold {100 * tail.top20_share:.0f}% of reviews",
            fontsize=10,
        )
        _style(ax)
    return render_png(plt, fig, alt)


def fig_time(plt: Any, months: list[tuple[datetime, int, float]]) -> Figure:
    alt = "Line chart: reviews per month and the month's mean rating"
    if not months:
        return _no_data(plt, alt, "no reviews")
    fig, ax = plt.subplots(figsize=(10, 3.4))
    xs = [m for m, _, _ in months]
    ax.fill_between(xs, [c for _, c, _ in months], step="mid", color=BEST_COLOR, alpha=0.35)
    ax.plot(xs, [c for _, c, _ in months], drawstyle="steps-mid", color=BEST_COLOR, lw=1)
    ax.set_ylabel("reviews per month", color=BEST_COLOR)
    _style(ax)
    ax2 = ax.twinx()
    means = [m for _, _, m in months]
    counts = [c for _, c, _ in months]
    # A month's mean is noisy when it has few reviews; show it only where there are 20+.
    ax2.plot(
        [x for x, c in zip(xs, counts, strict=True) if c >= 20],
        [m for m, c in zip(means, counts, strict=True) if c >= 20],
        color=WORST_COLOR,
        lw=1.2,
    )
    ax2.set_ylim(1, 5)
    ax2.set_ylabel("mean rating (months with 20+ reviews)", color=WORST_COLOR)
    ax2.spines["top"].set_visible(False)
    ax.set_title("Reviews over time")
    return render_png(plt, fig, alt)


def fig_price(plt: Any, prices: list[float], bands: list[tuple[str, int, int, float]]) -> Figure:
    alt = "Histogram of item prices (log scale) and reviews and mean rating per price band"
    if not bands:
        return _no_data(plt, alt, "no reviews")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    ax = axes[0]
    if prices:
        lo, hi = max(min(prices), 0.5), max(max(prices), 1.0)
        edges = [lo * (hi / lo) ** (i / 30) for i in range(31)] if hi > lo else [lo, lo * 2]
        ax.hist(prices, bins=edges, color=BEST_COLOR)
        ax.set_xscale("log")
    else:
        ax.text(0.5, 0.5, "no item has a price", ha="center", va="center", color=MUTED_COLOR)
    ax.set_xlabel("price (USD, log)")
    ax.set_ylabel("items")
    ax.set_title(f"Item prices ({len(prices):,} items with a price)", fontsize=10)
    _style(ax)
    ax = axes[1]
    labels = [b for b, _, _, _ in bands]
    bars = ax.bar(labels, [n for _, _, n, _ in bands], color=BEST_COLOR)
    if labels[-1] == "no price":
        bars[-1].set_color(MUTED_COLOR)
    ax.bar_label(bars, labels=[f"{mean:.2f}★" for _, _, _, mean in bands], fontsize=8)
    ax.set_ylabel("reviews")
    ax.set_title("Reviews per price band (label: mean rating)", fontsize=10)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    _style(ax)
    ax.grid(axis="x", visible=False)
    return render_png(plt, fig, alt)


def fig_categories(
    plt: Any,
    main: list[tuple[str, int, int, float]],
    sub: list[tuple[str, int, int, float]],
) -> Figure:
    alt = "Bar charts: reviews per main category and per subcategory, with mean ratings"
    if not main:
        return _no_data(plt, alt, "no reviews")
    rows = max(len(main), len(sub))
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.9 + 0.32 * rows), layout="constrained")
    for ax, data, title in (
        (axes[0], main, "Main category"),
        (axes[1], sub, "Subcategory (second level of categories)"),
    ):
        names = [c if len(c) <= 32 else c[:31] + "…" for c, _, _, _ in data][::-1]
        counts = [n for _, _, n, _ in data][::-1]
        means = [m for _, _, _, m in data][::-1]
        bars = ax.barh(names, counts, color=BEST_COLOR)
        ax.bar_label(bars, labels=[f" {mean:.2f}★" for mean in means], fontsize=8)
        ax.set_ylim(len(data) - rows - 0.5, len(data) - 0.5)  # same bar height in both panels
        ax.set_xlabel("reviews")
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_xlim(0, max(counts) * 1.2)
        _style(ax)
        ax.grid(axis="y", visible=False)
    return render_png(plt, fig, alt)


def fig_verified(plt: Any, rows: list[tuple[bool | None, float, int, float]]) -> Figure:
    alt = "Grouped bars: share of each star rating among verified and unverified reviews"
    if not rows:
        return _no_data(plt, alt, "no reviews")
    groups = {True: "verified", False: "unverified", None: "unknown"}
    colors = {True: BEST_COLOR, False: "#dd6b20", None: MUTED_COLOR}
    stars = sorted({r for _, r, _, _ in rows})
    present = [g for g in groups if any(v is g for v, _, _, _ in rows)]
    fig, ax = plt.subplots(figsize=(5.6, 3.2))
    width = 0.8 / max(len(present), 1)
    for j, g in enumerate(present):
        total = sum(c for v, _, c, _ in rows if v is g)
        share = [100 * sum(c for v, r, c, _ in rows if v is g and r == s) / total for s in stars]
        ax.bar(
            [i + (j - (len(present) - 1) / 2) * width for i in range(len(stars))],
            share,
            width=width,
            color=colors[g],
            label=f"{groups[g]} ({total:,})",
        )
    ax.set_xticks(range(len(stars)), [f"{s:g}★" for s in stars])
    ax.set_ylabel("% of the group's reviews")
    ax.set_title("Ratings of verified and unverified purchases")
    ax.legend(frameon=False, fontsize=9)
    _style(ax)
    ax.grid(axis="x", visible=False)
    return render_png(plt, fig, alt)


def fig_funnel(plt: Any, steps: list[tuple[str, int]]) -> Figure:
    alt = "Funnel: reviews left after each step of the build"
    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.45 * len(steps)))
    labels = [s for s, _ in steps][::-1]
    values = [v for _, v in steps][::-1]
    top = max(values) or 1
    # Bottom to top: written (green), the filtering steps (blue), read (grey).
    colors = ["#2f855a"] + [BEST_COLOR] * (len(values) - 2) + [MUTED_COLOR]
    bars = ax.barh(labels, values, color=colors)
    ax.bar_label(bars, labels=[f" {v:,} ({100 * v / top:.1f}%)" for v in values], fontsize=9)
    ax.set_xlabel("reviews")
    ax.margins(x=0.22)
    _style(ax)
    ax.grid(axis="y", visible=False)
    return render_png(plt, fig, alt)


def _merge_labels(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """One label for points that (nearly) coincide on the log-x scatter, names joined."""
    span = (max(p[1] for p in points) - min(p[1] for p in points)) or 1.0
    merged: list[tuple[float, float, str]] = []
    for x, y, name in sorted(points, key=lambda p: (p[1], p[0])):
        for i, (mx, my, names) in enumerate(merged):
            if abs(math.log10(x) - math.log10(mx)) < 0.25 and abs(y - my) < 0.03 * span:
                merged[i] = (mx, my, f"{names}, {name}")
                break
        else:
            merged.append((x, y, name))
    return merged


def fig_models(plt: Any, g: Group) -> Figure:
    k = g.k if g.k is not None else "K"
    alt = (
        f"NDCG@{k} per model with 95% confidence intervals, and NDCG@{k} against training "
        f"time ({g.split} split, {g.mode} mode)"
    )
    docs = sorted(g.docs, key=lambda d: -ndcg(d) if not math.isnan(ndcg(d)) else math.inf)
    color = WORST_COLOR if g.mode == "worst" else BEST_COLOR
    fig, axes = plt.subplots(
        1, 2, figsize=(11, 1.2 + 0.36 * len(docs)), gridspec_kw={"width_ratios": [1.1, 1]}
    )
    ax = axes[0]
    names = [str(d["model"]) for d in docs][::-1]
    vals = [ndcg(d) for d in docs][::-1]
    lo_err, hi_err = [], []
    for d, v in zip(docs[::-1], vals, strict=True):
        ci = (d.get("ci95") or {}).get("ndcg") or [None, None]
        lo, hi = num(ci[0] if len(ci) > 0 else None), num(ci[1] if len(ci) > 1 else None)
        lo_err.append(0.0 if math.isnan(lo) or math.isnan(v) else max(v - lo, 0.0))
        hi_err.append(0.0 if math.isnan(hi) or math.isnan(v) else max(hi - v, 0.0))
    plotted = [0.0 if math.isnan(v) else v for v in vals]
    ax.barh(names, plotted, xerr=[lo_err, hi_err], color=color, alpha=0.85,
            error_kw={"ecolor": "#1a202c", "capsize": 3, "lw": 1})  # fmt: skip
    ax.set_xlabel(f"NDCG@{k} (bars: 95% bootstrap CI)")
    ax.set_title("Accuracy", fontsize=10)
    ax.tick_params(axis="y", labelsize=9)
    _style(ax)
    ax.grid(axis="y", visible=False)

    ax = axes[1]
    floor = 1e-4
    points = [
        (max(num(d.get("fit_seconds")), floor), ndcg(d), str(d["model"]))
        for d in docs
        if not math.isnan(num(d.get("fit_seconds"))) and not math.isnan(ndcg(d))
    ]
    if points:
        ax.scatter([p[0] for p in points], [p[1] for p in points], color=color, zorder=3)
        for x, y, name in _merge_labels(points):
            ax.annotate(name, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=8)
        ax.set_xscale("log")
        xs = [p[0] for p in points]
        ax.set_xlim(min(xs) / 3, max(xs) * 6)
    else:
        ax.text(0.5, 0.5, "no fit times recorded", ha="center", va="center", color=MUTED_COLOR)
    ax.set_xlabel(f"fit seconds (log; below {floor:g} s drawn at {floor:g})")
    ax.set_ylabel(f"NDCG@{k}")
    ax.set_title("Accuracy against training time", fontsize=10)
    _style(ax)
    return render_png(plt, fig, alt)
