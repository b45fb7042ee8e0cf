"""``deepcart deploy``: the web demo and the whole API from one uvicorn server.

The page (:mod:`deepcart.serve.ui`) is served by the very app ``deepcart serve`` runs
(:func:`deepcart.serve.api.create_app`), so it calls the documented endpoints and the same
service layer stores its ratings. ``--share`` adds a public link (:mod:`deepcart.serve.share`).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator

from deepcart.serve.api import create_app, prepare, run_server
from deepcart.serve.config import Settings, bound_to, url_of
from deepcart.serve.share import ShareTunnel
from deepcart.serve.store import ReviewStore

#: The demo's port unless --port or DEEPCART_PORT says otherwise (Gradio's, as the original).
DEFAULT_PORT = 7860


def _say(line: str) -> None:
    print(line, flush=True)  # flushed: a script or test reading a pipe sees the URL at once


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _term_is_interrupt() -> Iterator[None]:
    """SIGTERM ends the demo like Ctrl-C: uvicorn shuts down gracefully, then re-raises the
    signal, which lands here, so the tunnel and the store are closed and the exit code is 0."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def deploy(settings: Settings, *, share: bool = False, echo: Callable[[str], None] = _say) -> None:
    """Load the dataset and models (a problem is one line), print the URL, serve until
    interrupted. With ``share``, a public link is opened in the background."""
    state, sock = prepare(settings)
    settings = bound_to(settings, sock)
    worst = "" if "worst" in state.modes else " (worst mode off: no worst-mode model)"
    store = ReviewStore(settings.database_url())
    url = url_of(settings)
    echo(f"DeepCart demo: {url} ({state.describe()}{worst}; API docs at {url}/docs)")
    echo("Press Ctrl-C to stop it.")
    tunnel = ShareTunnel(settings.port, host=settings.host, echo=echo).start() if share else None
    try:
        with contextlib.suppress(KeyboardInterrupt), _term_is_interrupt():
            run_server(create_app(settings, state=state, store=store), settings, sock)
    finally:
        if tunnel is not None:
            tunnel.close()
        store.close()
        sys.stdout.flush()
