"""Progress bars for long fits: one helper, so every model shows them the same way.

A bar (tqdm) goes to stderr, so stdout keeps only the result lines. It is shown

- on a terminal only (tqdm's ``disable=None``: a pipe or a log file gets no bar),
- only once the work has taken more than :data:`DELAY_S` seconds (a tiny fit prints nothing),
- only while progress is on: :func:`progress_enabled` turns it off for a block of code (the
  CLI's ``--quiet``: ``deepcart train --quiet``), and a model can turn its own bar off (the
  neural models' ``progress`` hyperparameter),

and it disappears when the work is done (``leave=False``): what stays is the summary line.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

#: Seconds of work before a bar appears.
DELAY_S = 1.0

_enabled: ContextVar[bool] = ContextVar("deepcart_progress", default=True)


@contextlib.contextmanager
def progress_enabled(on: bool) -> Iterator[None]:
    """Show (``on``) or hide the progress bars of the work done inside the block."""
    token = _enabled.set(bool(on))
    try:
        yield
    finally:
        _enabled.reset(token)


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str,
    unit: str = "it",
    show: bool = True,
) -> Any:
    """A tqdm bar on stderr over ``iterable`` (or ``total`` steps, advanced with ``update``),
    hidden unless progress is on, ``show`` is true and stderr is a terminal; use it as a
    context manager or ``close()`` it."""
    from tqdm.auto import tqdm

    on = bool(show) and _enabled.get()
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=None if on else True,
        delay=DELAY_S,
        leave=False,
        dynamic_ncols=True,
    )
