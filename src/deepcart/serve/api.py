"""The FastAPI app: ``create_app(settings)``, its routers, and ``serve`` (uvicorn).

Routers, one per resource: health, users (``/random_users``, ``/check_users``,
``/users/{id}/reviews``), recommendations (``/recommendations``,
``/users/{id}/recommendations``), items (``/items/{parent_asin}``) and admin (``/reload_data``,
``/reload_model``), plus the web demo's page at ``/`` (:mod:`deepcart.serve.ui`). Their
dependencies (:func:`get_state`, :func:`get_store`, :func:`get_writer`, :func:`get_batcher`,
:func:`get_settings`, :func:`require_admin`) are declared once here and injected, so tests can
override them.

The state (dataset, models, lookups) is loaded once, in the app's lifespan, and swapped whole
by the reload endpoints (:mod:`deepcart.serve.state`). Every error is JSON of one shape,
``{"message": "...", "detail": ...}`` (:class:`~deepcart.serve.schemas.ErrorOut`): 422 for bad
input (``message`` names the parameter, ``detail`` lists the problems), 404 for an unknown
item, 409 for a refused reload or an unavailable mode, 401/403 for the admin endpoints; an
unexpected error is a 500 (it is logged), never a traceback. ``/docs`` loads its files from
this server (:mod:`deepcart.serve.docs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from deepcart import __version__
from deepcart.data.schema import USER_ID
from deepcart.errors import DeepCartError
from deepcart.serve.config import Settings, bound_to, listen_on, settings_env, url_of
from deepcart.serve.docs import mount_docs
from deepcart.serve.schemas import (
    ASIN_PATTERN,
    MAX_K,
    MAX_N,
    MAX_USERS,
    USER_ID_PATTERN,
    ErrorOut,
    Health,
    Item,
    ItemDetail,
    Mode,
    ReloadResult,
    Review,
    ReviewIn,
    UserRecommendations,
    UserReviews,
    ValidationErrorOut,
)
from deepcart.serve.state import (
    FoldInBatcher,
    ModeUnavailable,
    ReloadRefused,
    ServingState,
    StateHolder,
    freeze_heap,
    load_state,
)
from deepcart.serve.store import GroupCommitter, ReviewStore, StoredReview, StoreError, now_ms
from deepcart.serve.ui import mount_ui

log = logging.getLogger(__name__)

#: The largest request body accepted (a review's longest title and text, escaped, fit in it).
MAX_BODY_BYTES = 256 * 1024


#: The response header naming the state version an answer came from (``/health``'s version).
VERSION_HEADER = "X-DeepCart-Version"


class JSONBytes(Response):
    """A JSON response serialized by orjson (the hot endpoints skip response validation)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _answer(state: ServingState, content: Any, status_code: int = 200) -> JSONBytes:
    """A hot endpoint's answer, with the state version it came from (as :func:`get_state`
    sets it on the answers FastAPI builds)."""
    return JSONBytes(content, status_code=status_code, headers={VERSION_HEADER: str(state.version)})


# ------------------------------------------------------------------------------ dependencies
# (async: FastAPI runs a plain ``def`` dependency in its thread pool, a hop per request)


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_state(request: Request, response: Response) -> ServingState:
    """The state this request uses from start to end (a reload swaps in a new one for later
    requests). Its answer says which state it came from (``X-DeepCart-Version``), so that a
    client caching product details knows when they are stale (the demo page does)."""
    state = request.app.state.holder.state
    response.headers[VERSION_HEADER] = str(state.version)
    request.state.deepcart_version = state.version  # for an error answer drawn from it too
    return state


async def get_holder(request: Request) -> StateHolder:
    return request.app.state.holder


async def get_store(request: Request) -> ReviewStore:
    return request.app.state.store


async def get_writer(request: Request) -> GroupCommitter:
    return request.app.state.writer


async def get_batcher(request: Request) -> FoldInBatcher:
    return request.app.state.batcher


_bearer = HTTPBearer(auto_error=False, description="the server's DEEPCART_ADMIN_TOKEN")


