"""`deepcart train` and `deepcart test` end to end on a small dataset, recomputed from files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from deepcart.cli import main
from deepcart.models import create
from tests.eval.datasets import one_user_dataset, power_law_dataset


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return power_law_dataset(
        tmp_path_factory.mktemp("eval"), seed=11, n_users=800, n_items=200, max_ratings=20
    )


def _args(root: Path, *extra: str) -> list[str]:
    return [
        "--data-dir", str(root / "data"), "--data-tag", "t", "--model-dir",
        str(root / "models"), *extra,
    ]  # fmt: skip


def test_test_all_writes_recomputable_reports(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    reports = workdir / "reports"
    code = main(["test", *_args(workdir, "--type", "all", "--reports-dir", str(reports))])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "User splits:" in out and "NDCG@10 [95% CI]" in out
    metrics = {
        m: json.loads((reports / "t" / "users" / m / "metrics.json").read_text())
        for m in ("random", "popular")
    }
    assert metrics["popular"]["metrics"]["ndcg"] > metrics["random"]["metrics"]["ndcg"]
    assert metrics["random"]["paired_t_test_p_vs_best_ndcg"] < 0.05
    # Recompute popular's NDCG@10 from the split files and recs.parquet alone.
    split = workdir / "data" / "t" / "splits" / "users"
    check = pq.read_table(split / "test_check.parquet").to_pylist()
    train_items = set(pq.read_table(split / "train.parquet")["parent_asin"].to_pylist())
    truth: dict[str, set[str]] = {}
    for r in check:
        if r["parent_asin"] in train_items:
            truth.setdefault(r["user_id"], set()).add(r["parent_asin"])
    recs: dict[str, list[tuple[int, str]]] = {}
    for r in pq.read_table(reports / "t" / "users" / "popular" / "recs.parquet").to_pylist():
        recs.setdefault(r["user_id"], []).append((r["rank"], r["parent_asin"]))
    scores = []
    for user, rel in truth.items():
        ranked = [a for _, a in sorted(recs.get(user, []))]
        dcg = sum(1 / math.log2(i + 2) for i, a in enumerate(ranked[:10]) if a in rel)
        idcg = sum(1 / math.log2(i + 2) for i in range(min(len(rel), 10)))
        scores.append(dcg / idcg)
    assert metrics["popular"]["metrics"]["ndcg"] == pytest.approx(np.mean(scores), rel=1e-9)
    assert metrics["popular"]["users_scored"] == len(scores)


def test_train_then_test_reuses_saved_model(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", *_args(workdir, "--type", "popular")]) == 0
    out = capsys.readouterr().out
    saved = workdir / "models" / "t" / "users" / "popular"
    assert f"Model saved to {saved}/" in out
    assert (saved / "model.json").is_file() and (saved / "items.parquet").is_file()
    reports = workdir / "reports2"
    assert main(["test", *_args(workdir, "--type", "popular", "--reports-dir", str(reports))]) == 0
    doc = json.loads((reports / "t" / "users" / "popular" / "metrics.json").read_text())
    assert doc["source"] == "saved"


def test_bad_requests_are_one_line_errors(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["test", *_args(workdir, "--type", "nope")]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert main(["test", *_args(workdir, "--type", "popular", "--split", "none")]) == 2
    assert "no test users" in capsys.readouterr().err
    assert main(["train", *_args(workdir, "--type", "random", "--params", '{"sed": 1}')]) == 2
    assert "unknown hyperparameter(s) sed" in capsys.readouterr().err
    code = main(["test", "--data-dir", str(workdir / "data"), "--data-tag", "zz", "--type", "all"])
    assert code == 2 and "deepcart build --tag zz" in capsys.readouterr().err
    # A bad value fails before the (here missing) dataset is looked at, naming --params.
    code = main(["test", "--data-dir", str(workdir / "data"), "--data-tag", "zz",
                 "--type", "als", "--params", '{"factors": "x"}'])  # fmt: skip
    assert code == 2 and capsys.readouterr().err == (
        "deepcart: error: --params: bad value for 'als': factors: expected an integer >= 1, "
        "got 'x'\n"
    )


def test_odd_flags_are_one_line_errors(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    """An empty --type list was a traceback; an empty training part a misleading table."""
    capsys.readouterr()
    cases = [
        (["--type", ","], "--type: expected a model, a comma-separated list or 'all', got none"),
        (["--type", "all", "--params", '{"bogus": 1}'],  # was read by no model, silently
         "--params: applies to a single --type, not to a list or 'all'"),
        (["--type", "popular", "--split", "timestamp", "--cut-points", "1,2"],
         "--split timestamp: the training part of dataset 't' has no ratings"),
    ]  # fmt: skip
    for extra, message in cases:
        argv = _args(workdir, *extra, "--reports-dir", str(workdir / "reports"), "--quiet")
        assert main(["test", *argv]) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith(f"deepcart: error: {message}") and err.count("\n") == 1, extra


def test_top_k_beyond_the_catalog_and_min_engagement_beyond_every_item(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    """--top-k 1000000000 was a MemoryError traceback (padded users x K arrays); now the lists
    stop at the catalog and the slots beyond it count as misses. A --min-engagement no item
    reaches gave a table of zeros without a word of why."""
    reports = workdir / "reports"

    def metrics(k: str) -> dict:
        argv = _args(workdir, "--type", "popular", "--top-k", k, "--reports-dir", str(reports))
        assert main(["test", *argv, "--quiet"]) == 0
        return json.loads((reports / "t" / "users" / "popular" / "metrics.json").read_text())

    catalog, huge = metrics("300")["metrics"], metrics("1000000000")["metrics"]  # <= 200 items
    for name in ("ndcg", "recall", "hit_rate", "mrr", "map"):
        assert huge[name] == pytest.approx(catalog[name]), name
    assert huge["precision"] == pytest.approx(catalog["precision"] * 300 / 1e9)
    capsys.readouterr()
    argv = _args(workdir, "--type", "popular", "--mode", "worst", "--min-engagement", "100000")
    assert main(["test", *argv, "--reports-dir", str(reports), "--quiet"]) == 0
    assert "Warning: --min-engagement 100000: no item has that many training ratings" in (
        capsys.readouterr().out
    )


def test_a_model_listed_twice_is_evaluated_once(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    capsys.readouterr()
    reports = str(workdir / "reports")
    assert (
        main(["test", *_args(workdir, "--type", "popular,popular", "--reports-dir", reports)]) == 0
    )
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("popular")]
    assert len(rows) == 1


def test_params_that_differ_from_the_saved_model_are_fitted(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    # test --params used to be ignored when train had saved a model: the saved one was scored.
    assert main(["train", *_args(workdir, "--type", "itemknn", "--quiet")]) == 0
    reports = workdir / "reports3"
    doc = reports / "t" / "users" / "itemknn" / "metrics.json"

    def source(*params: str) -> str:
        argv = _args(workdir, "--type", "itemknn", "--reports-dir", str(reports), *params)
        assert main(["test", *argv, "--quiet"]) == 0
        return json.loads(doc.read_text())["source"]

    assert source() == "saved"
    saved = workdir / "models" / "t" / "users" / "itemknn"
    assert f"Scoring the saved itemknn model at {saved} (default hyperparameters)" in (
        capsys.readouterr().out
    )
    # What was scored, and with which hyperparameters, is in the report (recomputable).
    assert json.loads(doc.read_text())["params"] == create("itemknn").get_params()
    assert main(["train", *_args(workdir, "--type", "itemknn", "--params", '{"k": 7}')]) == 0
    capsys.readouterr()
    assert source() == "saved"
    assert f"Scoring the saved itemknn model at {saved} (hyperparameters k=7)" in (
        capsys.readouterr().out
    )
    assert json.loads(doc.read_text())["params"]["k"] == 7
    assert main(["train", *_args(workdir, "--type", "itemknn", "--quiet")]) == 0
    assert source("--params", '{"k": 3}') == "fitted"
    default_k = create("itemknn").get_params()["k"]
    assert source("--params", json.dumps({"k": default_k})) == "saved"  # the same as saved


def test_no_scorable_test_user_names_no_best(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """One user, whose held-out items no training rating knows: every NDCG is "no value". The
    table used to star the first model as best (and write it as best_model)."""
    one_user_dataset(tmp_path)
    argv = _args(tmp_path, "--type", "ease,popular", "--split", "random", "--quiet")
    assert main(["test", *argv, "--reports-dir", str(tmp_path / "reports")]) == 0
    out = capsys.readouterr().out
    assert "No best: no test user could be scored, so no NDCG@10 to rank by" in out
    rows = [line.split()[0] for line in out.splitlines() if line.startswith(("ease", "popular"))]
    assert sorted(rows) == ["ease", "popular"]  # no star
    for model in ("ease", "popular"):
        doc = json.loads(
            (tmp_path / "reports" / "t" / "random" / model / "metrics.json").read_text()
        )
        assert doc["best_model"] is None and doc["metrics"]["ndcg"] is None
