"""Progress bars of the classic models' fits: on stderr, on a terminal, off with --quiet.

The bars appear only on a terminal and after ``DELAY_S`` seconds; :func:`terminal` stands a
terminal in for stderr (and a buffer for stdout) and sets the delay to 0, so that the tiny fits
here show them. It is called in the test body: pytest's output capture re-installs its own
sys.stdout/sys.stderr after the fixtures are set up.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest

from deepcart import progress
from deepcart.cli import main
from deepcart.models import available, create
from deepcart.models.als import implicit_available
from tests.models.test_contract import planted, planted_explicit, two_group_dataset


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def terminal(monkeypatch: pytest.MonkeyPatch) -> tuple[io.StringIO, _Terminal]:
    """(stdout, stderr) as a buffer and a terminal, the bars' delay 0."""
    out, err = io.StringIO(), _Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    return out, err


# The bar's first line shows "0/<total> [00:00<?, ?<unit>/s]".
CASES = [
    ("als", {"backend": "numpy", "iterations": 3}, "0/3 [00:00<?, ?iteration/s]"),
    ("svd", {"iterations": 4}, "0/4 [00:00<?, ?iteration/s]"),
    ("itemknn", {}, "0/1 [00:00<?, ?block/s]"),
    # One Gram block, the Cholesky factor, the inverse, the weights.
    ("ease", {}, "0/4 [00:00<?, ?step/s]"),
]
if implicit_available():
    CASES.append(("als", {"backend": "implicit", "iterations": 3}, "0/3 [00:00<?, ?iteration/s]"))
if available("vae"):
    CASES.append(("vae", {"epochs": 2, "threads": 1}, "0/2 [00:00<?, ?epoch/s]"))


@pytest.mark.parametrize(("name", "params", "first"), CASES)
def test_fit_shows_a_bar_on_stderr_unless_progress_is_off(
    name: str, params: dict, first: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, err = terminal(monkeypatch)
    model = create(name, params)
    x = planted_explicit() if model.feedback == "explicit" else planted()
    model.fit(x)
    shown = err.getvalue()
    assert shown.startswith(f"\r{name}:") and first in shown
    assert out.getvalue() == ""  # nothing on stdout

    err.seek(0)
    err.truncate()
    with progress.progress_enabled(False):
        quiet = create(name, params).fit(x)
    assert err.getvalue() == ""
    np.testing.assert_array_equal(quiet.score(x[:5]), model.score(x[:5]))


@pytest.mark.skipif(not available("vae"), reason="needs PyTorch (the 'neural' extra)")
def test_a_neural_model_can_turn_its_own_bar_off(monkeypatch: pytest.MonkeyPatch) -> None:
    _, err = terminal(monkeypatch)
    create("vae", {"epochs": 2, "threads": 1, "progress": False}).fit(planted())
    assert err.getvalue() == ""


def test_no_bar_off_a_terminal_or_for_a_short_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()  # not a terminal
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    create("svd").fit(planted_explicit())
    assert err.getvalue() == ""
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    monkeypatch.setattr(progress, "DELAY_S", 60.0)  # a fit far shorter than the delay
    create("svd").fit(planted_explicit())
    assert term.getvalue() == ""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_group_dataset(tmp_path_factory.mktemp("progress"), "pb", n_users=200, seed=3)


@pytest.mark.parametrize("quiet", [False, True])
def test_cli_train_bar_on_stderr_and_none_with_quiet(
    quiet: bool, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, err = terminal(monkeypatch)
    argv = [
        "train", "--data-dir", str(dataset / "data"), "--data-tag", "pb", "--type", "svd",
        "--model-dir", str(dataset / "models"),
    ]  # fmt: skip
    assert main(argv + (["--quiet"] if quiet else [])) == 0
    assert "Trained svd in" in out.getvalue() and "svd:" not in out.getvalue()
    if quiet:
        assert err.getvalue() == ""
    else:
        assert err.getvalue().startswith("\rsvd:") and "0/15" in err.getvalue()


@pytest.mark.parametrize("quiet", [False, True])
def test_cli_test_fits_with_a_bar_unless_quiet(
    quiet: bool, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, err = terminal(monkeypatch)
    argv = [
        "test", "--data-dir", str(dataset / "data"), "--data-tag", "pb", "--type", "svd",
        "--model-dir", str(tmp_path / "models"), "--reports-dir", str(tmp_path / "reports"),
    ]  # fmt: skip
    assert main(argv + (["--quiet"] if quiet else [])) == 0
    assert "NDCG@10" in out.getvalue()
    assert (err.getvalue() == "") if quiet else err.getvalue().startswith("\rsvd:")