async def require_admin(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> None:
    """The reload endpoints need ``Authorization: Bearer <DEEPCART_ADMIN_TOKEN>``; without a
    configured token they are off."""
    token = settings.admin_token
    if token is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "the admin endpoints are off: start the server with DEEPCART_ADMIN_TOKEN set",
        )
    given = credentials.credentials.encode() if credentials is not None else b""
    if not secrets.compare_digest(given, token.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong bearer token (Authorization: Bearer <DEEPCART_ADMIN_TOKEN>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


StateDep = Annotated[ServingState, Depends(get_state)]
StoreDep = Annotated[ReviewStore, Depends(get_store)]
BatcherDep = Annotated[FoldInBatcher, Depends(get_batcher)]
#: Ids of the quickstart dataset (``deepcart quickstart``: synthetic, seed 0), so "Try it out" in
#: /docs answers with real recommendations there; NEWVISITOR is a user it does not know.
EXAMPLE_USERS = ("A00HWPMJ697U5RX89G73IGLYF3F6", "A00PBA9G7WFZKL5SMBSOQBU1Q178")
EXAMPLE_ITEM = "B075OXD75F"


def _example(value: str) -> dict[str, Any]:
    """A parameter's example, for the spec's JSON schema and for Swagger UI's "Try it out"."""
    summary = "from the quickstart dataset"
    return {
        "examples": [value],
        "openapi_examples": {"quickstart": {"summary": summary, "value": value}},
    }


UserPath = Annotated[
    str, Path(pattern=USER_ID_PATTERN, description="a user id", **_example(EXAMPLE_USERS[0]))
]
KQuery = Annotated[int, Query(ge=1, le=MAX_K, description=f"recommendations (1 to {MAX_K})")]
ModeQuery = Annotated[
    Mode, Query(description="best: what the user will like; worst: what they would most hate")
]
UsersQuery = Annotated[
    str,
    Query(
        min_length=1,
        max_length=MAX_USERS * 129,
        description=f"comma-separated user ids (at most {MAX_USERS})",
        **_example(",".join((*EXAMPLE_USERS, "NEWVISITOR"))),
    ),
]

_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ValidationErrorOut, "description": "bad input; `message` names the parameter"}
}


def _invalid(where: str, name: str, msg: str, value: Any = None) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": (where, name), "msg": msg, "input": value}]
    )


async def one_value_each(request: Request) -> None:
    """Query parameters, checked before the endpoint's own: one given twice is a 422
    (otherwise the last would silently win, and ``users=a&users=b`` would answer for b alone),
    and so is one the endpoint does not know, where it takes any (a misspelt ``top_k=50`` would
    otherwise answer with the default ``k``). Endpoints without query parameters (``/health``)
    ignore them all, as a tracking ``utm=...`` expects."""
    params = request.query_params
    if not params:
        return
    dependant = getattr(request.scope.get("route"), "dependant", None)
    known = sorted({p.alias for p in getattr(dependant, "query_params", ())})
    if not known:
        return
    for name in params:
        if name not in known:
            raise _invalid(
                "query",
                name,
                f"unknown query parameter; this endpoint takes {', '.join(known)}",
                params[name],
            )
    if len(params.multi_items()) == len(params):  # len: distinct names
        return
    for name in known:
        if len(found := params.getlist(name)) > 1:
            hint = " (several users: one list, users=a,b)" if name == "users" else ""
            raise _invalid("query", name, f"given {len(found)} times; give it once{hint}")


def parse_users(text: str) -> list[str]:
    """The user ids of a ``users=a,b`` list (order kept, duplicates dropped) or a 422."""
    ids = [u.strip() for u in text.split(",")]
    if len(ids) > MAX_USERS:
        raise _invalid("query", "users", f"at most {MAX_USERS} user ids, got {len(ids)}")
    for u in ids:
        if not USER_ID.fullmatch(u):
            shown = u if len(u) <= 40 else u[:40] + "..."
            raise _invalid(
                "query",
                "users",
                f"{shown!r} is not a user id (1-128 letters, digits or _ . : @ + = -)",
            )
    return list(dict.fromkeys(ids))


async def _stored_ratings(store: ReviewStore, users: list[str]) -> dict[str, Any]:
    # SQLite answers a keyed read in microseconds: no thread hop. A networked database might
    # take longer, so its reads leave the event loop.
    if store.is_sqlite:
        return store.ratings(users)
    return await run_in_threadpool(store.ratings, users)


# ------------------------------------------------------------------------------ routers

health = APIRouter(tags=["health"])


