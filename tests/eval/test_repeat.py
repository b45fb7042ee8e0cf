"""`deepcart test --repeat N`: the same models on N splits, and their summary, from the files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepcart.cli import main
from deepcart.data.split import SplitParams
from deepcart.errors import InputError
from deepcart.eval import evaluate as E
from deepcart.eval.repeat import check_repeats, evaluate_repeated
from tests.eval.datasets import power_law_dataset, run_with_reports_dir_a_file


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return power_law_dataset(
        tmp_path_factory.mktemp("repeat"), seed=5, n_users=400, n_items=120, max_ratings=15
    )


def _split_json(root: Path, protocol: str = "users") -> dict:
    return json.loads((root / "data" / "t" / "splits" / protocol / "split.json").read_text())


def _args(root: Path, *extra: str) -> list[str]:
    return [
        "test", "--data-dir", str(root / "data"), "--data-tag", "t", "--model-dir",
        str(root / "models"), "--reports-dir", str(root / "reports"), "--quiet", *extra,
    ]  # fmt: skip


def test_repeat_summarises_the_splits_it_wrote(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    # A model trained on the seed-1 split before: afterwards that split is on disk again.
    train = ["train", "--data-dir", str(workdir / "data"), "--data-tag", "t", "--model-dir"]
    assert main([*train, str(workdir / "models"), "--type", "popular", "--seed", "1"]) == 0
    before = _split_json(workdir)["split_id"]
    code = main(_args(workdir, "--type", "popular,random", "--repeat", "3", "--seed", "1"))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Split 3 of 3: --seed 3" in out and "Over 3 splits (seeds 1, 2, 3)" in out
    assert _split_json(workdir)["split_id"] == before
    assert _split_json(workdir)["params"]["seed"] == 1

    root = workdir / "reports" / "t" / "users"
    doc = json.loads((root / "repeats.json").read_text())
    assert doc["seeds"] == [1, 2, 3] and doc["best_model"] == "popular"
    per_split = {
        m: [json.loads((root / f"seed-{s}" / m / "metrics.json").read_text()) for s in (1, 2, 3)]
        for m in ("popular", "random")
    }
    for model, docs in per_split.items():
        # Each split's report is of its own split: the seed, and other test users.
        assert [d["split_params"]["seed"] for d in docs] == [1, 2, 3]
        assert len({d["split_id"] for d in docs}) == 3
        ndcg = [d["metrics"]["ndcg"] for d in docs]
        summary = doc["models"][model]["metrics"]["ndcg"]
        assert summary["per_split"] == ndcg
        assert summary["mean"] == pytest.approx(np.mean(ndcg), rel=1e-12)
        assert summary["se"] == pytest.approx(np.std(ndcg, ddof=1) / np.sqrt(3), rel=1e-12)
    # The seed-1 split's figures are those of the trained model, read back (source "saved").
    assert per_split["popular"][0]["source"] == "saved"
    assert [d["source"] for d in per_split["popular"][1:]] == ["fitted", "fitted"]
    pop = doc["models"]["popular"]
    assert pop["best_on"] == 3 and doc["models"]["random"]["best_on"] == 0
    assert doc["models"]["random"]["paired_t_test_p_vs_best_ndcg"] < 0.05
    assert pop["paired_t_test_p_vs_best_ndcg"] is None


def test_a_failed_repeat_puts_the_named_split_back(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = E.evaluate_models
    calls = []

    def failing(**kw: object) -> list[E.EvalResult]:
        calls.append(kw["split_params"].seed)  # type: ignore[attr-defined]
        if len(calls) == 2:
            real(**kw)  # the second split is made and written, then the run fails
            raise KeyboardInterrupt
        return real(**kw)

    monkeypatch.setattr("deepcart.eval.repeat.evaluate_models", failing)
    with pytest.raises(KeyboardInterrupt):
        evaluate_repeated(
            data_dir=workdir / "data",
            tag="t",
            model_types=["popular"],
            split_params=SplitParams(seed=7),
            repeats=3,
            model_dir=workdir / "models",
            reports_dir=workdir / "reports-failed",
            echo=lambda s: None,
            progress=False,
        )
    assert calls == [7, 8]
    assert _split_json(workdir)["params"]["seed"] == 7
    assert not (workdir / "reports-failed" / "t" / "users" / "repeats.json").exists()


def test_repeat_needs_a_seeded_split_and_a_positive_count(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    assert check_repeats(1, "last-out") == 1
    with pytest.raises(InputError, match="--repeat: expected a positive integer, got 0"):
        check_repeats(0, "users")
    code = main(_args(workdir, "--type", "popular", "--repeat", "2", "--split", "last-out"))
    err = capsys.readouterr().err
    assert code == 2
    assert (
        "--repeat 2: the last-out split does not depend on --seed, so every repeat would be the "
        "same split; use --split users or random" in err
    )
    with pytest.raises(SystemExit) as exc:  # the parser's, as for -1
        main(_args(workdir, "--type", "popular", "--repeat", "0"))
    assert exc.value.code == 2
    assert "argument --repeat: expected a positive integer, got 0" in capsys.readouterr().err


def test_best_and_worst_mode_summaries_do_not_replace_each_other(
    workdir: Path, tmp_path: Path
) -> None:
    """A worst-mode ``test --repeat`` used to overwrite the best-mode repeats.json."""
    common = dict(
        data_dir=workdir / "data", tag="t", model_types=["popular", "random"],
        split_params=SplitParams(seed=0), repeats=2, model_dir=tmp_path / "models",
        reports_dir=tmp_path / "reports", min_engagement=1, echo=lambda s: None, progress=False,
    )  # fmt: skip
    evaluate_repeated(mode="best", **common)  # type: ignore[arg-type]
    evaluate_repeated(mode="worst", **common)  # type: ignore[arg-type]
    root = tmp_path / "reports" / "t" / "users"
    best = json.loads((root / "repeats.json").read_text())
    worst = json.loads((root / "repeats-worst.json").read_text())
    assert best["mode"] == "best" and sorted(best["models"]) == ["popular", "random"]
    assert worst["mode"] == "worst" and sorted(worst["models"]) == ["popular-worst", "random-worst"]


def test_repeat_checks_where_it_writes_before_the_first_fit(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A --reports-dir that is a file used to fail after the first split's fits."""
    args = _args(workdir, "--type", "popular", "--repeat", "2")
    blocker = run_with_reports_dir_a_file(args, tmp_path)
    captured = capsys.readouterr()
    assert "Split 1 of 2" not in captured.out
    assert captured.err == (
        f"deepcart: error: cannot write {blocker}/t/users/repeats.json: {blocker} exists and is "
        "not a directory\n"
    )


