"""The model comparison's input: every ``metrics.json`` that ``deepcart test`` wrote for a tag,
and the ``repeats.json`` summaries of ``deepcart test --repeat``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Group:
    """The metrics.json documents of one split, mode and K."""

    split: str
    mode: str
    k: Any
    docs: list[dict[str, Any]]


def _read(path: Path, key: str, problems: list[str]) -> dict[str, Any] | None:
    """The JSON object in ``path`` if it has an object ``key``; else None, with a note."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or not isinstance(doc.get(key), dict):
            raise ValueError(f"no '{key}' object")
    except (OSError, ValueError) as exc:
        problems.append(f"{path}: {exc}")
        return None
    return doc


def load_metrics(reports_dir: Path, tag: str) -> tuple[list[Group], list[str]]:
    """Every ``<reports_dir>/<tag>/*/*/metrics.json``, grouped by split, mode and K; and a note
    for each file that could not be read."""
    groups: dict[tuple[str, str, str], Group] = {}
    problems: list[str] = []
    for path in sorted((reports_dir / tag).glob("*/*/metrics.json")):
        doc = _read(path, "metrics", problems)
        if doc is None:
            continue
        doc.setdefault("model", path.parent.name)
        split = str(doc.get("split") or path.parent.parent.name)
        mode = str(doc.get("mode") or "best")
        key = (split, mode, str(doc.get("k")))
        groups.setdefault(key, Group(split, mode, doc.get("k"), [])).docs.append(doc)
    order = sorted(groups, key=lambda g: (g[0], g[1] != "best", g[1], g[2]))
    return [groups[g] for g in order], problems


def num(value: Any) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    )


def ndcg(doc: dict[str, Any]) -> float:
    return num(doc["metrics"].get("ndcg"))


def _load_all(
    root: Path, pattern: str, key: str, list_key: str | None = None
) -> tuple[list[tuple[Path, dict[str, Any]]], list[str]]:
    """Every JSON object matching ``root/pattern`` with an object ``key`` (and a list
    ``list_key``), with its path; and a note for each file that could not be read."""
    found: list[tuple[Path, dict[str, Any]]] = []
    problems: list[str] = []
    for path in sorted(root.glob(pattern)):
        doc = _read(path, key, problems)
        if doc is None:
            continue
        if list_key is not None and not isinstance(doc.get(list_key), list):
            problems.append(f"{path}: no '{list_key}' list")
            continue
        found.append((path, doc))
    return found, problems


def load_repeats(reports_dir: Path, tag: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every ``<reports_dir>/<tag>/*/repeats.json`` (one per split protocol); and a note for
    each file that could not be read."""
    found, problems = _load_all(reports_dir / tag, "*/repeats.json", "models")
    for path, doc in found:
        doc.setdefault("split", path.parent.name)
    return [doc for _, doc in found], problems


def load_tunes(reports_dir: Path, tag: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every ``<reports_dir>/<tag>/*/tune/*.json`` that ``deepcart tune`` wrote (one per split
    protocol, model and mode); and a note for each file that could not be read."""
    found, problems = _load_all(reports_dir / tag, "*/tune/*.json", "best", "trials")
    for path, doc in found:
        doc.setdefault("split", path.parent.parent.name)
        doc.setdefault("model", path.stem)
    return [doc for _, doc in found], problems
