"""`deepcart report`: render the HTML report of a small synthetic dataset and check its content;
open it in headless Chromium (marker ``browser``) to check that it displays with nothing fetched."""

from __future__ import annotations

import base64
import json
import re
import sys
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from deepcart.cli import main
from deepcart.data.build import build_dataset
from deepcart.data.split import SplitParams
from deepcart.data.synth import synthesize
from deepcart.errors import InputError
from deepcart.eval.evaluate import evaluate_models
from deepcart.report import SECTIONS, write_report
from deepcart.report.stats import tail

pytest.importorskip("matplotlib", reason="the report needs the 'report' extra (matplotlib)")

TAG = "rep"
XSS = "<script>window.__deepcart_xss = 1</script>"
#: Headless, no sandbox (root in CI containers), and no traffic of Chromium's own.


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small built dataset whose low-rated reviews carry a script tag, and the metrics of two
    cheap models under <root>/reports."""
    root = tmp_path_factory.mktemp("report")
    synth = synthesize(
        root / "raw", n_users=300, n_items=120, n_reviews=3000, seed=3, progress=False
    )
    report = build_dataset(
        reviews_file=synth.reviews_path,
        items_file=synth.meta_path,
        output_dir=root / "data",
        tag=TAG,
        progress=False,
        echo=lambda s: None,
    )
    # User content reaches the report: every complaint starts with a script tag.
    reviews = pq.read_table(report.paths.reviews)
    low = pc.less_equal(reviews["rating"], 2.0)
    text = pc.if_else(low, pc.binary_join_element_wise(XSS, reviews["text"], " "), reviews["text"])
    reviews = reviews.set_column(reviews.schema.get_field_index("text"), "text", text)
    pq.write_table(reviews, report.paths.reviews)
    evaluate_models(
        data_dir=root / "data",
        tag=TAG,
        model_types=["random", "popular"],
        split_params=SplitParams(seed=0),
        model_dir=root / "models",
        reports_dir=root / "reports",
        n_boot=50,
        echo=lambda s: None,
    )
    return root


@pytest.fixture(scope="module")
def report_html(dataset: Path) -> Path:
    return write_report(dataset / "data", TAG, reports_dir=dataset / "reports")


def test_every_section_and_the_model_comparison(dataset: Path, report_html: Path) -> None:
    assert report_html == dataset / "reports" / TAG / "index.html"
    doc = report_html.read_text(encoding="utf-8")
    assert doc.startswith("<!DOCTYPE html>")
    for anchor, heading in SECTIONS.items():
        assert f'<section id="{anchor}"><h2>{heading}</h2>' in doc, heading
    assert "users split, best mode, K=10 (2 models" in doc
    for model in ("random", "popular"):
        assert f"<td>{model}</td>" in doc
    # The best model's NDCG and its CI, as metrics.json holds them.
    best = json.loads(
        (dataset / "reports" / TAG / "users" / "popular" / "metrics.json").read_text()
    )
    lo, hi = best["ci95"]["ndcg"]
    assert f"{best['metrics']['ndcg']:.4f} [{lo:.4f}, {hi:.4f}]" in doc


def test_the_repeated_comparison_is_in_the_report(dataset: Path, tmp_path: Path) -> None:
    from deepcart.eval.repeat import evaluate_repeated

    reports = tmp_path / "reports"
    evaluate_repeated(
        data_dir=dataset / "data",
        tag=TAG,
        model_types=["random", "popular"],
        split_params=SplitParams(seed=0),
        repeats=2,
        model_dir=tmp_path / "models",
        reports_dir=reports,
        echo=lambda s: None,
        progress=False,
    )
    doc = write_report(dataset / "data", TAG, reports_dir=reports).read_text(encoding="utf-8")
    summary = json.loads((reports / TAG / "users" / "repeats.json").read_text())
    assert "users split, best mode, K=10: over 2 splits (seeds 0, 1)" in doc
    for model, entry in summary["models"].items():
        ndcg = entry["metrics"]["ndcg"]
        assert f"<td>{model}</td><td>{ndcg['mean']:.4f} ± {ndcg['se']:.4f}</td>" in doc
    assert '<section id="models">' in doc
    # A damaged summary is listed, not fatal: the rest of the report is written.
    (reports / TAG / "random").mkdir()
    (reports / TAG / "random" / "repeats.json").write_text("{not json")
    doc = write_report(dataset / "data", TAG, reports_dir=reports).read_text(encoding="utf-8")
    assert "Skipped unreadable files:" in doc and "random/repeats.json" in doc
    assert "over 2 splits (seeds 0, 1)" in doc


def test_the_tuning_trials_are_in_the_report(dataset: Path, tmp_path: Path) -> None:
    import html

    from deepcart.eval.tune import tune_model
    from deepcart.report import render

    reports = tmp_path / "reports"
    grid = {"factors": [4, 8, 16]}
    tune_model(
        data_dir=dataset / "data",
        tag=TAG,
        model_type="als",
        grid=grid,
        params={"iterations": 3},
        split_params=SplitParams(seed=0),
        repeats=2,
        reports_dir=reports,
        echo=lambda s: None,
    )
    doc = write_report(dataset / "data", TAG, reports_dir=reports).read_text(encoding="utf-8")
    tuned = json.loads((reports / TAG / "users" / "tune" / "als.json").read_text())
    assert '<section id="models">' in doc
    title = "Tuning als: users split, best mode, 3 combinations, mean over 2 splits (seeds 0, 1)"
    assert title in doc
    assert "fixed: iterations=3" in doc
    # Every trial, best first, with the mean and s.e. its JSON holds; and the test command.
    rows = re.findall(r"<tr><td>(\d+)</td><td>factors=(\d+)</td><td>([\d.]+) ± ([\d.]+)</td>", doc)
    assert [int(r[1]) for r in rows] == [t["params"]["factors"] for t in tuned["trials"]]
    for (_, _, mean, se), trial in zip(rows, tuned["trials"], strict=True):
        ndcg = trial["metrics"]["ndcg"]
        assert (mean, se) == (f"{ndcg['mean']:.4f}", f"{ndcg['se']:.4f}")
    assert [int(r[0]) for r in rows] == [1, 2, 3]
    assert html.escape(tuned["test_command"], quote=True) in doc
    # A long grid is cut in the page, not in the file; a damaged file is listed.
    tuned["trials"] = tuned["trials"] * 20
    (reports / TAG / "users" / "tune" / "als.json").write_text(json.dumps(tuned))
    (reports / TAG / "users" / "tune" / "ease.json").write_text('{"best": {}, "trials": 3}')
    doc = write_report(dataset / "data", TAG, reports_dir=reports).read_text(encoding="utf-8")
    shown = render.MAX_TRIALS_SHOWN
    assert f"The first {shown} of 60; every trial is in the JSON file." in doc
    assert len(re.findall(r"<tr><td>\d+</td><td>factors=", doc)) == shown
    assert "Skipped unreadable files:" in doc
    assert "tune/ease.json: no &#x27;trials&#x27; list" in doc


def test_funnel_numbers_are_the_manifest_counts(dataset: Path, report_html: Path) -> None:
    doc = report_html.read_text(encoding="utf-8")
    manifest = json.loads((dataset / "data" / TAG / "manifest.json").read_text())
    counts = manifest["counts"]
    rows = dict(re.findall(r"<tr data-key='(\w+)'>.*?<td class='count'>([\d,]+)</td></tr>", doc))
    expected = {
        "reviews_read", "duplicates_dropped", "items_dropped_min_ratings",
        "reviews_dropped_no_item", "users_dropped_min_interactions", "reviews_dropped_no_user",
        "items_dropped_no_review", "reviews_written", "users_written", "items_written",
    }  # fmt: skip
    assert expected <= set(rows)
    for key, shown in rows.items():
        assert int(shown.replace(",", "")) == counts[key], key
    for line in manifest["report"]:  # what build printed, verbatim
        assert line.replace("<", "&lt;") in doc


def test_images_are_embedded_and_nothing_is_fetched(report_html: Path) -> None:
    doc = report_html.read_text(encoding="utf-8")
    srcs = re.findall(r'<img src="([^"]*)"', doc)
    assert len(srcs) >= 8
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", doc, re.I)
    assert "<link" not in doc and "@import" not in doc and "url(" not in doc


def test_user_content_is_escaped(report_html: Path) -> None:
    doc = report_html.read_text(encoding="utf-8")
    assert "<script" not in doc.lower()
    assert "&lt;script&gt;window.__deepcart_xss = 1&lt;/script&gt;" in doc
    # The worst products section shows complaints: the escaped script is one of them.
    worst = doc.split('<section id="worst">', 1)[1].split("</section>", 1)[0]
    assert worst.count("<div class='product'>") >= 3 and "&lt;script&gt;" in worst


def test_cli_report_without_metrics_and_the_errors(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "sub" / "report.html"
    args = ["report", "--data-dir", str(dataset / "data"), "--data-tag", TAG,
            "--reports-dir", str(tmp_path / "none"), "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    assert out.is_file() and f"to {out}" in capsys.readouterr().out
    assert not list(out.parent.glob(".*"))  # the temporary file was renamed, not left behind
    doc = out.read_text(encoding="utf-8")  # no metrics for this tag: no model comparison
    assert '<section id="models">' not in doc and 'href="#models"' not in doc
    assert '<section id="worst">' in doc

    assert main(["report", "--data-dir", str(dataset / "data"), "--data-tag", "missing"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no dataset tagged 'missing'" in err

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the extra were not installed
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "deepcart[report]" in err


def test_report_refuses_a_non_html_out_and_damaged_dataset_files(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """--out report.pdf used to get HTML under a .pdf name; a truncated reviews.parquet or a
    manifest.json that is not JSON used to end in a DuckDB or json traceback."""
    import shutil

    args = ["report", "--data-dir", str(tmp_path / "data"), "--data-tag", TAG,
            "--reports-dir", str(tmp_path / "none")]  # fmt: skip
    shutil.copytree(dataset / "data" / TAG, tmp_path / "data" / TAG)
    pdf = tmp_path / "report.pdf"
    assert main([*args, "--out", str(pdf)]) == 2
    assert capsys.readouterr().err == (
        f"deepcart: error: --out: expected an .html file name (the report is HTML), got {pdf}\n"
    )
    assert not pdf.exists()
    reviews = tmp_path / "data" / TAG / "reviews.parquet"
    reviews.write_bytes(reviews.read_bytes()[:40])
    assert main([*args, "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{reviews}: not a readable Parquet file" in err
    (tmp_path / "data" / TAG / "manifest.json").write_text("{oops")
    assert main([*args, "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "manifest.json: not valid JSON" in err
    assert not (tmp_path / "r.html").exists()


FUNNEL_OK = {
    "reviews_read": 5,
    "items_dropped_min_ratings": 0,
    "items_dropped_no_review": 0,
    "users_dropped_min_interactions": 0,
    "reviews_written": 5,
    "items_written": 2,
}


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ('{"counts": 5}', "'counts': expected a JSON object, got int"),
        ('{"counts": [1, 2]}', "'counts': expected a JSON object, got list"),
        ('{"counts": null}', "'counts': expected a JSON object, got null"),
        ('{"counts": {"reviews_read": 5}}', "'counts': missing items_dropped_min_ratings, "),
        (json.dumps({"counts": {**FUNNEL_OK, "reviews_read": "5"}}),
         "'counts': reviews_read: expected a whole number >= 0, got '5'"),
        (json.dumps({"counts": {**FUNNEL_OK, "duplicates_dropped": True}}),
         "'counts': duplicates_dropped: expected a whole number >= 0, got True"),
        ('{"params": [1]}', "'params': expected a JSON object, got list"),
        ('{"report": "abc"}', "'report': expected a list of strings"),
        ('[{"counts": {}}]', "expected a JSON object"),
    ],
)  # fmt: skip
def test_a_manifest_of_the_wrong_shape_is_a_one_line_error(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture, manifest: str, message: str
) -> None:
    """{"counts": 5} used to end in "TypeError: argument of type 'int' is not iterable"; a
    count missing in a KeyError; a list of counts or a report string went unnoticed."""
    import shutil

    shutil.copytree(dataset / "data" / TAG, tmp_path / "data" / TAG)
    path = tmp_path / "data" / TAG / "manifest.json"
    path.write_text(manifest)
    out = tmp_path / "r.html"
    args = ["report", "--data-dir", str(tmp_path / "data"), "--data-tag", TAG,
            "--reports-dir", str(tmp_path / "none"), "--out", str(out)]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"deepcart: error: {path}: ") and message in err
    assert err.count("\n") == 1 and not out.exists()


def test_no_counts_is_a_note_and_empty_counts_an_error(dataset: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(dataset / "data" / TAG, tmp_path / "data" / TAG)
    (tmp_path / "data" / TAG / "manifest.json").write_text('{"counts": {}, "params": {}}')
    with pytest.raises(InputError, match="'counts': missing reviews_read"):
        write_report(tmp_path / "data", TAG, reports_dir=tmp_path / "none")
    (tmp_path / "data" / TAG / "manifest.json").write_text("{}")
    doc = write_report(tmp_path / "data", TAG, reports_dir=tmp_path / "none").read_text()
    assert "The manifest holds no build counts." in doc


def test_a_tuning_with_no_best_is_in_the_report(dataset: Path, tmp_path: Path) -> None:
    """A tune file whose best is null (no combination could be scored) used to be listed as
    unreadable ("no 'best' object")."""
    tune = tmp_path / "reports" / TAG / "random" / "tune" / "ease.json"
    tune.parent.mkdir(parents=True)
    why = "no combination could be scored: none of the 1 validation users has a <held-out> item"
    trial = {"params": {"reg": 1}, "metrics": {"ndcg": {"per_split": [None], "mean": None,
             "se": None}}, "fit_seconds_mean": 0.01}  # fmt: skip
    tune.write_text(json.dumps({"model": "ease", "best": None, "test_command": None,
                                "no_best": why, "trials": [trial]}))  # fmt: skip
    doc = write_report(dataset / "data", TAG, reports_dir=tmp_path / "reports").read_text()
    assert "Tuning ease: random split, best mode, 1 combinations" in doc
    assert "No best: no combination could be scored: none of the 1 validation users has a " \
        "&lt;held-out&gt; item." in doc  # fmt: skip
    assert "Skipped unreadable files:" not in doc and "On the test users:" not in doc


def test_tail_statistics_by_hand() -> None:
    # 1 item with 10 reviews, 2 with 5, 7 with 1: 10 items, 27 reviews.
    t = tail([(1, 7), (10, 1), (5, 2)])
    assert (t.entities, t.total, t.max) == (10, 27, 10)
    assert t.mean == pytest.approx(2.7)
    assert t.median == 1
    assert t.top20_share == pytest.approx(15 / 27)  # the top 2 items: 10 + 5
    assert t.ranks == [1, 1, 2, 3, 4, 10] and t.values == [10, 10, 5, 5, 1, 1]
    empty = tail([])
    assert empty.entities == 0 and empty.total == 0


# --------------------------------------------------------------------------- headless Chromium


@pytest.mark.browser
def test_report_displays_in_headless_chromium(
    chromium: dict[str, Any], report_html: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    errors: list[str] = []
    shot = tmp_path / "report.png"
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh user data dir
            **chromium,
            viewport={"width": 1280, "height": 1400},
            timeout=60_000,
        )
        try:
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(report_html.resolve().as_uri(), wait_until="load")
            images = page.evaluate(
                "Array.from(document.images).map(i => [i.complete, i.naturalWidth])"
            )
            headings = page.evaluate(
                "Array.from(document.querySelectorAll('h2'), h => h.innerText)"
            )
            xss = page.evaluate("window.__deepcart_xss === undefined")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            context.close()
    assert len(images) >= 8 and all(done and width > 0 for done, width in images), images
    assert headings == list(SECTIONS.values())
    assert xss, "a review's script ran"
    outside = [u for u in requests if not u.startswith(("file:", "data:"))]
    assert not outside, outside
    assert not errors, errors
    assert shot.stat().st_size > 50_000


def test_damaged_summaries_are_listed_and_worst_mode_has_its_own(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A repeats.json or tune file of the wrong shape (seeds a number, per_split a number,
    best_on text) used to end the report in a TypeError/ValueError traceback; a p-value of null
    read "nan"; an --out inside the dataset was written there, where build replaces it."""
    good = {"per_split": [0.1, 0.2], "mean": 0.15, "se": 0.05}
    model = {"metrics": {"ndcg": good}, "best_on": 1, "paired_t_test_p_vs_best_ndcg": None}
    base = {"k": 10, "seeds": [0, 1], "best_model": "a", "models": {"a": model, "b": model}}
    reports = tmp_path / "reports" / TAG
    (reports / "users").mkdir(parents=True)
    (reports / "users" / "repeats.json").write_text(json.dumps({**base, "mode": "best"}))
    (reports / "users" / "repeats-worst.json").write_text(json.dumps({**base, "mode": "worst"}))
    bad = {
        "last-out": {**base, "seeds": 2},
        "random": {**base, "models": {"a": {**model, "best_on": "x"}}},
        "timestamp": {**base, "models": {"a": {"metrics": {"ndcg": {**good, "per_split": 3}}}}},
    }
    for split, doc in bad.items():
        (reports / split).mkdir()
        (reports / split / "repeats.json").write_text(json.dumps(doc))
    (reports / "users" / "tune").mkdir()
    (reports / "users" / "tune" / "als.json").write_text('{"best": {}, "trials": [], "seeds": 1}')
    args = ["report", "--data-dir", str(dataset / "data"), "--data-tag", TAG]
    assert main([*args, "--reports-dir", str(tmp_path / "reports")]) == 0
    doc = (reports / "index.html").read_text(encoding="utf-8")
    assert doc.index("best mode, K=10: over 2 splits") < doc.index("worst mode, K=10: over 2")
    assert "<td>b</td><td>0.1500 ± 0.0500</td><td>0.1000..0.2000</td>" in doc
    assert "<td>1 of 2</td><td>-</td>" in doc and "<td>nan</td>" not in doc
    for why in (
        "last-out/repeats.json: &#x27;seeds&#x27; is not a list",
        "random/repeats.json: model &#x27;a&#x27;: &#x27;best_on&#x27; is not a number",
        "timestamp/repeats.json: model &#x27;a&#x27;: ndcg: &#x27;per_split&#x27; is not a list",
        "tune/als.json: &#x27;seeds&#x27; is not a list",
    ):
        assert why in doc
    inside = dataset / "data" / TAG / "report.html"
    assert main([*args, "--out", str(inside)]) == 2
    assert "is inside the folder of dataset" in capsys.readouterr().err
    assert not inside.exists()
