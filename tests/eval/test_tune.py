"""`deepcart tune`: a grid searched on the validation users, recomputed from the split."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from deepcart.cli import main
from deepcart.data.split import SplitParams, load_split
from deepcart.eval.evaluate import evaluate_model
from deepcart.eval.tune import combinations, command_to_test, parse_grid
from deepcart.training import fit_model, load_trainable
from tests.eval.datasets import one_user_dataset, power_law_dataset, run_with_reports_dir_a_file


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return power_law_dataset(
        tmp_path_factory.mktemp("tune"), seed=9, n_users=400, n_items=100, max_ratings=15
    )


def _tune(root: Path, *extra: str) -> list[str]:
    return [
        "tune", "--data-dir", str(root / "data"), "--data-tag", "t",
        "--reports-dir", str(root / "reports"), "--quiet", *extra,
    ]  # fmt: skip


def test_tune_ranks_the_grid_by_the_validation_users(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(_tune(workdir, "--type", "ease", "--grid", '{"reg": [1, 30, 100000]}'))
    out = capsys.readouterr().out
    assert code == 0, out
    doc = json.loads((workdir / "reports" / "t" / "users" / "tune" / "ease.json").read_text())
    assert doc["scored_on"] == "validation users" and doc["seeds"] == [0]
    means = [t["metrics"]["ndcg"]["mean"] for t in doc["trials"]]
    assert means == sorted(means, reverse=True) and len(set(means)) == 3
    assert doc["best"] == doc["trials"][0]["params"]
    assert f"Best: {json.dumps(doc['best'])}" in out
    # Recomputed: each trial's NDCG@10 is that of the validation users' held-out items.
    data = load_trainable(load_split(workdir / "data", "t", "users"), "t")
    val = replace(data, test=data.val)
    for trial in doc["trials"]:
        model, _ = fit_model(data, "ease", trial["params"])
        ndcg = evaluate_model(model, val, 10)[0]["ndcg"]
        assert trial["metrics"]["ndcg"]["mean"] == pytest.approx(np.nanmean(ndcg), rel=1e-12)
    # The printed command tests the best on the test users, as written.
    assert shlex.split(doc["test_command"])[:2] == ["deepcart", "test"]
    assert json.loads(shlex.split(doc["test_command"])[-1]) == doc["best"]


def test_tune_takes_a_list_of_grids(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    grids = [{"factors": [2, 4], "iterations": 2}, {"factors": 4, "iterations": [2, 3]}]
    assert main(_tune(workdir, "--type", "als", "--grid", json.dumps(grids))) == 0
    out = capsys.readouterr().out
    doc = json.loads((workdir / "reports" / "t" / "users" / "tune" / "als.json").read_text())
    assert doc["grid"] == [
        {"factors": [2, 4], "iterations": [2]}, {"factors": [4], "iterations": [2, 3]}
    ]  # fmt: skip
    # factors 4 with 2 iterations is in both grids: fitted once.
    tried = sorted((t["params"]["factors"], t["params"]["iterations"]) for t in doc["trials"])
    assert tried == [(2, 2), (4, 2), (4, 3)]
    assert "3 combinations" in out and "[3/3]" in out


def test_tune_repeat_ranks_by_the_mean_and_puts_the_split_back(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ["--type", "ease", "--grid", '{"reg": [50]}', "--repeat", "2", "--seed", "4"]
    assert main(_tune(workdir, *args)) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "split 2 of 2 (--seed 5)" in out and "--repeat 2" in out
    doc = json.loads((workdir / "reports" / "t" / "users" / "tune" / "ease.json").read_text())
    assert doc["seeds"] == [4, 5]
    ndcg = doc["trials"][0]["metrics"]["ndcg"]
    assert len(ndcg["per_split"]) == 2 and ndcg["per_split"][0] != ndcg["per_split"][1]
    assert ndcg["mean"] == pytest.approx(np.mean(ndcg["per_split"]), rel=1e-12)
    split = json.loads((workdir / "data" / "t" / "splits" / "users" / "split.json").read_text())
    assert split["params"]["seed"] == 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--grid", ""], "--grid: expected a non-empty JSON object"),
        (["--grid", "[1]"], "--grid: expected a non-empty JSON object"),
        (["--grid", "[]"], "--grid: an empty list gives nothing to try"),
        (["--grid", '[{"reg": [1]}, 3]'], "--grid[1]: expected a non-empty JSON object"),
        (["--grid", '[{"reg": [1]}, {"reg": 1, "reg": 2}]'], "--grid: 'reg' given twice"),
        (["--grid", '[{"reg": [1]},'], "--grid: not valid JSON"),
        (["--grid", '[{"reg": [1]}]', "--params", '{"reg": 2}'], "--grid: reg also given"),
        (["--grid", '{"reg": []}'], "--grid: reg: an empty list gives nothing to try"),
        (["--grid", '{"nope": [1]}'], "--grid: unknown hyperparameter(s) nope for 'ease'"),
        (["--grid", '{"reg": [1, -1]}'], "--grid: bad value for 'ease': reg"),
        (["--grid", '{"reg": 1, "reg": 2}'], "--grid: 'reg' given twice"),
        (["--grid", '{"reg": [1]}', "--params", '{"reg": 2}'], "--grid: reg also given"),
        (["--grid", '{"reg": [1]}', "--params", '{"nope": 2}'], "--params: unknown"),
        (["--grid", '{"reg": [1]}', "--split", "none"], "--split none has no validation users"),
        (["--grid", '{"reg": [1]}', "--split", "last-out", "--repeat", "2"], "--repeat 2:"),
        (["--grid", json.dumps({"reg": list(range(1, 1002))})], "--grid: 1,001 combinations"),
    ],
)
def test_bad_tune_requests_are_one_line_errors(
    workdir: Path, capsys: pytest.CaptureFixture, extra: list[str], message: str
) -> None:
    assert main(_tune(workdir, "--type", "ease", *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("repeat", ["0", "-1"])
def test_a_repeat_below_one_is_the_parsers_error(
    workdir: Path, capsys: pytest.CaptureFixture, repeat: str
) -> None:
    # 0 and -1 alike (0 used to pass the parser and fail later, in other words).
    with pytest.raises(SystemExit) as exc:
        main(_tune(workdir, "--type", "ease", "--grid", '{"reg": [1]}', "--repeat", repeat))
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("usage: deepcart tune ")
    assert "deepcart tune: error: argument --repeat: expected a" in err


def test_grid_helpers() -> None:
    grid = parse_grid('{"a": [1, 2], "b": "x"}')
    assert grid == [{"a": [1, 2], "b": ["x"]}]
    assert combinations(grid) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    # Several grids: each one's combinations in turn, one already listed left out.
    grids = parse_grid('[{"a": [1, 2], "b": "x"}, {"b": ["x", "y"], "a": 1}, {"c": 0}]')
    assert combinations(grids) == [
        {"a": 1, "b": "x"}, {"a": 2, "b": "x"}, {"b": "y", "a": 1}, {"c": 0}
    ]  # fmt: skip
    params = SplitParams(protocol="users", seed=3, holdout=0.3, holdout_by="time")
    cmd = command_to_test("d", "t", "ease", {"reg": 5}, params, "worst", 2)
    assert shlex.split(cmd) == [
        "deepcart", "test", "--data-dir", "d", "--data-tag", "t", "--type", "ease",
        "--params", '{"reg": 5}', "--seed", "3", "--holdout", "0.3",
        "--holdout-by", "time", "--mode", "worst", "--repeat", "2",
    ]  # fmt: skip
    params = SplitParams(protocol="random", seed=3, holdout=0.3)
    cmd = command_to_test("d", "t", "ease", {"reg": 5}, params, "best", 1)
    assert "--split random --seed 3 --holdout 0.3" in cmd and "--holdout-by" not in cmd


def test_an_early_stopping_model_is_scored_on_the_half_it_did_not_stop_on(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deepcart.eval import tune

    data = load_trainable(load_split(workdir / "data", "t", "users"), "t")
    stopped_on: list[set[str]] = []
    scored_on: list[set[str]] = []
    real_fit, real_score = tune.fit_model, tune.evaluate_model

    def fit(d, *args):  # noqa: ANN001, ANN202
        stopped_on.append(set(d.val.users.to_list()))
        return real_fit(d, *args)

    def score(model, d, *args):  # noqa: ANN001, ANN202
        scored_on.append(set(d.test.users.to_list()))
        return real_score(model, d, *args)

    monkeypatch.setattr(tune, "fit_model", fit)
    monkeypatch.setattr(tune, "evaluate_model", score)
    per_user, _ = tune._score_on_validation(data, "ease", {}, 10, "best", None, crossed=True)
    everyone = set(data.val.users.to_list())
    assert len(stopped_on) == 2 and stopped_on[0] | stopped_on[1] == everyone
    assert not stopped_on[0] & stopped_on[1]
    assert scored_on == [stopped_on[1], stopped_on[0]]  # each half scored by the other's model
    assert per_user["ndcg"].shape == (data.val.n_users,)
    # ease does not early-stop: the two halves' scores are those of one fit on everyone.
    whole, _ = tune._score_on_validation(data, "ease", {}, 10, "best", None, crossed=False)
    np.testing.assert_allclose(per_user["ndcg"], whole["ndcg"], rtol=1e-12)


def test_tune_a_neural_model_says_it_crosses_the_halves(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    pytest.importorskip("torch", reason="needs the neural extra")
    grid = '{"hidden_dim": [8]}'
    params = '{"epochs": 2, "log_dir": null, "progress": false}'
    assert main(_tune(workdir, "--type", "dae", "--grid", grid, "--params", params)) == 0
    out = capsys.readouterr().out
    assert "each fitted twice: early stopping on one half, scored on the other" in out


def test_a_number_written_two_ways_is_one_combination() -> None:
    """``[{"reg": [50]}, {"reg": [50.0]}]`` used to fit reg 50 twice and rank it twice."""
    grids = parse_grid('[{"reg": [50, 200]}, {"reg": [200.0, 50.0]}, {"implicit": [true, 1]}]')
    assert combinations(grids) == [{"reg": 50}, {"reg": 200}, {"implicit": True}, {"implicit": 1}]


def test_the_test_command_scores_as_the_tuning_did() -> None:
    """The printed ``deepcart test`` line used to drop --top-k and --min-engagement: the best
    combination at K=5 was then tested at K=10, on other candidate items."""
    worst = command_to_test(
        "d", "t", "ease", {"reg": 5}, SplitParams(), "worst", k=5, min_engagement=3
    )
    assert shlex.split(worst)[-6:] == ["--top-k", "5", "--mode", "worst", "--min-engagement", "3"]
    # Defaults are left out; --min-engagement only matters in worst mode.
    best = command_to_test("d", "t", "ease", {"reg": 5}, SplitParams(), "best", min_engagement=3)
    assert "--top-k" not in best and "--min-engagement" not in best


def test_tune_checks_where_it_writes_before_the_first_fit(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A --reports-dir that is a file used to fail only after every fit, losing the run."""
    args = _tune(workdir, "--type", "ease", "--grid", '{"reg": [1, 30]}')
    blocker = run_with_reports_dir_a_file(args, tmp_path)
    captured = capsys.readouterr()
    assert "[1/2]" not in captured.out
    assert captured.err == (
        f"deepcart: error: cannot write {blocker}/t/users/tune/ease.json: {blocker} exists and "
        "is not a directory\n"
    )


