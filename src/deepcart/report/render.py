"""The report page: sections of figures and tables in one self-contained HTML file."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deepcart import __version__
from deepcart.data.build import load_manifest
from deepcart.data.mining import excerpt
from deepcart.data.paths import check_outside_dataset, require_dataset
from deepcart.errors import InputError
from deepcart.eval.evaluate import fmt_p
from deepcart.fsutil import atomic_path
from deepcart.modes import LOW, MIN_ENGAGEMENT
from deepcart.report import charts
from deepcart.report.comparison import (
    Group,
    load_metrics,
    load_repeats,
    load_tunes,
    ndcg,
    num,
)
from deepcart.report.stats import DatasetStats, Tail, check_manifest, funnel

DEFAULT_REPORTS_DIR = Path("reports")
#: Section anchor -> heading, in report order. "models" appears only where metrics exist.
SECTIONS = {
    "overview": "Overview",
    "funnel": "Build funnel",
    "ratings": "Rating distribution",
    "long-tail": "The long tail",
    "time": "Reviews over time",
    "price-category": "Price and categories",
    "verified": "Verified and unverified purchases",
    "worst": "The worst surviving products",
    "models": "Model comparison",
}
#: How many worst products the report lists.
WORST_N = 10


def _e(value: object) -> str:
    """HTML-escape anything (quotes too: values also land in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def _n(value: float | int | None) -> str:
    return "-" if value is None else f"{int(value):,}"


def _f(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _pct(part: float, whole: float) -> str:
    return "-" if not whole else f"{100.0 * part / whole:.1f}%"


def _date(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",sans-serif;
margin:0;color:#1a202c;background:#f7fafc;line-height:1.45}
header{background:#1a202c;color:#fff;padding:1.2rem 2rem}
header h1{margin:0 0 .3rem;font-size:1.6rem}
header p{margin:0;color:#cbd5e0}
nav{background:#2d3748;padding:.4rem 2rem;position:sticky;top:0}
nav a{color:#e2e8f0;margin-right:1rem;text-decoration:none;font-size:.9rem}
main{max-width:1280px;margin:0 auto;padding:1rem 2rem 3rem}
section{background:#fff;border-radius:8px;padding:1rem 1.4rem;margin:1.2rem 0;
box-shadow:0 1px 3px rgba(0,0,0,.08)}
h2{margin-top:.2rem;font-size:1.3rem}
h3{font-size:1.05rem}
figure{margin:.6rem 0}
img{max-width:100%;height:auto}
figcaption,.note{color:#4a5568;font-size:.9rem}
table{border-collapse:collapse;font-size:.88rem;margin:.6rem 0}
td,th{border-bottom:1px solid #e2e8f0;padding:.3rem .6rem;text-align:left;vertical-align:top}
table.num td{font-variant-numeric:tabular-nums}
.kpis{display:flex;flex-wrap:wrap;gap:.8rem}
.row{display:flex;gap:0 2rem;align-items:center}
.row>div{flex:0 1 auto;min-width:0}
.row>div:last-child{flex:0 0 auto}
@media (max-width:900px){.row{flex-wrap:wrap}}
.kpi{background:#edf2f7;border-radius:6px;padding:.5rem .9rem;min-width:9rem}
.kpi b{display:block;font-size:1.3rem}
pre{background:#edf2f7;padding:.7rem;border-radius:6px;overflow-x:auto;font-size:.85rem}
.product{border-top:1px solid #e2e8f0;padding:.7rem 0}
.product h3{margin:.1rem 0}
.stars{color:#c53030;font-weight:600}
blockquote{margin:.4rem 0 0;padding:.4rem .8rem;border-left:4px solid #c53030;background:#fff5f5}
blockquote p{margin:.2rem 0}
"""


def _figure_html(f: charts.Figure) -> str:
    cap = f"<figcaption>{_e(f.caption)}</figcaption>" if f.caption else ""
    return f'<figure><img src="{f.uri}" alt="{_e(f.alt)}">{cap}</figure>'


def _row(*parts: str) -> str:
    """Side by side where the page is wide enough, stacked where not."""
    return "<div class='row'>" + "".join(f"<div>{p}</div>" for p in parts) + "</div>"


def _section(anchor: str, body: Iterable[str]) -> str:
    return f'<section id="{anchor}"><h2>{_e(SECTIONS[anchor])}</h2>{"".join(body)}</section>'


def _kpis(pairs: list[tuple[str, str]]) -> str:
    return (
        "<div class='kpis'>"
        + "".join(f"<div class='kpi'><b>{_e(v)}</b>{_e(k)}</div>" for k, v in pairs)
        + "</div>"
    )


def _tail_table(items: Tail, users: Tail) -> str:
    rows = "".join(
        f"<tr><td>{what}</td><td>{t.entities:,}</td><td>{_f(t.mean, 1)}</td>"
        f"<td>{_f(t.median, 0)}</td><td>{t.max:,}</td>"
        f"<td>{_pct(t.top20_share, 1.0) if t.total else '-'}</td></tr>"
        for what, t in (("reviews per item", items), ("reviews per user", users))
    )
    return (
        "<table class='num'><tr><th></th><th>count</th><th>mean</th><th>median</th><th>max</th>"
        f"<th>share held by the top 20%</th></tr>{rows}</table>"
    )


def _product_html(rank: int, p: dict[str, Any]) -> str:
    title = p.get("title") or "(no title in the item metadata)"
    facts = [
        f"<span class='stars'>{p['mean']:.2f}★</span> from {p['n']:,} ratings",
        f"{_pct(p['low'], p['n'])} rated {LOW:g}★ or lower",
    ]
    if p.get("store"):
        facts.append(f"store {_e(p['store'])}")
    if p.get("main_category"):
        facts.append(_e(p["main_category"]))
    if p.get("price") is not None:
        facts.append(f"${p['price']:,.2f}")
    c = p.get("complaint")
    quote = ""
    if c:
        votes = int(c.get("review_helpful_vote") or 0)
        quote = (
            "<blockquote>"
            f"<p><b>{_e(c.get('review_title') or '(untitled)')}</b> "
            f"<span class='stars'>{_f(c.get('review_rating'), 0)}★</span></p>"
            f"<p>{_e(excerpt(c.get('review_text')))}</p>"
            f"<p class='note'>{votes:,} found this helpful · {_date(c.get('review_timestamp'))}"
            "</p></blockquote>"
        )
    return (
        f"<div class='product'><h3>{rank}. {_e(title)}</h3>"
        f"<div class='note'>{_e(p['parent_asin'])} · {' · '.join(facts)}</div>{quote}</div>"
    )


def _models_table(g: Group) -> str:
    k = g.k if g.k is not None else "K"
    docs = sorted(g.docs, key=lambda d: -ndcg(d) if not math.isnan(ndcg(d)) else math.inf)
    head = (
        f"<tr><th>model</th><th>NDCG@{_e(k)} [95% CI]</th><th>MAP</th><th>Recall</th>"
        "<th>HitRate</th><th>MRR</th><th>coverage</th><th>fit s</th><th>users scored</th>"
        "<th>p vs best</th></tr>"
    )
    body = []
    for d in docs:
        m = d["metrics"]
        ci = (d.get("ci95") or {}).get("ndcg") or [None, None]
        ci_txt = f" [{_f(num(ci[0]), 4)}, {_f(num(ci[1]), 4)}]" if len(ci) == 2 else ""
        p = num(d.get("paired_t_test_p_vs_best_ndcg"))
        body.append(
            f"<tr><td>{_e(d['model'])}</td><td>{_f(ndcg(d), 4)}{ci_txt}</td>"
            + "".join(
                f"<td>{_f(num(m.get(key)), 4)}</td>"
                for key in ("map", "recall", "hit_rate", "mrr", "coverage")
            )
            + f"<td>{_f(num(d.get('fit_seconds')), 3)}</td><td>{_n(d.get('users_scored'))}</td>"
            f"<td>{'best' if d.get('best_model') == d['model'] else fmt_p(p)}</td></tr>"
        )
    return f"<table class='num'>{head}{''.join(body)}</table>"


def write_report(
    data_dir: str | Path,
    tag: str,
    out: str | Path | None = None,
    reports_dir: str | Path = DEFAULT_REPORTS_DIR,
    *,
    min_engagement: int = MIN_ENGAGEMENT,
) -> Path:
    """Write the HTML report of the dataset ``<data_dir>/<tag>`` to ``out`` (default
    ``<reports_dir>/<tag>/index.html``), with the model comparison when ``deepcart test`` left
    metrics under ``<reports_dir>/<tag>/``; return the path written."""
    plt = charts.pyplot()
    if isinstance(min_engagement, bool) or min_engagement < 1:
        raise InputError(f"min_engagement: expected a positive integer, got {min_engagement}")
    paths = require_dataset(data_dir, tag)
    manifest = load_manifest(paths)
    check_manifest(manifest, paths.manifest)
    reports_dir = Path(reports_dir)
    out = Path(out) if out is not None else reports_dir / tag / "index.html"
    if out.is_dir():
        raise InputError(f"--out: {out} is a directory; name the HTML file to write")
    if out.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"--out: expected an .html file name (the report is HTML), got {out}")
    check_outside_dataset(out, data_dir, tag, "the report")
    for p in (paths.reviews, paths.items):
        if not p.is_file():
            raise InputError(f"dataset {tag!r} is incomplete: missing {p}")

    data = DatasetStats(paths.reviews, paths.items)
    try:
        with plt.rc_context({"font.size": 9.5, "axes.titleweight": "bold"}):
            sections = _dataset_sections(plt, data, manifest, min_engagement)
            groups, problems = load_metrics(reports_dir, tag)
            repeats, more = load_repeats(reports_dir, tag)
            problems += more
            tunes, more = load_tunes(reports_dir, tag)
            problems += more
            compared = bool(groups or repeats or tunes or problems)
            if compared:
                sections.append(
                    _models_section(plt, groups, problems, reports_dir / tag, repeats, tunes)
                )
    finally:
        data.close()

    anchors = ["overview", "funnel", "ratings", "long-tail", "time", "price-category",
               "verified", "worst"] + (["models"] if compared else [])  # fmt: skip
    nav = "".join(f'<a href="#{a}">{_e(SECTIONS[a])}</a>' for a in anchors)
    doc = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        # No script, no outside request: images are data: URIs, the style is inline.
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "img-src data:; style-src 'unsafe-inline'\">"
        f"<title>DeepCart report: {_e(tag)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>DeepCart dataset report: {_e(tag)}</h1>"
        f"<p>{_e(paths.root)} · built by deepcart {_e(manifest.get('deepcart_version'))} · "
        f"report by deepcart {_e(__version__)}</p></header><nav>{nav}</nav><main>"
        + "".join(sections)
        + "</main></body></html>\n"
    )
    with atomic_path(out) as tmp:
        tmp.write_text(doc, encoding="utf-8")
    return out


def _dataset_sections(
    plt: Any, data: DatasetStats, manifest: dict[str, Any], min_engagement: int
) -> list[str]:
    ov = data.overview()
    counts = manifest.get("counts", {})
    params = manifest.get("params", {})
    out: list[str] = []

    reviews = ov["reviews"]
    density = reviews / (ov["users"] * ov["items"]) if ov["users"] and ov["items"] else 0.0
    out.append(
        _section(
            "overview",
            [
                _kpis(
                    [
                        ("reviews", _n(reviews)),
                        ("users", _n(ov["users"])),
                        ("items", _n(ov["items"])),
                        ("mean rating", _f(ov["mean_rating"])),
                        (f"rated {LOW:g}★ or lower", _pct(ov["low"], reviews)),
                        ("verified purchases", _pct(ov["verified"], ov["verified_known"])),
                        ("density", f"{100 * density:.3f}%"),
                        ("first review", _date(ov["first"])),
                        ("last review", _date(ov["last"])),
                    ]
                ),
                f"<p class='note'>{_n(ov['with_text'])} reviews with a text (median "
                f"{_n(ov['median_text_chars'])} characters), {_n(ov['helpful'])} helpful votes; "
                f"{_n(ov['items_with_metadata'])} items with a title in the metadata, "
                f"{_n(ov['items_with_price'])} with a price. Build parameters: "
                + _e(", ".join(f"{k}={v}" for k, v in sorted(params.items())))
                + ".</p>",
            ],
        )
    )

    if "reviews_read" in counts:
        steps, table = funnel(counts, params)
        rows = "".join(
            f"<tr data-key='{_e(key)}'><td>{_e(step)}</td><td>{_e(what)}</td>"
            f"<td class='count'>{_n(value)}</td></tr>"
            for step, key, value, what in table
        )
        body = [
            _row(
                _figure_html(charts.fig_funnel(plt, steps)),
                "<table class='num funnel'><tr><th>step</th><th>what</th><th>count</th></tr>"
                f"{rows}</table>",
            ),
            "<p class='note'>What <code>deepcart build</code> printed:</p>",
            "<pre>" + _e("\n".join(manifest.get("report", []))) + "</pre>",
        ]
    else:
        body = ["<p class='note'>The manifest holds no build counts.</p>"]
    out.append(_section("funnel", body))

    ratings = data.ratings()
    rows = "".join(
        f"<tr><td>{r:g}★</td><td>{c:,}</td><td>{_pct(c, reviews)}</td></tr>" for r, c in ratings
    )
    out.append(
        _section(
            "ratings",
            [
                _row(
                    _figure_html(charts.fig_ratings(plt, ratings)),
                    "<table class='num'><tr><th>rating</th><th>reviews</th><th>share</th></tr>"
                    f"{rows}</table>",
                )
            ],
        )
    )

    items, users = data.tail("parent_asin"), data.tail("user_id")
    out.append(
        _section(
            "long-tail",
            [_figure_html(charts.fig_tail(plt, items, users)), _tail_table(items, users)],
        )
    )

    out.append(_section("time", [_figure_html(charts.fig_time(plt, data.months()))]))

    out.append(
        _section(
            "price-category",
            [
                _figure_html(charts.fig_price(plt, data.prices(), data.price_bands())),
                _figure_html(
                    charts.fig_categories(
                        plt, data.categories("i.main_category"), data.categories("i.categories[2]")
                    )
                ),
            ],
        )
    )

    ver = data.verified()
    rows = []
    for g, name in ((True, "verified"), (False, "unverified"), (None, "unknown")):
        sel = [r for r in ver if r[0] is g]
        n = sum(c for _, _, c, _ in sel)
        if not n:
            continue
        mean = sum(r * c for _, r, c, _ in sel) / n
        low = sum(c for _, r, c, _ in sel if r <= LOW)
        helpful = sum(h * c for _, _, c, h in sel) / n
        rows.append(
            f"<tr><td>{name}</td><td>{n:,}</td><td>{_pct(n, reviews)}</td><td>{mean:.2f}</td>"
            f"<td>{_pct(low, n)}</td><td>{helpful:.2f}</td></tr>"
        )
    out.append(
        _section(
            "verified",
            [
                _row(
                    _figure_html(charts.fig_verified(plt, ver)),
                    "<table class='num'><tr><th></th><th>reviews</th><th>share</th>"
                    f"<th>mean rating</th><th>rated {LOW:g}★ or lower</th>"
                    f"<th>mean helpful votes</th></tr>{''.join(rows)}</table>",
                ),
            ],
        )
    )

    products = data.worst_products(min_engagement, WORST_N)
    intro = (
        f"<p class='note'>The {WORST_N} products with at least {min_engagement} ratings and the "
        "lowest mean rating, each with its most helpful low-rated review (the one worst mode "
        "shows).</p>"
    )
    if products:
        body = [intro] + [_product_html(i, p) for i, p in enumerate(products, 1)]
    else:
        body = [f"<p class='note'>No product has {min_engagement} or more ratings.</p>"]
    out.append(_section("worst", body))
    return out


def _repeats_table(doc: dict[str, Any]) -> str:
    """``deepcart test --repeat``'s summary: each model's mean over the splits."""
    k = doc.get("k", "K")

    def metric(entry: dict[str, Any], key: str) -> dict[str, Any]:
        value = (entry.get("metrics") or {}).get(key)
        return value if isinstance(value, dict) else {}

    def mean_se(m: dict[str, Any]) -> str:
        return f"{_f(num(m.get('mean')), 4)} ± {_f(num(m.get('se')), 4)}"

    def key(item: tuple[str, Any]) -> float:
        value = num(metric(item[1], "ndcg").get("mean"))
        return -value if not math.isnan(value) else math.inf

    head = (
        f"<tr><th>model</th><th>NDCG@{_e(k)} mean ± s.e.</th><th>min..max</th>"
        f"<th>Recall@{_e(k)} mean ± s.e.</th><th>best on</th><th>p vs best</th></tr>"
    )
    n = len(doc.get("seeds") or [])
    body = []
    for name, entry in sorted(doc["models"].items(), key=key):
        if not isinstance(entry, dict):
            continue
        nd = metric(entry, "ndcg")
        values = [num(v) for v in nd.get("per_split") or []]
        values = [v for v in values if not math.isnan(v)]
        spread = f"{_f(min(values), 4)}..{_f(max(values), 4)}" if values else "-"
        p = num(entry.get("paired_t_test_p_vs_best_ndcg"))
        best = "best" if doc.get("best_model") == name else fmt_p(p)
        body.append(
            f"<tr><td>{_e(name)}</td><td>{mean_se(nd)}</td><td>{spread}</td>"
            f"<td>{mean_se(metric(entry, 'recall'))}</td>"
            f"<td>{_n(entry.get('best_on'))} of {n}</td><td>{best}</td></tr>"
        )
    return f"<table class='num'>{head}{''.join(body)}</table>"


#: Most trials of one ``deepcart tune`` run the report lists (a grid may have 1,000).
MAX_TRIALS_SHOWN = 25


def _params_text(params: Any) -> str:
    if not isinstance(params, dict) or not params:
        return "defaults"
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in params.items())


def _tune_html(doc: dict[str, Any]) -> str:
    """``deepcart tune``'s trials, best first, and the command that tests the best."""
    metric = str(doc.get("metric") or "ndcg")
    k = doc.get("k", "K")
    seeds = doc.get("seeds") or []
    n = len(seeds)
    over = f", mean over {n} splits (seeds {', '.join(str(s) for s in seeds)})" if n > 1 else ""
    trials = [t for t in doc["trials"] if isinstance(t, dict)]
    fixed = doc.get("params")
    head = (
        f"<h3>Tuning {_e(doc.get('model'))}: {_e(doc.get('split'))} split, "
        f"{_e(doc.get('mode', 'best'))} mode, {_e(len(trials))} combinations{_e(over)}</h3>"
        "<p class='note'>From <code>tune/</code> (<code>deepcart tune</code>): scored on the "
        "validation users only, never the test users"
        + (f"; fixed: {_e(_params_text(fixed))}" if isinstance(fixed, dict) and fixed else "")
        + ".</p>"
    )
    rows = []
    for i, t in enumerate(trials[:MAX_TRIALS_SHOWN]):
        m = (t.get("metrics") or {}).get(metric)
        m = m if isinstance(m, dict) else {}
        se = num(m.get("se"))
        se_txt = "" if math.isnan(se) else f" ± {_f(se, 4)}"
        rows.append(
            f"<tr><td>{i + 1}</td><td>{_e(_params_text(t.get('params')))}</td>"
            f"<td>{_f(num(m.get('mean')), 4)}{se_txt}</td>"
            f"<td>{_f(num(t.get('fit_seconds_mean')), 2)}</td></tr>"
        )
    table = (
        f"<table class='num'><tr><th>rank</th><th>hyperparameters</th>"
        f"<th>validation {_e(metric)}@{_e(k)}{' mean ± s.e.' if n > 1 else ''}</th>"
        f"<th>fit s</th></tr>{''.join(rows)}</table>"
    )
    if len(trials) > MAX_TRIALS_SHOWN:
        table += (
            f"<p class='note'>The first {MAX_TRIALS_SHOWN} of {len(trials)}; every trial is in "
            "the JSON file.</p>"
        )
    command = doc.get("test_command")
    if doc.get("best") is None:
        why = doc.get("no_best") or "no combination could be scored"
        table += f"<p class='note'>No best: {_e(why)}.</p>"
    elif isinstance(command, str) and command:
        table += f"<p class='note'>On the test users:</p><pre>{_e(command)}</pre>"
    return head + table


def _models_section(
    plt: Any,
    groups: list[Group],
    problems: list[str],
    root: Path,
    repeats: list[dict[str, Any]] | None = None,
    tunes: list[dict[str, Any]] | None = None,
) -> str:
    body = [
        f"<p class='note'>From the <code>metrics.json</code> files <code>deepcart test</code> "
        f"wrote under {_e(root)}/, per split, mode and K. Bars: NDCG@K with its percentile "
        "bootstrap 95% CI over users; right: NDCG@K against the seconds the fit took.</p>"
    ]
    for g in groups:
        n_users = {d.get("users_scored") for d in g.docs}
        users = f", {_n(next(iter(n_users)))} test users" if len(n_users) == 1 else ""
        body.append(
            f"<h3>{_e(g.split)} split, {_e(g.mode)} mode, K={_e(g.k)} "
            f"({len(g.docs)} models{users})</h3>"
        )
        body.append(_figure_html(charts.fig_models(plt, g)))
        body.append(_models_table(g))
    for doc in repeats or []:
        seeds = ", ".join(str(s) for s in doc.get("seeds") or [])
        body.append(
            f"<h3>{_e(doc.get('split'))} split, {_e(doc.get('mode', 'best'))} mode, "
            f"K={_e(doc.get('k'))}: over {len(doc.get('seeds') or [])} splits (seeds "
            f"{_e(seeds)})</h3><p class='note'>From <code>repeats.json</code> "
            "(<code>deepcart test --repeat</code>): the mean over the splits with its standard "
            "error, on how many splits the model was best, and a paired t-test over the "
            "splits against the best mean.</p>"
        )
        body.append(_repeats_table(doc))
    for doc in tunes or []:
        body.append(_tune_html(doc))
    if problems:
        body.append(
            "<p class='note'>Skipped unreadable files:</p><pre>"
            + _e("\n".join(problems))
            + "</pre>"
        )
    return _section("models", body)
