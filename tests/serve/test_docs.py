"""The API docs: /docs from this server's own files, examples that answer on the quickstart
data."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from deepcart.data.build import build_dataset
from deepcart.data.synth import synthesize
from deepcart.quickstart import quickstart
from deepcart.serve.api import EXAMPLE_ITEM, EXAMPLE_USERS
from deepcart.serve.docs import ASSETS_URL

#: Every URL a page names: attributes, and the quoted strings of its inline script.
_URLS = re.compile(r"""(?:src|href|spec-url)="([^"]*)"|(?:url|oauth2RedirectUrl)\s*:\s*'([^']*)'""")


def _urls(html: str) -> list[str]:
    return [a or b for a, b in _URLS.findall(html)]


def test_docs_page_loads_only_this_servers_files(client: TestClient) -> None:
    needs = {"javascript", "css", "png"}  # the script, the stylesheet, the icon
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    # no CDN, no font host, no validator badge: no absolute URL at all
    assert "http:" not in r.text and "https:" not in r.text, r.text
    urls = _urls(r.text)
    assert "/openapi.json" in urls, urls
    assets = [u for u in urls if u.startswith(ASSETS_URL + "/")]
    kinds = set()
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        answer = client.get(url)
        assert answer.status_code == 200, url
        if url in assets:
            kinds |= {k for k in needs if k in answer.headers["content-type"]}
            assert len(answer.content) > 1000, url
    assert kinds == needs, urls
    assert client.get("/redoc").status_code == 404  # ReDoc would fetch its logo from a CDN
    # only the page's files, not the rest of the package that ships them
    assert client.get(f"{ASSETS_URL}/../__init__.py").status_code == 404
    assert client.get(f"{ASSETS_URL}/core.py").json()["message"].startswith("no such file")


def test_spec_examples_are_in_the_quickstart_dataset(client: TestClient, tmp_path: Path) -> None:
    # The quickstart's data, made as `deepcart quickstart` makes it (its defaults, seed 0).
    defaults = {k: p.default for k, p in inspect.signature(quickstart).parameters.items()}
    synth = synthesize(
        tmp_path / "raw",
        category="Electronics",
        n_users=defaults["users"],
        n_items=defaults["items"],
        n_reviews=defaults["reviews"],
        seed=defaults["seed"],
        progress=False,
    )
    report = build_dataset(
        reviews_file=synth.reviews_path,
        items_file=synth.meta_path,
        output_dir=tmp_path / "data",
        tag=defaults["tag"],
        min_interactions=5,
        min_ratings=5,
        seed=defaults["seed"],
        progress=False,
        echo=lambda s: None,
    )
    reviews = pq.read_table(report.paths.reviews, columns=["user_id", "parent_asin"])
    assert set(EXAMPLE_USERS) <= set(reviews["user_id"].to_pylist())
    assert EXAMPLE_ITEM in set(reviews["parent_asin"].to_pylist())

    spec = client.get("/openapi.json").json()
    shown = []
    for path in spec["paths"].values():
        for op in path.values():
            for param in op.get("parameters", []):
                shown += param["schema"].get("examples", [])
                shown += [e["value"] for e in param.get("examples", {}).values()]
    values = {v for ex in shown for v in str(ex).split(",")} - {"NEWVISITOR"}
    assert values == {*EXAMPLE_USERS, EXAMPLE_ITEM}, shown