@health.get("/health", response_model=Health)
@health.head("/health", response_model=Health, include_in_schema=False)  # a load balancer's probe
async def get_health(state: StateDep) -> dict[str, Any]:
    """Liveness and what is loaded (HEAD too: a load balancer's probe)."""
    return {
        "status": "ok",
        "pid": os.getpid(),
        "version": state.version,
        "loaded_at": state.loaded_at,
        "data_tag": state.dataset.tag,
        "model": state.settings.type,
        "modes": state.modes,
        "users": len(state.user_ids),
        "items": len(state.item_ids),
    }


users = APIRouter(tags=["users"], responses=_ERRORS)


@users.get("/random_users", response_model=list[str])
async def random_users(
    state: StateDep,
    n: Annotated[int, Query(ge=1, le=MAX_N, description=f"how many (1 to {MAX_N})")] = 5,
) -> list[str]:
    """Random users from the training data (fewer when there are fewer)."""
    return state.random_users(n)


@users.get("/check_users", response_model=dict[str, bool])
async def check_users(users: UsersQuery, state: StateDep, store: StoreDep) -> dict[str, bool]:
    """For each user: whether the service knows them (training data or stored reviews)."""
    ids = parse_users(users)
    stored = await _stored_ratings(store, [u for u in ids if not state.is_known(u)])
    return {u: state.is_known(u) or u in stored for u in ids}


@users.post(
    "/users/{user_id}/reviews",
    response_model=Review,
    status_code=status.HTTP_201_CREATED,
    responses={
        400: {"model": ErrorOut, "description": "the body is not UTF-8 JSON"},
        404: {"model": ErrorOut, "description": "unknown item"},
        413: {"model": ErrorOut, "description": "the body is over 256 KiB"},
    },
)
async def post_review(
    user_id: UserPath,
    review: ReviewIn,
    state: StateDep,
    writer: Annotated[GroupCommitter, Depends(get_writer)],
) -> Response:
    """Store a review (a second one of the same item replaces the first); the user's
    recommendations take it into account at once. Answered once it is committed to disk."""
    if state.item(review.parent_asin) is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"parent_asin: unknown item {review.parent_asin!r}"
        )
    stored = StoredReview(
        user_id=user_id,
        parent_asin=review.parent_asin,
        rating=float(review.rating),
        title=review.title,
        text=review.text,
        timestamp=now_ms(),
    )
    await asyncio.wrap_future(writer.submit(stored))
    return _answer(state, stored.as_dict(), status.HTTP_201_CREATED)


@users.get("/users/{user_id}/reviews", response_model=UserReviews)
async def get_reviews(user_id: UserPath, state: StateDep, store: StoreDep) -> dict[str, Any]:
    """The reviews a user submitted here, and how many ratings they have in the training data."""
    stored = await run_in_threadpool(store.reviews, user_id)
    return {
        "user_id": user_id,
        "known": state.is_known(user_id),
        "training_ratings": state.training_count(user_id),
        "reviews": [r.as_dict() for r in stored],
    }


recommendations = APIRouter(tags=["recommendations"], responses=_ERRORS)
_MODE_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "worst mode asked for but no worst-mode model"}
}


@recommendations.get(
    "/recommendations", response_model=dict[str, list[Item]], responses=_MODE_ERRORS
)
async def get_recommendations(
    users: UsersQuery,
    state: StateDep,
    store: StoreDep,
    batcher: BatcherDep,
    k: KQuery = 10,
    mode: ModeQuery = "best",
) -> Response:
    """``{"user": [items...]}`` for each listed user, best first. Unknown users get the
    cold-start list (every item flagged ``fallback``)."""
    ids = parse_users(users)
    stored = await _stored_ratings(store, ids)
    # Every list is asked for before the first wait: this request's fold-ins go in one batch.
    lists = [batcher.submit(state, u, stored.get(u, ()), k, mode) for u in ids]
    out = {}
    for u, recs in zip(ids, lists, strict=True):
        if isinstance(recs, asyncio.Future):
            recs = await recs
        out[u] = orjson.Fragment(recs.json)
    return _answer(state, out)


@recommendations.get(
    "/users/{user_id}/recommendations", response_model=UserRecommendations, responses=_MODE_ERRORS
)
async def get_user_recommendations(
    user_id: UserPath,
    state: StateDep,
    store: StoreDep,
    batcher: BatcherDep,
    k: KQuery = 10,
    mode: ModeQuery = "best",
) -> Response:
    """One user's list, with whether it is the cold-start fallback."""
    stored = await _stored_ratings(store, [user_id])
    recs = batcher.submit(state, user_id, stored.get(user_id, ()), k, mode)
    if isinstance(recs, asyncio.Future):
        recs = await recs
    return _answer(
        state,
        {
            "user_id": user_id,
            "mode": mode,
            "k": k,
            "known": state.is_known(user_id),
            "fallback": recs.fallback,
            "items": orjson.Fragment(recs.json),
        },
    )


