"""The web demo: one HTML page, one stylesheet, one script and a placeholder image, served by the
API's own app (``/`` and ``/ui/...``), so the page calls the very endpoints the API documents.

No framework, no build step and nothing from another host: the page works offline, and its
Content-Security-Policy (:data:`CSP`) lets it load scripts, styles and data from this server
only; product images may come from any ``https:`` host (they fall back to the local
placeholder when they do not load).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException, status
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

#: The folder of the page's files (package data).
UI_DIR = Path(__file__).resolve().parent
#: The page's files, served under ``/ui/``.
FILES = ("index.html", "app.css", "app.js", "placeholder.svg")
#: Everything from this server; product images from other hosts too (the 2014 and 2018 metadata
#: has http:// image URLs); no plugins, no framing.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: http:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
#: Headers of every response of the page and its files.
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class _UIFiles(StaticFiles):
    """The page's static files, with :data:`HEADERS` and revalidation on every load (the
    files are small; a new version of the package shows at once). Only :data:`FILES` are
    served, never the package's Python files."""

    async def get_response(self, path: str, scope):  # noqa: ANN001, ANN201
        if path not in FILES:  # not the package's Python files
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no such file: /ui/{path}")
        response = await super().get_response(path, scope)
        response.headers.update(HEADERS)
        response.headers["Cache-Control"] = "no-cache"
        return response


def mount_ui(app: FastAPI) -> None:
    """Serve the page at ``/`` and its files under ``/ui/`` (left out of the OpenAPI spec)."""
    missing = [f for f in FILES if not (UI_DIR / f).is_file()]
    if missing:  # pragma: no cover - a broken install
        raise RuntimeError(f"the web demo's files are missing from {UI_DIR}: {', '.join(missing)}")

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(
            UI_DIR / "index.html",
            media_type="text/html; charset=utf-8",
            headers={**HEADERS, "Cache-Control": "no-cache"},
        )

    app.mount("/ui", _UIFiles(directory=UI_DIR), name="ui")
