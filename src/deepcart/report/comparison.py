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


def _read(
    path: Path, key: str, problems: list[str], nullable: bool = False
) -> dict[str, Any] | None:
    """The JSON object in ``path`` if it has an object ``key`` (or, ``nullable``, a null one);
    else None, with a note."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or key not in doc:
            raise ValueError(f"no '{key}' object")
        if not isinstance(doc[key], dict) and not (nullable and doc[key] is None):
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


def _damage(doc: dict[str, Any], list_key: str | None) -> str | None:
    """What is wrong with the shape of a summary the report reads (None: nothing): ``seeds``
    and ``list_key`` must be lists, a repeats summary's per-split values lists of numbers and
    its ``best_on`` counts numbers, a tune file's trials objects."""
    if not isinstance(doc.get("seeds", []), list):
        return "'seeds' is not a list"
    if list_key is not None:
        if not isinstance(doc.get(list_key), list):
            return f"no '{list_key}' list"
        if not all(isinstance(t, dict) for t in doc[list_key]):
            return f"'{list_key}' holds something other than objects"
        return None
    for name, entry in doc["models"].items():
        if not isinstance(entry, dict):
            return f"model {name!r}: not an object"
        best_on = entry.get("best_on")
        if best_on is not None and math.isnan(num(best_on)):
            return f"model {name!r}: 'best_on' is not a number"
        metrics = entry.get("metrics", {})
        if not isinstance(metrics, dict):
            return f"model {name!r}: 'metrics' is not an object"
        for key, m in metrics.items():
            if isinstance(m, dict) and not isinstance(m.get("per_split", []), list):
                return f"model {name!r}: {key}: 'per_split' is not a list"
    return None


def _load_all(
    root: Path, pattern: str, key: str, list_key: str | None = None, nullable: bool = False
) -> tuple[list[tuple[Path, dict[str, Any]]], list[str]]:
    """Every JSON object matching ``root/pattern`` with an object ``key`` (or a null one where
    ``nullable``) and a list ``list_key``, with its path; and a note for each file that could
    not be read."""
    found: list[tuple[Path, dict[str, Any]]] = []
    problems: list[str] = []
    for path in sorted(root.glob(pattern)):
        doc = _read(path, key, problems, nullable)
        if doc is None:
            continue
        damage = _damage(doc, list_key)
        if damage is not None:
            problems.append(f"{path}: {damage}")
            continue
        found.append((path, doc))
    return found, problems


def load_repeats(reports_dir: Path, tag: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every ``<reports_dir>/<tag>/*/repeats.json`` and ``repeats-worst.json`` (one per split
    protocol and mode); and a note for each file that could not be read."""
    found, problems = _load_all(reports_dir / tag, "*/repeats*.json", "models")
    for path, doc in found:
        doc.setdefault("split", path.parent.name)
    docs = [doc for _, doc in found]  # per split, best mode first (as the comparison's groups)
    docs.sort(key=lambda d: (str(d["split"]), d.get("mode", "best") != "best"))
    return docs, problems


def load_tunes(reports_dir: Path, tag: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every ``<reports_dir>/<tag>/*/tune/*.json`` that ``deepcart tune`` wrote (one per split
    protocol, model and mode; ``best`` null where no combination could be scored); and a note
    for each file that could not be read."""
    found, problems = _load_all(reports_dir / tag, "*/tune/*.json", "best", "trials", True)
    for path, doc in found:
        doc.setdefault("split", path.parent.parent.name)
        doc.setdefault("model", path.stem)
    return [doc for _, doc in found], problems
