"""The few exception types DeepCart raises on purpose.

Everything a user can cause (a missing file, a bad flag value, a malformed input line) raises a
:class:`DeepCartError`; the CLI prints its message on one line and exits with code 2, the API turns
it into a 4xx JSON answer. Any other exception reaching a user is a bug.
"""

from __future__ import annotations

from pathlib import Path


class DeepCartError(Exception):
    """Base class: an error the user can fix; its message says what, where and what was expected."""


class InputError(DeepCartError):
    """A bad argument or a missing/unreadable input file."""


class FitDiverged(InputError):
    """A fit whose numbers ran away (NaN or infinite): the hyperparameters (a learning rate, a
    confidence weight, a regularization) are outside what the data can take."""


class DataFormatError(DeepCartError):
    """A malformed record in an input file, located by file and line number."""

    def __init__(self, path: str | Path, line: int | None, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class DownloadError(DeepCartError):
    """A download failed (offline, HTTP error, size mismatch)."""
