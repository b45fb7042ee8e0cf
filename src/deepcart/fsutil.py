"""Small file-system helpers: atomic writes and checksums."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from deepcart.errors import InputError


@contextlib.contextmanager
def atomic_path(final: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success rename it onto ``final`` atomically.

    On any exception the temporary file is removed and ``final`` is left untouched, so a reader
    never sees a half-written file under the final name. A file-system error about the temporary
    file or the rename (a folder that cannot be created or written, a full disk) becomes an
    :class:`InputError` naming ``final``, the path the caller chose, and the reason.
    """
    final = Path(final)
    tmp = None
    make_dirs(final.parent, f"cannot write {final}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix, dir=final.parent)
        os.close(fd)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are ordinary shared files
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise _cannot_write(final, exc) from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, final)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        if exc.filename in (tmp, str(tmp_path), str(final)):
            raise _cannot_write(final, exc) from None
        raise  # about another file (an input the caller reads): not ours to rename
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def make_dirs(path: str | Path, what: str) -> Path:
    """``mkdir -p path``; a failure (an ancestor that is a file, a read-only place) becomes an
    :class:`InputError` that starts with ``what`` and names the ancestor that is not a folder."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), path)
        raise InputError(f"{what}: {blocker} exists and is not a directory") from None
    except OSError as exc:
        raise InputError(f"{what}: {exc.strerror or exc}") from None
    return path


def check_dirs(path: str | Path, what: str) -> Path:
    """That ``mkdir -p path`` would not fail on an ancestor that is a file, without making any
    folder: a long job checks where it will write before it starts, not after its work (an
    :class:`InputError` that starts with ``what``, as :func:`make_dirs` raises)."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise InputError(f"{what}: {p} exists and is not a directory")
            break
    return path


def check_input_file(path: str | Path, flag: str, expected: str | None = None) -> Path:
    """``path`` as a Path if it is a file; else an :class:`InputError` naming ``flag``: no such
    file, a folder (saying what was ``expected``, when given), or not a file."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{flag}: no such file: {p}")
    if expected is not None and p.is_dir():
        raise InputError(f"{flag}: {p} is a directory, expected {expected}")
    if not p.is_file():
        raise InputError(f"{flag}: not a file: {p}")
    return p


def _cannot_write(final: Path, exc: OSError) -> InputError:
    return InputError(f"cannot write {final}: {exc.strerror or exc}")


def atomic_write_text(final: str | Path, text: str) -> None:
    with atomic_path(final) as tmp:
        tmp.write_text(text, encoding="utf-8")


def sha256_file(path: str | Path, block: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()
