"""The web demo end to end in headless Chromium (marker ``browser``): a real `deepcart deploy`
process on 127.0.0.1, Debian's chromium driven by Playwright, every request to another host
aborted and recorded. Every wait is for a DOM state, never for time."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyarrow.parquet as pq
import pytest

from .conftest import TAG, World
from .demo_process import DemoProcess, free_port

#: Headless, no sandbox (root in CI containers), and no traffic of Chromium's own.
WORST_TAGLINE = "You've seen the best products Amazon has to offer, but have you seen the worst?"
CARDS = "#gallery .card-button"


@pytest.fixture
def demo(world: World, tmp_path: Path) -> Iterator[str]:
    """A real `deepcart deploy` on a free port; yields its base URL."""
    port = free_port()
    proc = DemoProcess(
        "deploy", "--data-dir", str(world.data_dir), "--data-tag", TAG,
        "--model-dir", str(world.model_dir), "--port", str(port),
        "--db-url", f"sqlite:///{tmp_path / 'reviews.db'}",
    )  # fmt: skip
    try:
        base = proc.wait_for(r"DeepCart demo: (http://127\.0\.0\.1:\d+) ").group(1)
        proc.wait_up(base)
        yield base
    finally:
        assert proc.stop() == 0, proc.output()


def _gallery(page) -> list[str]:  # noqa: ANN001
    return page.eval_on_selector_all(CARDS, "bs => bs.map(b => b.dataset.asin)")


def _only_this_server(outside: list[str]) -> Callable[[Any], None]:
    """A Playwright route handler: requests to 127.0.0.1 go on; any other is aborted and its
    URL recorded in ``outside``."""

    def route(r) -> None:  # noqa: ANN001
        if urlsplit(r.request.url).hostname != "127.0.0.1":
            outside.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    return route


def _wait_ready(page, mode: str, fallback: bool) -> None:  # noqa: ANN001
    page.wait_for_selector(
        f'#gallery[data-state="ready"][data-mode="{mode}"][data-fallback="{str(fallback).lower()}"]'
    )


@pytest.mark.browser
def test_demo_in_headless_chromium(
    chromium: dict[str, Any], demo: str, world: World, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    errors: list[str] = []

    route = _only_this_server(outside)

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh user data dir: a first visit
            **chromium,
            viewport={"width": 1400, "height": 1000},
            timeout=60_000,
        )
        try:
            context.route("**/*", route)
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(demo + "/")

            # Arrival: an anonymous visitor of its own, the cold-start gallery, no ratings.
            page.wait_for_selector("body[data-ready=true]")
            _wait_ready(page, "best", fallback=True)
            visitor = page.inner_text("#visitor-id")
            assert re.fullmatch(r"web-[0-9a-f]{16}", visitor), visitor
            assert len(_gallery(page)) == 10
            assert page.locator("#rated li").count() == 0
            # Offline, every card shows the local placeholder.
            page.wait_for_function(
                """() => [...document.querySelectorAll('#gallery img')].every(
                    i => i.dataset.fallback === 'true' && i.complete && i.naturalWidth > 0)"""
            )

            # The top-K slider.
            page.fill("#k", "20")
            page.wait_for_function(
                "() => document.querySelectorAll('#gallery .card-button').length === 20"
            )
            assert page.inner_text("#k-value") == "20"

            # Select a product: its details.
            card = page.locator(CARDS).nth(2)
            asin = card.get_attribute("data-asin")
            title = card.locator(".card-title").inner_text()
            card.click()
            page.wait_for_selector(f'#details[data-asin="{asin}"]:not([hidden])')
            assert page.inner_text("#details-title") == title
            assert page.locator("#features li").count() > 0
            assert page.locator("#worst-review").is_hidden()  # best mode

            # Rate it: stored through the API, and the gallery re-ranks at once.
            before = _gallery(page)
            page.click('#stars .star[data-stars="5"]')
            _wait_ready(page, "best", fallback=False)
            page.wait_for_function(
                "before => [...document.querySelectorAll('#gallery .card-button')]"
                ".map(b => b.dataset.asin).join() !== before.join()",
                arg=before,
            )
            assert _gallery(page) != before
            page.wait_for_selector(f'#rated li[data-asin="{asin}"]')
            assert page.inner_text(f'#rated li[data-asin="{asin}"] .rated-stars') == "★★★★★"
            stored = httpx.get(f"{demo}/users/{visitor}/reviews", timeout=10).json()["reviews"]
            assert [(r["parent_asin"], r["rating"]) for r in stored] == [(asin, 5.0)]

            # Worst mode: the tag line, and a product's most helpful scathing review.
            page.click("#mode-worst")
            _wait_ready(page, "worst", fallback=False)
            assert page.inner_text("#tagline") == WORST_TAGLINE
            bad = page.locator(f"{CARDS}:has(.card-worst)").first
            bad_asin = bad.get_attribute("data-asin")
            bad.click()
            page.wait_for_selector(f'#details[data-asin="{bad_asin}"] #worst-review:not([hidden])')
            assert page.inner_text("#worst-excerpt").strip()
            review = httpx.get(f"{demo}/items/{bad_asin}", timeout=10).json()["worst_review"]
            assert page.inner_text("#worst-excerpt") == review["excerpt"]

            # Reload: the same visitor, the rating kept, the mode kept.
            page.reload()
            page.wait_for_selector("body[data-ready=true]")
            _wait_ready(page, "worst", fallback=False)
            assert page.inner_text("#visitor-id") == visitor
            page.wait_for_selector(f'#rated li[data-asin="{asin}"]')
            assert page.locator("#rated li").count() == 1
            assert page.inner_text("#tagline") == WORST_TAGLINE

            # Start over: a new visitor, nothing rated, the cold-start gallery again.
            page.click("#start-over")
            page.wait_for_function(
                "v => document.getElementById('visitor-id').textContent !== v", arg=visitor
            )
            _wait_ready(page, "worst", fallback=True)
            fresh = page.inner_text("#visitor-id")
            assert re.fullmatch(r"web-[0-9a-f]{16}", fresh) and fresh != visitor
            assert page.locator("#rated li").count() == 0
            assert page.locator("#details").is_hidden()
        finally:
            context.close()

    assert not errors, errors
    # The only requests to another host were product images of the catalog.
    images = set(
        pq.read_table(world.data_dir / TAG / "items.parquet", columns=["image"])["image"]
        .drop_null()
        .to_pylist()
    )
    assert outside, "no product image was even tried"
    assert set(outside) <= images, sorted(set(outside) - images)[:5]


@pytest.mark.browser
def test_api_docs_render_offline_and_try_it_out_answers(
    chromium: dict[str, Any], demo: str
) -> None:
    """/docs (Swagger UI) renders the OpenAPI 3.1 spec from this server's files alone, and "Try
    it out" on /recommendations, prefilled with the spec's example, gets a 200."""
    from playwright.sync_api import sync_playwright

    from deepcart.serve.api import EXAMPLE_USERS

    outside: list[str] = []
    errors: list[str] = []

    route = _only_this_server(outside)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(**chromium)
        try:
            page = browser.new_page()
            page.route("**/*", route)
            page.set_default_timeout(30_000)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(demo + "/docs")
            op = page.locator("#operations-recommendations-get_recommendations_recommendations_get")
            op.locator(".opblock-summary").click()
            op.locator(".try-out__btn").click()
            users = op.locator('tr[data-param-name="users"] input')
            assert users.input_value().split(",")[:2] == list(EXAMPLE_USERS)
            op.locator(".execute").click()
            status = op.locator(".live-responses-table tbody .response-col_status").first
            assert status.inner_text().strip() == "200"
            assert page.locator("text=Unable to render this definition").count() == 0
        finally:
            browser.close()
    assert not errors, errors
    assert not outside, outside
