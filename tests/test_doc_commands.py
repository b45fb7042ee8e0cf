"""Every `deepcart ...` command the README shows, and every `example:` of `deepcart <cmd>
--help`, parses with the real parser; and the hyperparameters they pass (--params, --grid) are
ones the model takes. A renamed flag or hyperparameter cannot leave a stale example behind."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from deepcart.cli import build_parser
from deepcart.eval.tune import combinations, parse_grid
from deepcart.models import REGISTRY, available, create, parse_params

ROOT = Path(__file__).resolve().parents[1]


def _commands(lines: list[str]) -> list[list[str]]:
    out = []
    for line in lines:
        if not line.strip() or "[--" in line:  # blank, or a synopsis with [optional] parts
            continue
        parts = shlex.split(line, comments=True)
        while parts and re.fullmatch(r"[A-Z_]+=\S*", parts[0]):  # VAR=value deepcart ...
            parts = parts[1:]
        if parts and parts[0] in ("deepcart", ".venv/bin/deepcart"):
            out.append(parts[1:])
    return out


def readme_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M)
    return _commands([ln for b in blocks for ln in b.replace("\\\n", " ").splitlines()])


def help_examples() -> list[list[str]]:
    parser = build_parser()
    subs = next(a for a in parser._actions if a.choices and "tune" in a.choices)  # noqa: SLF001
    lines = []
    for sub in subs.choices.values():
        for line in (sub.description or "").splitlines():
            if line.startswith("example: "):
                lines.append(line.removeprefix("example: "))
    return _commands(lines)


def _check(argv: list[str]) -> None:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's error exit
        raise AssertionError(f"does not parse: deepcart {shlex.join(argv)}") from exc
    model = getattr(args, "type", None)
    if not isinstance(model, str) or model not in REGISTRY or not available(model):
        return
    params = parse_params(getattr(args, "params", None))
    grid = getattr(args, "grid", None)
    for combo in combinations(parse_grid(grid, params)) if grid else [{}]:
        create(model, {**params, **combo})  # an InputError names what is wrong


def test_the_readme_shows_commands() -> None:
    commands = readme_commands()
    assert len(commands) >= 30
    assert {c[0] for c in commands} >= {"quickstart", "build", "train", "test", "tune", "serve"}
    assert len(help_examples()) >= 10


@pytest.mark.parametrize("argv", readme_commands(), ids=shlex.join)
def test_every_readme_command_parses(argv: list[str]) -> None:
    _check(argv)


@pytest.mark.parametrize("argv", help_examples(), ids=shlex.join)
def test_every_help_example_parses(argv: list[str]) -> None:
    _check(argv)
