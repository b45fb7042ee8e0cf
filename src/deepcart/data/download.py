"""Download the official Amazon Reviews 2023 raw files of a category.

The dataset's site serves, under its ``raw/`` root::

    review_categories/<Category>.jsonl.gz        (reviews)
    meta_categories/meta_<Category>.jsonl.gz     (item metadata)

and :func:`download_category` saves them under the same file names in the output directory.

Each file is fetched by :func:`download_file`, which is safe to interrupt and to run again:

- bytes go to ``<final>.part`` beside the final file; a later run (or a retry after a dropped
  connection) resumes from the bytes already there with ``Range: bytes=N-``. A ``206`` answer must
  start at ``N``; a ``200`` answer (a server that ignores ``Range``) starts over from byte 0; a
  ``416`` answer means the part file is already whole (checked against the size the server states);
- ``<final>.part.source`` records where the part's bytes came from: the URL and the file's
  validator (its strong ``ETag``, else its ``Last-Modified``), sent back as ``If-Range`` when
  resuming, so that a file changed on the server since is fetched again from byte 0 (the server
  answers 200) instead of being appended to the old bytes. A part file without its record (left
  by something else, or by another URL) is not resumed but started over;
- a dropped connection (short body, reset, timeout mid-body) is retried with a small backoff; the
  download gives up after :data:`RETRIES` consecutive attempts that added no bytes;
- the size on disk must equal the size the server announced (``Content-Length`` or the total of
  ``Content-Range``); otherwise :class:`~deepcart.errors.DownloadError` is raised and the part
  file is kept for a later resume;
- a ``.gz`` file must begin with gzip's magic bytes (a mirror or proxy answering ``200`` with an
  HTML page would pass the size check); otherwise the part file is deleted and nothing is kept;
- only a complete file is fsynced and renamed onto the final name (``os.replace``, atomic), so a
  reader never sees a half-written file under the final name;
- a final file that already has the size the server states (``HEAD``) is skipped.

Every failure a user can meet (offline, DNS, refused connection, HTTP 404, a size mismatch) is a
one-line :class:`~deepcart.errors.DownloadError`; a bad category or argument is an
:class:`~deepcart.errors.InputError`.

The network modules and tqdm are imported inside the functions that use them, so that importing
this module (the CLI does so to show :data:`DEFAULT_BASE_URL` in ``--help``) stays cheap.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from deepcart import __version__
from deepcart.errors import DownloadError, InputError

__all__ = [
    "CATEGORIES",
    "DEFAULT_BASE_URL",
    "category_files",
    "check_category",
    "download_category",
    "download_file",
    "part_path",
]

logger = logging.getLogger(__name__)

#: Root of the raw files of Amazon Reviews 2023 (McAuley lab, UCSD).
DEFAULT_BASE_URL = "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_2023/raw/"

#: The 34 category names of Amazon Reviews 2023, as spelled in its file names.
CATEGORIES: tuple[str, ...] = (
    "All_Beauty",
    "Amazon_Fashion",
    "Appliances",
    "Arts_Crafts_and_Sewing",
    "Automotive",
    "Baby_Products",
    "Beauty_and_Personal_Care",
    "Books",
    "CDs_and_Vinyl",
    "Cell_Phones_and_Accessories",
    "Clothing_Shoes_and_Jewelry",
    "Digital_Music",
    "Electronics",
    "Gift_Cards",
    "Grocery_and_Gourmet_Food",
    "Handmade_Products",
    "Health_and_Household",
    "Health_and_Personal_Care",
    "Home_and_Kitchen",
    "Industrial_and_Scientific",
    "Kindle_Store",
    "Magazine_Subscriptions",
    "Movies_and_TV",
    "Musical_Instruments",
    "Office_Products",
    "Patio_Lawn_and_Garden",
    "Pet_Supplies",
    "Software",
    "Sports_and_Outdoors",
    "Subscription_Boxes",
    "Tools_and_Home_Improvement",
    "Toys_and_Games",
    "Video_Games",
    "Unknown",
)

#: Which files of a category exist: name -> (folder under the raw root, file name pattern).
_KINDS: dict[str, tuple[str, str]] = {
    "reviews": ("review_categories", "{category}.jsonl.gz"),
    "meta": ("meta_categories", "meta_{category}.jsonl.gz"),
}

#: Consecutive attempts that add no bytes before a download gives up.
RETRIES = 5
#: First pause between attempts, in seconds; doubled after each attempt without progress.
BACKOFF_S = 0.5
_MAX_BACKOFF_S = 8.0
_CHUNK = 1 << 20
_TRANSIENT_HTTP = frozenset({408, 429, 500, 502, 503, 504})
_OFFLINE_HINT = "are you offline? use --base-url to point at a mirror"
_USER_AGENT = f"deepcart/{__version__}"
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)", re.IGNORECASE)


# --------------------------------------------------------------------------- names and URLs


def check_category(category: str) -> str:
    """Return ``category`` if it is one of :data:`CATEGORIES`, else raise an InputError."""
    if category in CATEGORIES:
        return category
    by_lower = {c.lower(): c for c in CATEGORIES}
    close = difflib.get_close_matches(str(category).lower(), list(by_lower), n=3, cutoff=0.5)
    if close:
        hint = "did you mean " + ", ".join(by_lower[c] for c in close) + "?"
    else:
        hint = "expected one of " + ", ".join(CATEGORIES)
    raise InputError(f"--category: unknown Amazon Reviews 2023 category {category!r}; {hint}")


def _check_base_url(base_url: str) -> str:
    try:
        parts = urlsplit(str(base_url))
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number 0-65535
    except ValueError as exc:  # e.g. "Invalid IPv6 URL", "Port out of range 0-65535"
        raise InputError(f"--base-url: not a valid URL ({exc}): {base_url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"--base-url: expected an http:// or https:// URL, got {base_url!r}")
    return base_url if base_url.endswith("/") else base_url + "/"


def category_files(
    category: str,
    base_url: str = DEFAULT_BASE_URL,
    what: Iterable[str] = ("reviews", "meta"),
) -> list[tuple[str, str]]:
    """The ``(url, file name)`` of each requested file of ``category``, in the order of ``what``.

    ``what`` holds ``"reviews"`` and/or ``"meta"``; repeats are ignored.
    """
    category = check_category(category)
    base = _check_base_url(base_url)
    kinds = list(dict.fromkeys([what] if isinstance(what, str) else what))
    bad = [k for k in kinds if k not in _KINDS]
    if bad or not kinds:
        raise InputError(f"--what: expected 'reviews' and/or 'meta', got {list(kinds)!r}")
    out = []
    for kind in kinds:
        folder, pattern = _KINDS[kind]
        name = pattern.format(category=category)
        out.append((f"{base}{folder}/{name}", name))
    return out


def part_path(dest: str | Path) -> Path:
    """Where the bytes of ``dest`` are gathered until it is complete: ``<dest>.part``."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def _source_path(part: Path) -> Path:
    """Where a part file's origin is recorded: ``<part>.source`` (module docstring)."""
    return part.with_name(part.name + ".source")