def test_a_run_on_the_same_splits_adds_its_models_to_the_summary(
    workdir: Path, tmp_path: Path
) -> None:
    """``--type popular`` then ``--type random`` on the same splits: one summary of both, as one
    run of both would have written it (``--type ease`` then ``--type vae`` used to leave vae's
    alone)."""
    lines: list[str] = []
    common = dict(
        data_dir=workdir / "data", tag="t", split_params=SplitParams(seed=3), repeats=2,
        model_dir=tmp_path / "models", echo=lines.append, progress=False,
    )  # fmt: skip
    both = tmp_path / "both"
    evaluate_repeated(model_types=["popular", "random"], reports_dir=both, **common)  # type: ignore[arg-type]
    apart = tmp_path / "apart"
    evaluate_repeated(model_types=["popular"], reports_dir=apart, **common)  # type: ignore[arg-type]
    lines.clear()
    summary = evaluate_repeated(model_types=["random"], reports_dir=apart, **common)  # type: ignore[arg-type]
    assert [r.model for r in summary] == ["popular", "random"]
    assert "Kept from the earlier summary of the same splits: popular" in lines
    one = json.loads((both / "t" / "users" / "repeats.json").read_text())
    two = json.loads((apart / "t" / "users" / "repeats.json").read_text())
    assert len(two["split_ids"]) == 2 and two["split_ids"] == one["split_ids"]
    assert two["best_model"] == one["best_model"] == "popular"
    for model in ("popular", "random"):
        a, b = one["models"][model], two["models"][model]
        assert b["metrics"] == a["metrics"]
        assert b["best_on"] == a["best_on"]
        assert b["paired_t_test_p_vs_best_ndcg"] == a["paired_t_test_p_vs_best_ndcg"]
    assert one["models"]["random"]["paired_t_test_p_vs_best_ndcg"] is not None

    # A model run again replaces its own figures, and keeps the others'.
    lines.clear()
    evaluate_repeated(model_types=["random"], reports_dir=apart, **common)  # type: ignore[arg-type]
    assert sorted(json.loads((apart / "t" / "users" / "repeats.json").read_text())["models"]) == [
        "popular",
        "random",
    ]


