"""Schemathesis against /openapi.json: generated requests, valid and not, never get a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    status_code_conformance,
)

from deepcart.serve.api import create_app  # noqa: E402
from deepcart.serve.config import load_settings  # noqa: E402

from .conftest import World  # noqa: E402

# The spec does not depend on the data: an app that is never started gives it at import time.
schema = schemathesis.openapi.from_dict(
    create_app(load_settings(data_tag="spec", type="als")).openapi()
)


@pytest.fixture(scope="module")
def asgi_app(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The served app, started (and stopped) here; schemathesis only sends it HTTP requests."""
    db = tmp_path_factory.mktemp("fuzz") / "reviews.db"
    app = create_app(world.settings(Path(db)))

    async def http_only(scope, receive, send):  # noqa: ANN001, ANN202
        if scope["type"] == "lifespan":  # schemathesis' own startup: the app is up already
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await app(scope, receive, send)

    with TestClient(app):
        yield http_only


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case: schemathesis.Case, asgi_app: object) -> None:
    response = case.call(app=asgi_app)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text)
    assert "Traceback" not in response.text
    case.validate_response(response, checks=[status_code_conformance, content_type_conformance])