items = APIRouter(tags=["items"])


@items.get(
    "/items/{parent_asin}",
    response_model=ItemDetail,
    responses={404: {"model": ErrorOut, "description": "unknown item"}, **_ERRORS},
)
async def get_item(
    parent_asin: Annotated[
        str, Path(pattern=ASIN_PATTERN, description="a parent_asin", **_example(EXAMPLE_ITEM))
    ],
    state: StateDep,
) -> dict[str, Any]:
    """A product of the catalog, its number of training ratings and its worst review."""
    item = state.item(parent_asin)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"parent_asin: unknown item {parent_asin!r}")
    return item


admin = APIRouter(
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={
        401: {"model": ErrorOut, "description": "missing or wrong bearer token"},
        403: {"model": ErrorOut, "description": "no DEEPCART_ADMIN_TOKEN configured"},
        409: {"model": ErrorOut, "description": "refused: the old state keeps serving"},
    },
)


async def _reload(holder: StateHolder, what: str) -> dict[str, Any]:
    new, seconds = await holder.reload(what)
    return {
        "status": f"{what.capitalize()} reloaded successfully.",
        "version": new.version,
        "seconds": round(seconds, 3),
        "detail": f"serving {new.describe()}",
    }


@admin.post("/reload_data", response_model=ReloadResult)
async def reload_data(holder: Annotated[StateHolder, Depends(get_holder)]) -> dict[str, Any]:
    """Re-read the dataset (and its models) and swap them in atomically; requests in flight
    finish on the old state. A broken or mismatched artifact is refused (409), the old state
    stays."""
    return await _reload(holder, "data")


@admin.post("/reload_model", response_model=ReloadResult)
async def reload_model(holder: Annotated[StateHolder, Depends(get_holder)]) -> dict[str, Any]:
    """Re-read the production models and swap them in atomically (see ``/reload_data``)."""
    return await _reload(holder, "model")


#: Every router of the API, included without a prefix.
ROUTERS = (health, users, recommendations, items, admin)


# ------------------------------------------------------------------------------ errors


def _where(loc: Any) -> str:
    parts = [str(p) for p in (loc or ())]
    if len(parts) > 1:
        return ".".join(parts[1:])
    return parts[0] if parts else "request"


def _not_json(request: Request, err: dict[str, Any]) -> str | None:
    """The Content-Type of a body FastAPI did not parse as JSON (so it is not an object), for
    a message that says so rather than "should be a valid dictionary"."""
    ctype = request.headers.get("content-type")
    if tuple(err.get("loc", ())) != ("body",) or err.get("type") != "model_attributes_type":
        return None
    media = (ctype or "").split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return None
    return f"Content-Type: {ctype}" if ctype else "no Content-Type"


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        name = "body" if err.get("type") == "json_invalid" else _where(err.get("loc"))
        msg = err.get("msg", "")
        if (ctype := _not_json(request, err)) is not None:
            msg = f"expected JSON (Content-Type: application/json), got {ctype}"
        errors.append({"loc": [str(p) for p in err.get("loc", ())], "msg": msg})
        errors[-1]["name"] = name
    first = errors[0] if errors else {"name": "request", "msg": "invalid request"}
    return error_response(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        f"{first['name']}: {first['msg']}",
        errors,
        request=request,
    )


def error_response(
    code: int,
    message: str,
    detail: Any = None,
    headers: dict[str, str] | None = None,
    request: Request | None = None,
) -> JSONResponse:
    """Every error's body: ``{"message": one line, "detail": a 422's problems, else message}``
    (:class:`~deepcart.serve.schemas.ErrorOut`). An answer whose request read the serving state
    (an unknown item, worst mode off) says which one, as a success does (``X-DeepCart-Version``)."""
    body = {"message": message, "detail": message if detail is None else detail}
    version = getattr(request.state, "deepcart_version", None) if request is not None else None
    if version is not None:
        headers = {**(headers or {}), VERSION_HEADER: str(version)}
    return JSONResponse(body, status_code=code, headers=headers)