def _ragged(doc: dict) -> str:  # the same splits, but one model's figures cut short
    doc["models"]["popular"]["metrics"]["ndcg"]["per_split"].pop()
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("change", "spoil", "why"),
    [
        ({"k": 5}, None, "it summarised other splits or another K"),
        ({"split_params": SplitParams(seed=4)}, None, "it summarised other splits or another K"),
        ({}, lambda doc: "{not json", "it could not be read"),
        ({}, lambda doc: json.dumps({**doc, "models": 3}), "it could not be read"),
        ({}, _ragged, "it could not be read"),
    ],
)
def test_a_summary_of_other_splits_is_replaced_and_the_run_says_so(
    workdir: Path, tmp_path: Path, change: dict, spoil: object, why: str
) -> None:
    lines: list[str] = []
    common = dict(
        data_dir=workdir / "data", tag="t", repeats=2, model_dir=tmp_path / "models",
        reports_dir=tmp_path / "reports", echo=lines.append, progress=False,
    )  # fmt: skip
    evaluate_repeated(model_types=["popular"], split_params=SplitParams(seed=3), **common)  # type: ignore[arg-type]
    path = tmp_path / "reports" / "t" / "users" / "repeats.json"
    if callable(spoil):
        path.write_text(spoil(json.loads(path.read_text())))
    lines.clear()
    evaluate_repeated(  # type: ignore[arg-type]
        model_types=["random"], **{"split_params": SplitParams(seed=3), **change, **common}
    )
    doc = json.loads(path.read_text())
    assert list(doc["models"]) == ["random"] and doc["best_model"] == "random"
    assert [line for line in lines if line.startswith("Replaced")] == [f"Replaced {path}: {why}"]


def test_a_saved_model_with_other_hyperparameters_is_not_mixed_into_the_repeats(
    workdir: Path, tmp_path: Path
) -> None:
    """ease trained with reg 1 on seed 3's split, then `test --type ease --repeat 2`: seed 4 is
    fitted with the defaults, so seed 3 used to score the saved reg-1 model and the summary
    mixed two settings under one name. Now every split's model has the same hyperparameters,
    which repeats.json records."""
    from deepcart.models import create

    models = tmp_path / "models"
    train = ["train", "--data-dir", str(workdir / "data"), "--data-tag", "t", "--quiet"]
    train += ["--model-dir", str(models), "--type", "ease", "--seed", "3"]
    assert main([*train, "--params", '{"reg": 1}']) == 0
    lines: list[str] = []
    common = dict(
        data_dir=workdir / "data", tag="t", model_types=["ease"], split_params=SplitParams(seed=3),
        repeats=2, model_dir=models, reports_dir=tmp_path / "reports", echo=lines.append,
        progress=False,
    )  # fmt: skip
    evaluate_repeated(**common)  # type: ignore[arg-type]
    root = tmp_path / "reports" / "t" / "users"
    docs = [json.loads((root / f"seed-{s}" / "ease" / "metrics.json").read_text()) for s in (3, 4)]
    default = create("ease").get_params()
    assert [d["source"] for d in docs] == ["fitted", "fitted"]
    assert [d["params"] for d in docs] == [default, default]
    assert f"Fitting ease: the model saved at {models / 't' / 'users' / 'ease'} has other " \
        "hyperparameters" in lines  # fmt: skip
    summary = json.loads((root / "repeats.json").read_text())
    assert summary["models"]["ease"]["params"] == default
    # Asked for with --params reg 1, the saved model is the one scored on its split.
    evaluate_repeated(**{**common, "params": {"ease": {"reg": 1}}})  # type: ignore[arg-type]
    docs = [json.loads((root / f"seed-{s}" / "ease" / "metrics.json").read_text()) for s in (3, 4)]
    assert [d["source"] for d in docs] == ["saved", "fitted"]
    assert {d["params"]["reg"] for d in docs} == {1}
    assert json.loads((root / "repeats.json").read_text())["models"]["ease"]["params"]["reg"] == 1
