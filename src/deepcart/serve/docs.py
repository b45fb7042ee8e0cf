"""The API's documentation page, ``/docs`` (Swagger UI), with its script, stylesheet and icon
served by this server, so it works offline like the web demo.

FastAPI's own page loads them from a CDN. The files come from the ``fastapi-offline`` package
(``serve`` extra), whose Swagger UI 5 renders the OpenAPI 3.1 spec FastAPI writes
(``swagger-ui-bundle`` ships Swagger UI 4, which cannot). There is no ``/redoc``: ReDoc fetches
its logo from its vendor's CDN.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

#: Where the pages' files are served.
ASSETS_URL = "/docs-assets"
#: The files served there (nothing else of the package).
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
#: Swagger UI's settings: FastAPI's defaults, without the badge fetched from validator.swagger.io.
SWAGGER_PARAMETERS = {"validatorUrl": None}


def assets_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


class _Assets(StaticFiles):
    async def get_response(self, path: str, scope):  # noqa: ANN001, ANN201
        if path not in ASSETS:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no such file: {ASSETS_URL}/{path}")
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response


def mount_docs(app: FastAPI) -> None:
    """``/docs`` and ``/docs/oauth2-redirect`` on local files (for an app made with
    ``docs_url=None, redoc_url=None``); left out of the OpenAPI spec."""
    where = assets_dir()
    missing = [f for f in ASSETS if not (where / f).is_file()]
    if missing:  # pragma: no cover - a broken install
        raise RuntimeError(f"the API docs' files are missing from {where}: {', '.join(missing)}")
    app.mount(ASSETS_URL, _Assets(directory=where), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")  # behind a proxy that strips a prefix
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=root + redirect_url,
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