def _error(code: int) -> Callable[[Request, Exception], Any]:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return error_response(code, str(exc), request=request)

    return handler


#: FastAPI's 400 for a body its JSON parser raised on with something other than a JSON error
#: (bytes that are not UTF-8, a RecursionError): it names nothing.
_FASTAPI_BODY_ERROR = "There was an error parsing the body"


def _allowed_methods(request: Request) -> str | None:
    """The ``Allow`` header of a 405: the methods of every route of the path. (Starlette names
    only the first route it tried: ``Allow: POST`` on ``/users/{id}/reviews``, which GET
    reads too.)"""
    methods: set[str] = set()
    for route in (r for router in ROUTERS for r in router.routes):  # included without a prefix
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods)) or None


async def _on_http_error(request: Request, exc: Exception) -> Response:
    """HTTPExceptions (ours, and Starlette's 404/405 for unknown paths and methods)."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code in (204, 304):  # no body allowed
        return Response(status_code=exc.status_code, headers=exc.headers)
    headers = exc.headers
    if exc.status_code == 405 and (allow := _allowed_methods(request)):
        headers = {**(headers or {}), "Allow": allow}
    detail = str(exc.detail)
    if exc.status_code == 400 and detail == _FASTAPI_BODY_ERROR:
        detail = "body: not readable as JSON (not UTF-8, compressed, or nested too deep)"
    return error_response(exc.status_code, detail, headers=headers, request=request)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, f"internal error ({type(exc).__name__}); it was logged")


class _TooLarge(HTTPException):
    """A body over the limit, found while it is read: an HTTPException, so that FastAPI's body
    parsing passes it on (as a 413) instead of turning it into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body too large: at most {limit:,} bytes")


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with a JSON 413 (a declared Content-Length is
    checked before anything is read; a chunked body is counted as it arrives)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.limit:
                    await self._refuse(scope, receive, send)
                    return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge(self.limit)
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, scope: Any, receive: Any, send: Any) -> None:
        await error_response(413, str(_TooLarge(self.limit).detail))(scope, receive, send)


# ------------------------------------------------------------------------------ the app


def _one_blas_thread() -> Any:
    """One BLAS thread: a request scores one row, where BLAS threads only add overhead (4x
    slower fold-in on 2 cores) and compete with the event loop."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with the serve extra
        return None
    return threadpool_limits(limits=1, user_api="blas")


def prepare(settings: Settings) -> tuple[ServingState, socket.socket]:
    """What ``serve`` and ``deploy`` do before starting the server, so that a problem is one line
    before anything is printed: listen on the port (held from now on: see
    :func:`~deepcart.serve.config.listen_on`), then load the dataset and models (with one BLAS
    thread, as the server will score). Returns the state and the listening socket, which
    :func:`run_server` hands to uvicorn."""
    sock = listen_on(settings.host, settings.port)
    limiter = _one_blas_thread()
    try:
        return load_state(settings), sock
    except BaseException:
        sock.close()
        raise
    finally:
        if limiter is not None:
            limiter.restore_original_limits()


def run_server(app: FastAPI, settings: Settings, sock: socket.socket) -> None:
    """Serve ``app`` with uvicorn on the socket :func:`prepare` holds, until interrupted;
    exit with uvicorn's startup-failure status (3) when the app does not start."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
    )
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if not server.started:
        sys.exit(3)


#: How often a worker checks whether another worker reloaded (StateHolder.follow).
FOLLOW_SECONDS = 1.0


async def _follow_reloads(holder: StateHolder) -> None:
    while True:
        await asyncio.sleep(FOLLOW_SECONDS)
        try:
            await holder.follow()
        except Exception:  # a database hiccup must not end the loop
            log.exception("checking for reloads by other workers failed")


