"""`deepcart train`: what a user's mistakes give (one line, exit 2) before and after the data."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepcart.cli import main
from deepcart.data.build import build_dataset
from tests.data.test_build import _toy


@pytest.fixture
def data(tmp_path: Path) -> Path:
    build_dataset(
        reviews_file=_toy(tmp_path), items_file=None, output_dir=tmp_path / "data", tag="t",
        min_interactions=1, min_ratings=1, echo=lambda s: None,
    )  # fmt: skip
    return tmp_path


def _train(root: Path, tag: str, *flags: str) -> int:
    return main(
        ["train", "--data-dir", str(root / "data"), "--data-tag", tag,
         "--model-dir", str(root / "m"), *flags]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("model", "params", "expected"),
    [
        ("als", '{"factors": "x"}', "factors: expected an integer >= 1, got 'x'"),
        ("svd", '{"factors": 0}', "factors: expected an integer >= 1, got 0"),
        # These three used to check only inside fit, after the data was read.
        ("naive", '{"min_ratings": 0}', "min_ratings: expected an integer >= 1, got 0"),
        ("weighted-rating", '{"m": "x"}', "m: expected a number or null, got 'x'"),
        ("baseline", '{"item_reg": -1}', "item_reg: expected a number >= 0, got -1"),
        ("random", '{"seed": 1.5}', "seed: expected an integer, got 1.5"),
    ],
)
def test_bad_hyperparameter_fails_before_the_data_is_read(
    data: Path, capsys: pytest.CaptureFixture, model: str, params: str, expected: str
) -> None:
    # The dataset does not even exist: the --params error comes first, with nothing printed.
    assert _train(data, "missing", "--type", model, "--params", params) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"deepcart: error: --params: bad value for {model!r}: {expected}\n"
    assert not (data / "data" / "missing").exists() and not (data / "m").exists()


def test_empty_training_split_is_said_plainly(data: Path, capsys: pytest.CaptureFixture) -> None:
    # Every toy review is later than T1 = 1 ms, so the timestamp split leaves train empty.
    code = _train(data, "t", "--type", "popular", "--split", "timestamp", "--cut-points", "1,2")
    err = capsys.readouterr().err
    assert code == 2 and err == (
        "deepcart: error: --split timestamp: the training part of dataset 't' has no ratings, "
        "nothing to train on; check the split's flags, or rebuild the dataset with lower "
        "--min-ratings/--min-interactions\n"
    )
    assert not (data / "m").exists()


def test_a_model_dir_that_cannot_be_written_fails_before_the_fit(
    data: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import deepcart.training as training

    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("fit before the model dir was checked")

    monkeypatch.setattr(training, "fit_model", no_fit)
    (data / "m").write_text("a file where the model dir goes")
    assert _train(data, "t", "--type", "popular") == 2
    out, err = capsys.readouterr()
    assert "Training popular" not in out
    assert err == f"deepcart: error: --model-dir: {data / 'm'} exists and is not a directory\n"


def test_test_does_not_reuse_another_types_model_saved_in_its_folder(data: Path) -> None:
    from deepcart.data.split import SplitParams, make_split
    from deepcart.data.splitdata import load_split_data
    from deepcart.training import load_saved_model

    assert _train(data, "t", "--type", "random") == 0
    assert _train(data, "t", "--type", "popular") == 0
    m = data / "m" / "t" / "users"
    for name in ("model.json", "arrays.npz", "items.parquet"):  # popular's folder, random's model
        (m / "popular" / name).write_bytes((m / "random" / name).read_bytes())
    split = make_split(data / "data", "t", SplitParams(), echo=lambda s: None)
    data_ = load_split_data(split)
    assert load_saved_model(m / "popular", data_, "best", "popular") is None  # test refits
    model, _ = load_saved_model(m / "popular", data_, "best", "random")
    assert model.name == "random"