def test_tune_refuses_a_min_engagement_no_item_reaches_before_the_first_fit(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """--mode worst --min-engagement above every item's count used to score every combination
    0.0000 on empty lists and name a best; recommend refuses such a value, and so does tune."""
    args = _tune(workdir, "--type", "ease", "--grid", '{"reg": [50, 500]}', "--mode", "worst",
                 "--min-engagement", "100000", "--reports-dir", str(tmp_path))  # fmt: skip
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("deepcart: error: --min-engagement 100000: no item has that")
    assert captured.err.count("\n") == 1
    assert "[1/2]" not in captured.out and "Best" not in captured.out
    assert not list(tmp_path.rglob("*.json"))


def test_tune_names_no_best_when_no_combination_could_be_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """One user: the random split's validation user has no held-out item known to train, so
    every metric is NaN. Tune used to print "Best: {"reg": 1}" and write it as the best."""
    one_user_dataset(tmp_path)
    args = _tune(tmp_path, "--type", "ease", "--grid", '{"reg": [1, 2]}', "--split", "random")
    assert main(args) == 0  # as `deepcart test` with no user to score: a result, not an error
    out = capsys.readouterr().out
    assert "Best:" not in out and "nan" not in out
    assert "No best: no combination could be scored: none of the 1 validation users has a " \
        "held-out item known to train" in out  # fmt: skip
    doc = json.loads((tmp_path / "reports" / "t" / "random" / "tune" / "ease.json").read_text())
    assert doc["best"] is None and doc["test_command"] is None
    assert "no combination could be scored" in doc["no_best"]
    assert [t["metrics"]["ndcg"]["mean"] for t in doc["trials"]] == [None, None]


def test_the_cli_offers_every_metric_tune_ranks_by() -> None:
    # cli.py names the choices itself (importing eval for them would load numpy and pyarrow for
    # every command): they must stay the metrics tune knows.
    from deepcart.cli import build_parser
    from deepcart.eval.tune import METRICS

    tune = next(a for a in build_parser()._actions if a.choices and "tune" in a.choices)
    metric = next(a for a in tune.choices["tune"]._actions if a.dest == "metric")
    assert list(metric.choices) == list(METRICS)