def create_app(
    settings: Settings, state: ServingState | None = None, store: ReviewStore | None = None
) -> FastAPI:
    """The service for ``settings``. ``state`` and ``store``, when given, are used instead of
    loading them in the lifespan (``serve`` loads them first to fail fast with one line)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limiter = _one_blas_thread()
        own_store = store is None
        try:
            current = state or await run_in_threadpool(load_state, settings)
            db = store or ReviewStore(settings.database_url())
            writer = GroupCommitter(db)
            app.state.settings = settings
            app.state.holder = holder = StateHolder(settings, current, db)
            app.state.store = db
            app.state.writer = writer
            app.state.batcher = FoldInBatcher()
            follower = asyncio.create_task(_follow_reloads(holder))
            gc.collect()  # the loading's garbage, before the rest is frozen
            freeze_heap()
            try:
                yield
            finally:
                follower.cancel()
                gc.unfreeze()
                writer.close()
                if own_store:
                    db.close()
        finally:
            if limiter is not None:
                limiter.restore_original_limits()

    app = FastAPI(
        title="DeepCart",
        version=__version__,
        summary="Recommendations and anti-recommendations from Amazon reviews.",
        description="Recommendations for known and new users (fold-in of the reviews they "
        "submit, no retraining), worst mode (engaged products a user would most hate, each "
        "with its most helpful low-rated review), and every submitted review kept in a "
        "database.",
        lifespan=lifespan,
        docs_url=None,  # mount_docs: Swagger UI from local files, not a CDN
        redoc_url=None,  # ReDoc loads its logo from a CDN
    )
    for router in ROUTERS:
        app.include_router(router, dependencies=[Depends(one_value_each)])
    mount_ui(app)  # the web demo at /, on the same endpoints (deepcart deploy)
    mount_docs(app)
    document_version_header(app, ROUTERS)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(ModeUnavailable, _error(status.HTTP_409_CONFLICT))
    app.add_exception_handler(ReloadRefused, _error(status.HTTP_409_CONFLICT))
    app.add_exception_handler(StoreError, _error(status.HTTP_503_SERVICE_UNAVAILABLE))
    app.add_exception_handler(DeepCartError, _error(status.HTTP_400_BAD_REQUEST))
    app.add_exception_handler(Exception, _on_unexpected)
    return app


def _uses_state(dependant: Any) -> bool:
    return any(d.call is get_state or _uses_state(d) for d in dependant.dependencies)


def document_version_header(app: FastAPI, routers: tuple[APIRouter, ...]) -> None:
    """Add ``X-DeepCart-Version`` to the OpenAPI spec's success answer of every operation of
    ``routers`` (included without a prefix) that reads the serving state (FastAPI does not see
    headers set in a dependency)."""
    build = app.openapi
    header = {
        "description": "the serving state this answer came from (/health's version; it "
        "increases with every reload): product details cached under an older one are stale",
        "schema": {"type": "string"},
    }

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        for route in (r for router in routers for r in router.routes):
            if not isinstance(route, APIRoute) or not _uses_state(route.dependant):
                continue
            for method in route.methods:
                op = spec["paths"].get(route.path_format, {}).get(method.lower())
                answer = op and op["responses"].get(str(route.status_code or 200))
                if answer is not None:
                    answer.setdefault("headers", {})[VERSION_HEADER] = header
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def app_from_env() -> FastAPI:
    """An app configured by ``DEEPCART_*`` variables alone: what each worker process of
    ``deepcart serve --workers N`` runs, and what another ASGI server can run
    (``uvicorn --factory deepcart.serve.api:app_from_env``)."""
    from deepcart.serve.config import load_settings

    return create_app(load_settings())


def serve(settings: Settings, echo: Callable[[str], None] = print) -> None:
    """``deepcart serve``: listen on the port and load everything (a problem is one line), then
    run uvicorn."""
    state, sock = prepare(settings)
    settings = bound_to(settings, sock)
    store = ReviewStore(settings.database_url())
    url = url_of(settings)
    workers = f", {settings.workers} workers" if settings.workers > 1 else ""
    echo(
        f"Serving {state.describe()} at {url}{workers} "
        f"(docs: {url}/docs; reviews: {store.url!r}; "
        f"admin endpoints {'on' if settings.admin_token else 'off'})"
    )
    with contextlib.suppress(KeyboardInterrupt):
        if settings.workers == 1:
            run_server(create_app(settings, state=state, store=store), settings, sock)
        else:
            # Worker processes build their app from the environment (app_from_env): hand them
            # these settings as DEEPCART_* variables. What was loaded here was the check.
            # uvicorn's supervisor binds the port itself: release it just before.
            del state
            store.close()
            sock.close()
            os.environ.update(settings_env(settings))
            import uvicorn

            uvicorn.run(
                "deepcart.serve.api:app_from_env",
                factory=True,
                workers=settings.workers,
                host=settings.host,
                port=settings.port,
                log_level=settings.log_level,
                access_log=False,
            )
    store.close()
