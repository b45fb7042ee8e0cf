"""docs/library.md runs: every ```python block, in order, in one namespace, in a temporary
working directory, so the guide cannot go stale; then a few of its outcomes are checked."""

from __future__ import annotations

import importlib.util
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "library.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
#: Blocks that need the ``serve`` extra (and httpx for TestClient) run only where it is installed.
SERVE = ("fastapi", "httpx")


def python_blocks(text: str) -> list[str]:
    return BLOCK.findall(text)


def test_the_guide_has_its_steps() -> None:
    blocks = python_blocks(GUIDE.read_text())
    assert len(blocks) >= 10
    for name in ("rating_rows", "recommendation_table", "evaluate_models", "load_model_items"):
        assert any(name in b for b in blocks), name
    assert not any("import torch" in b for b in blocks)  # cheap models only


def test_every_python_block_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the guide's mkdtemp lands here
    for name in ("DEEPCART_DATA_TAG", "DEEPCART_TYPE", "DEEPCART_DB_URL", "DEEPCART_MODEL_DIR"):
        monkeypatch.delenv(name, raising=False)
    serve_ok = all(importlib.util.find_spec(m) is not None for m in SERVE)
    ns: dict[str, Any] = {"__name__": "library_doc"}
    ran_serve = False
    for n, block in enumerate(python_blocks(GUIDE.read_text()), 1):
        if "deepcart.serve" in block and not serve_ok:
            continue
        code = compile(block, f"{GUIDE.name}:block{n}", "exec")
        try:
            exec(code, ns)  # noqa: S102 (the guide's own code)
        except Exception as exc:  # the original traceback stays chained below
            raise AssertionError(
                f"docs/library.md python block {n} raised {type(exc).__name__}: {exc}"
            ) from exc
        ran_serve = ran_serve or "deepcart.serve" in block

    assert Path(ns["work"]).is_relative_to(tmp_path)
    items = ns["data"].items
    # The new user's list: five items, none of those they rated.
    rated = set(ns["visitor"])
    new_user = ns["new_user"]
    assert new_user.num_rows == 5
    assert rated.isdisjoint(new_user["parent_asin"].to_pylist())
    assert all(t is not None for t in new_user["title"].to_pylist())
    # Worst mode ranks only engaged items and none the visitor rated.
    engaged = {items.to_list()[j] for j in np.flatnonzero(ns["engaged"])}
    worst = ns["worst"]["parent_asin"].to_pylist()
    assert worst and set(worst) <= engaged and rated.isdisjoint(worst)
    # The known user's list excludes what they rated in training.
    x, row = ns["data"].train, ns["row"]
    seen = {items.to_list()[j] for j in x.indices[x.indptr[row] : x.indptr[row + 1]]}
    assert seen.isdisjoint(ns["known"]["parent_asin"].to_pylist())
    # The loaded model recommends what the saved one did, over the same items.
    assert ns["loaded_items"].ids.equals(items.ids)
    assert (ns["before"] == ns["after"]).all()
    # The side-by-side evaluation covered the models asked for, with a number each.
    assert set(ns["ndcg"]) == {"popular", "ease", "als"}
    assert all(np.isfinite(v) for v in ns["ndcg"].values())
    if ran_serve:
        assert len(ns["served"][ns["user"]]) == 5
        visitor = ns["visitor_list"]
        assert visitor["fallback"] is False and len(visitor["items"]) == 5
        assert ns["asins"][3] not in [i["parent_asin"] for i in visitor["items"]]