def _read_source(part: Path, url: str) -> dict[str, Any] | None:
    """The recorded origin of ``part`` if it came from ``url``, else None."""
    try:
        doc = json.loads(_source_path(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("url") != url:
        return None
    validator = doc.get("validator")
    return {"url": url, "validator": validator if isinstance(validator, str) else None}


def _write_source(part: Path, url: str, headers: Any) -> None:
    """Record where the bytes about to be written to ``part`` come from."""
    etag = headers.get("ETag")
    validator = etag if etag and not etag.startswith("W/") else headers.get("Last-Modified")
    try:
        _source_path(part).write_text(json.dumps({"url": url, "validator": validator}))
    except OSError as exc:
        raise DownloadError(f"cannot write {_source_path(part)}: {exc.strerror or exc}") from None


def _drop_source(part: Path) -> None:
    _source_path(part).unlink(missing_ok=True)


# --------------------------------------------------------------------------- public entry points


def download_category(
    category: str,
    output_dir: str | Path,
    *,
    base_url: str = DEFAULT_BASE_URL,
    what: Iterable[str] = ("reviews", "meta"),
    progress: bool = True,
    timeout: float = 30.0,
    echo: Callable[[str], None] | None = None,
) -> list[Path]:
    """Download the raw files of one Amazon Reviews 2023 category into ``output_dir``.

    Saves ``output_dir/<Category>.jsonl.gz`` (``"reviews"`` in ``what``) and
    ``output_dir/meta_<Category>.jsonl.gz`` (``"meta"``) with resume, retries, a size check and an
    atomic rename (see the module's description); a file already complete is skipped. Returns the
    final paths, in the order of ``what``. ``echo``: where to say, for each file, whether it was
    downloaded or skipped (see :func:`download_file`).

    Raises InputError for an unknown category, a bad ``base_url``/``what``/``timeout`` or an output
    directory that cannot be created, DownloadError when a file cannot be fetched whole.
    """
    files = category_files(category, base_url, what)
    _check_timeout(timeout)
    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--output-dir: cannot create {out}: {exc.strerror or exc}") from None
    return [
        download_file(url, out / name, progress=progress, timeout=timeout, echo=echo)
        for url, name in files
    ]


def download_file(
    url: str,
    dest: str | Path,
    *,
    progress: bool = True,
    timeout: float = 30.0,
    retries: int | None = None,
    backoff: float | None = None,
    echo: Callable[[str], None] | None = None,
) -> Path:
    """Fetch ``url`` to ``dest`` through ``<dest>.part``; return ``dest``.

    Resumes from an existing part file, retries dropped connections (up to ``retries`` consecutive
    attempts without progress, default :data:`RETRIES`, pausing ``backoff`` seconds, default
    :data:`BACKOFF_S`, doubled each time), checks the size and renames atomically. If ``dest``
    already has the size the server states, nothing is downloaded. ``echo`` (the CLI's ``print``)
    gets one line, ``Downloaded <dest> (N bytes)`` or ``<dest> is already complete (N bytes),
    skipped``; without it, a skip is said on stderr when ``progress`` is on.
    """
    _check_timeout(timeout)
    dest = Path(dest)
    part = part_path(dest)
    retries = RETRIES if retries is None else retries
    backoff = BACKOFF_S if backoff is None else backoff

    if dest.is_file():
        local = dest.stat().st_size
        remote = _remote_size(url, timeout)
        if remote == local and _is_gzip_if_named_so(dest):
            if echo is None:
                _say(f"{dest} is already complete ({local:,} bytes), skipping", progress)
            else:
                echo(f"{dest} is already complete ({local:,} bytes), skipped")
            return dest
        logger.warning(
            "%s has %d bytes but %s has %s; downloading it again",
            dest,
            local,
            url,
            "an unknown size"
            if remote is None
            else f"{remote} bytes" + ("" if remote != local else " and it is not gzip"),
        )
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create {dest.parent}: {exc.strerror or exc}") from None

    bar = _Progress(dest.name, progress)
    try:
        total = _fetch_with_retries(url, part, timeout, retries, backoff, bar)
    except BaseException:
        bar.discard()  # the error message says how far it got
        raise
    bar.close()

    size = _size(part)
    if total is None:
        logger.warning("%s gave no size, so %s (%d bytes) could not be checked", url, dest, size)
    elif size != total:
        raise DownloadError(
            f"size mismatch for {url}: expected {total:,} bytes, got {size:,}; "
            f"kept {part} (run again to resume, or delete it to start over)"
        )
    _check_gzip(url, part, dest)
    _finish(part, dest)
    logger.info("downloaded %s (%d bytes)", dest, size)
    if echo is not None:
        echo(f"Downloaded {dest} ({size:,} bytes)")
    return dest


# --------------------------------------------------------------------------- the transfer


class _Dropped(Exception):
    """A transient failure: the attempt is retried from the bytes already on disk."""

    def __init__(self, reason: str, total: int | None = None) -> None:
        super().__init__(reason)
        self.total = total


class _Unreachable(Exception):
    """The request could not be sent or answered (DNS, refused, reset, timeout)."""

    def __init__(self, reason: object) -> None:
        super().__init__(str(reason))
        self.reason = reason


def _fetch_with_retries(
    url: str, part: Path, timeout: float, retries: int, backoff: float, bar: _Progress
) -> int | None:
    """Run attempts until the part file is whole; return the expected total (None if unknown)."""
    failures = 0
    contacted = False  # once the server has answered, connection errors are retried
    total: int | None = None
    while True:
        before = _size(part)
        try:
            total = _fetch_once(url, part, before, timeout, total, bar)
            return total
        except _Unreachable as exc:
            reason = _describe(exc.reason)
            if not contacted:
                raise DownloadError(f"cannot reach {url}: {reason} ({_OFFLINE_HINT})") from None
        except _Dropped as exc:
            reason = str(exc)
            total = exc.total if exc.total is not None else total
        contacted = True
        now = _size(part)
        failures = 0 if now > before else failures + 1
        if failures > retries:
            kept = (
                f"kept {part} ({now:,} of {_fmt_total(total)} bytes, run again to resume)"
                if part.exists()
                else "no bytes received"
            )
            raise DownloadError(
                f"giving up on {url} after {retries} retries without progress: {reason}; {kept}"
            )
        delay = min(backoff * 2 ** max(failures - 1, 0), _MAX_BACKOFF_S)
        bar.discard()  # keep the warning on a line of its own; the next attempt draws a new bar
        logger.warning(
            "%s: %s; resuming at byte %s in %.1f s%s",
            url,
            reason,
            f"{now:,}",
            delay,
            f" (retry {failures} of {retries} without progress)" if failures else "",
        )
        time.sleep(delay)


def _fetch_once(
    url: str, part: Path, offset: int, timeout: float, known_total: int | None, bar: _Progress
) -> int | None:
    """One GET from ``offset``, appended to ``part``; return the total the server states.

    Raises _Unreachable (no answer), _Dropped (transient: short body, reset, 5xx) or DownloadError.
    """
    import http.client
    import urllib.error
    import urllib.request

    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    source = _read_source(part, url) if offset else None
    if offset and source is None:
        logger.info("%s: not known to come from %s; starting over from byte 0", part, url)
        offset = 0
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if source and source["validator"]:  # the same file, or the whole (new) one
            headers["If-Range"] = source["validator"]
    request = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        with exc:
            if exc.code == 416 and offset:
                return _on_416(url, part, offset, exc.headers.get("Content-Range"), timeout)
            if exc.code in _TRANSIENT_HTTP:
                raise _Dropped(f"HTTP {exc.code} {exc.reason}") from None
            raise DownloadError(_http_error(exc.code, exc.reason, url)) from None
    except urllib.error.URLError as exc:  # DNS, refused, connect timeout, TLS
        raise _Unreachable(exc.reason) from None
    except (OSError, http.client.HTTPException) as exc:  # connected, then no answer
        raise _Dropped(_describe(exc)) from None

    with resp:
        if resp.status == 206:
            start, total = _check_206(url, offset, resp.headers.get("Content-Range"))
            if known_total is not None and total is not None and total != known_total:
                raise DownloadError(
                    f"{url} changed size from {known_total:,} to {total:,} bytes while "
                    f"downloading; delete {part} and run again"
                )
            mode = "ab"
        elif resp.status == 200:
            if offset:
                logger.info(
                    "%s sent the whole file (it changed since, or ignores ranges); starting "
                    "over from byte 0",
                    url,
                )
            offset = 0
            total = _int_or_none(resp.headers.get("Content-Length"))
            mode = "wb"
            _write_source(part, url, resp.headers)
        else:
            raise DownloadError(f"unexpected HTTP {resp.status} {resp.reason} for {url}")

        bar.start(offset, total)
        received = offset
        try:
            with open(part, mode) as fh:
                while True:
                    try:
                        chunk = resp.read1(_CHUNK)  # whatever has arrived: a timeout loses nothing
                    except http.client.IncompleteRead as exc:
                        fh.write(exc.partial)
                        bar.update(len(exc.partial))
                        received += len(exc.partial)
                        reason = f"connection dropped at byte {received:,}"
                        raise _Dropped(reason, total) from None
                    except (OSError, http.client.HTTPException) as exc:
                        raise _Dropped(_describe(exc), total) from None
                    if not chunk:
                        break
                    fh.write(chunk)
                    bar.update(len(chunk))
                    received += len(chunk)
        except OSError as exc:  # the reads are handled above: this is the local disk
            raise DownloadError(f"cannot write {part}: {exc.strerror or exc}") from None

    if total is not None and received < total:
        raise _Dropped(f"connection closed at byte {received:,} of {total:,}", total)
    return total


def _on_416(url: str, part: Path, offset: int, content_range: str | None, timeout: float) -> int:
    """The server cannot serve ``bytes=offset-``: fine if the part file is already whole."""
    parsed = _parse_content_range(content_range)
    total = parsed[2] if parsed else None
    if total is None:
        total = _remote_size(url, timeout)
    if total == offset:
        logger.info("%s is already complete (%d bytes)", part, offset)
        return total
    have = f"{part} has {offset:,} bytes but {url} has {_fmt_total(total)} bytes"
    raise DownloadError(f"HTTP 416 resuming {url}: {have}; delete {part} and run again")


def _check_206(url: str, offset: int, content_range: str | None) -> tuple[int, int | None]:
    parsed = _parse_content_range(content_range)
    if parsed is None or parsed[0] is None:
        raise DownloadError(f"HTTP 206 for {url} with a bad Content-Range: {content_range!r}")
    start, _end, total = parsed
    if start != offset:
        raise DownloadError(
            f"{url} answered a request for bytes {offset:,}- with bytes {start:,}-; "
            "the server does not resume correctly (delete the .part file and run again)"
        )
    return start, total


def _remote_size(url: str, timeout: float) -> int | None:
    """The size ``HEAD`` states (Content-Length), None if the server gives none or refuses HEAD."""
    import http.client
    import urllib.error
    import urllib.request

    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    request = urllib.request.Request(url, headers=headers, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return _int_or_none(resp.headers.get("Content-Length"))
    except urllib.error.HTTPError as exc:
        with exc:
            if exc.code in (405, 501) or exc.code in _TRANSIENT_HTTP:
                logger.info("HEAD %s: HTTP %d; size unknown", url, exc.code)
                return None
            raise DownloadError(_http_error(exc.code, exc.reason, url)) from None
    except urllib.error.URLError as exc:
        reason = _describe(exc.reason)
        raise DownloadError(f"cannot reach {url}: {reason} ({_OFFLINE_HINT})") from None
    except (OSError, http.client.HTTPException) as exc:
        reason = _describe(exc)
        raise DownloadError(f"cannot reach {url}: {reason} ({_OFFLINE_HINT})") from None


# --------------------------------------------------------------------------- small helpers


def _is_gzip_if_named_so(path: Path) -> bool:
    """A ``.gz`` file begins with gzip's magic bytes (a file of the right size that does not
    is fetched again rather than skipped)."""
    if not path.name.endswith(".gz"):
        return True
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _check_gzip(url: str, part: Path, dest: Path) -> None:
    """A ``.gz`` download must be gzip: a mirror or proxy that answers 200 with an HTML page
    would otherwise land under the final name. Such a part file is deleted (resuming it would
    only append to the page)."""
    if not dest.name.endswith(".gz"):
        return
    with open(part, "rb") as fh:
        head = fh.read(48)
    if head.startswith(b"\x1f\x8b"):
        return
    part.unlink(missing_ok=True)
    _drop_source(part)
    shown = head.decode("utf-8", "replace").replace("\n", " ")[:40]
    raise DownloadError(
        f"{url}: the server sent something that is not gzip (it begins {shown!r}); nothing was "
        "kept: check --base-url"
    )


def _finish(part: Path, dest: Path) -> None:
    """fsync the complete part file, rename it onto ``dest`` and fsync the directory."""
    try:
        with open(part, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(part, dest)
        _drop_source(part)
    except OSError as exc:
        raise DownloadError(f"cannot move {part} to {dest}: {exc.strerror or exc}") from None
    try:
        fd = os.open(dest.parent, os.O_RDONLY)
    except OSError:  # not possible on every platform (Windows); the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _Progress:
    """A tqdm byte counter, drawn once the server answers (an early failure prints no bar)."""

    def __init__(self, name: str, enabled: bool) -> None:
        self._name = name
        self._enabled = enabled
        self._bar: Any = None

    def start(self, offset: int, total: int | None) -> None:
        if not self._enabled:
            return
        from tqdm import tqdm

        self.discard()
        self._bar = tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=self._name,
            leave=True,
        )

    def update(self, n: int) -> None:
        if self._bar is not None and n:
            self._bar.update(n)

    def discard(self) -> None:
        """Erase the bar (before a retry, whose bar starts again from the bytes on disk)."""
        if self._bar is not None:
            self._bar.leave = False
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _say(message: str, progress: bool) -> None:
    logger.info(message)
    if progress:
        print(message, file=sys.stderr)


#: The longest --timeout: a day (a larger value overflows the socket layer's time_t).
_MAX_TIMEOUT_S = 86_400


def _check_timeout(timeout: float) -> None:
    if not isinstance(timeout, int | float) or not 0 < timeout <= _MAX_TIMEOUT_S:
        raise InputError(
            f"--timeout: expected a positive number of seconds up to {_MAX_TIMEOUT_S:,}, "
            f"got {timeout!r}"
        )


def _parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None] | None:
    """``bytes 10-99/100`` -> (10, 99, 100); ``bytes */100`` -> (None, None, 100); else None."""
    m = _CONTENT_RANGE.fullmatch((value or "").strip())
    if m is None:
        return None
    start, end, total = m.groups()
    return (
        None if start is None else int(start),
        None if end is None else int(end),
        None if total == "*" else int(total),
    )


def _int_or_none(value: str | None) -> int | None:
    try:
        n = int(value) if value is not None else None
    except ValueError:
        return None
    return n if n is not None and n >= 0 else None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _fmt_total(total: int | None) -> str:
    return "an unknown number of" if total is None else f"{total:,}"


def _http_error(code: int, reason: object, url: str) -> str:
    reason = " ".join(str(reason or "").split())
    return f"HTTP {code} {reason} for {url}" if reason else f"HTTP {code} for {url}"


def _describe(exc: object) -> str:
    """One line for an exception or reason: ``[Errno 111] Connection refused``, ``timed out``."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = " ".join(str(exc).split())
    if not text and isinstance(exc, BaseException):
        text = type(exc).__name__
    return text or "unknown error"
