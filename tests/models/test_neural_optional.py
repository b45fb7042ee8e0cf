"""Torch stays optional: without it, everything else works and a neural model is a one-line error.

These tests hide torch (whether or not it is installed), so they run everywhere.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import deepcart.models as models
from deepcart.cli import main
from deepcart.errors import InputError

NEURAL = ("autoencoder", "dae", "vae")


@pytest.fixture
def no_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object, **kwargs: object) -> object:
        return None if name == "torch" or name.startswith("torch.") else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_neural_models_are_registered() -> None:
    for name in NEURAL:
        assert name in models.REGISTRY and name in models.NEEDS_TORCH


def test_without_torch_a_neural_model_is_a_one_line_error(no_torch: None) -> None:
    for name in NEURAL:
        assert not models.available(name)
        with pytest.raises(InputError) as err:
            models.create(name)
        assert str(err.value) == (
            f"{name} needs PyTorch: pip install 'deepcart[neural]' -c constraints.txt"
        )
    # 'all' means every model that can run here.
    assert not set(NEURAL) & set(models.model_names())
    assert {"ease", "als", "popular"} <= set(models.model_names())


def test_without_torch_the_cli_says_so_in_one_line(
    no_torch: None, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(["train", "--data-dir", str(tmp_path), "--data-tag", "t", "--type", "vae"])
    err = capsys.readouterr().err
    assert code == 2
    assert (
        err
        == "deepcart: error: vae needs PyTorch: pip install 'deepcart[neural]' -c constraints.txt\n"
    )


def test_importing_deepcart_and_the_neural_modules_does_not_import_torch() -> None:
    code = (
        "import sys, deepcart, deepcart.cli, deepcart.models.neural, deepcart.models.vae, "
        "deepcart.models.dae, deepcart.models.autoencoder, deepcart.training\n"
        "deepcart.cli.build_parser()\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_neural_hyperparameters_are_checked_without_torch() -> None:
    # torch blocked outright: checking hyperparameters must not need it, installed or not.
    code = (
        "import importlib, sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from deepcart.errors import InputError\n"
        "from deepcart.models import REGISTRY\n"
        f"for name in {NEURAL!r}:\n"
        "    module, cls = REGISTRY[name]\n"
        "    model_cls = getattr(importlib.import_module(module), cls)\n"
        "    model_cls().check_params()\n"
        "    for params in ({'epochs': 0}, {'dropout': 1.0}, {'device': 'tpu'}):\n"
        "        try:\n"
        "            model_cls(**params).check_params()\n"
        "        except InputError as exc:\n"
        "            assert str(exc).startswith(next(iter(params)) + ': expected'), exc\n"
        "        else:\n"
        "            raise AssertionError(f'{name}: {params} passed')\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
