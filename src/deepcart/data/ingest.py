"""`deepcart ingest`: raw Amazon review/metadata files -> Parquet in the canonical schema.

One call, :func:`ingest_file`, converts one file. The format is detected from the content, not the
file name (:func:`detect_format`); gzip is detected by its magic bytes:

* Amazon Reviews 2023 reviews and item metadata (JSON Lines),
* Amazon Review Data 2018 reviews and metadata (JSON Lines),
* Amazon product data 2014 reviews (JSON Lines) and metadata (one Python dict literal per line,
  read with :func:`ast.literal_eval`, never ``eval``; lines that are JSON are accepted too),
* ratings-only CSV (2014 ``user,item,rating,timestamp``, 2018 ``item,user,rating,timestamp``,
  2023 benchmark ``user_id,parent_asin,rating,timestamp[,history]``), with or without a header,
* Parquet, either already canonical or a raw 2023 table (e.g. a DuckDB copy of the JSON).

The mapping of every format onto the canonical columns is documented in
:mod:`deepcart.data.formats`. The output is ``<output_dir>/<stem>.parquet``
(``Electronics.jsonl.gz`` -> ``Electronics.parquet``), written atomically, in
:func:`deepcart.data.schema.schema_for` of its kind, with ``deepcart.kind`` and
``deepcart.source_format`` in the schema metadata.

Counting. A *line* is a non-blank physical line of a JSON file, or a data row of a CSV file (the
header excluded), or a row of a Parquet file. Blank (whitespace-only) lines are ignored and not
counted, but line numbers in messages are 1-based physical line numbers that count blank lines and
the CSV header, so that ``sed -n 17p FILE`` shows the culprit (for Parquet: 1-based row numbers).
Every line read is either written or skipped:
``lines_read == rows_written + sum(skipped.values())`` (checked at the end of every ingest).

Bad input. By default (``on_bad_lines="error"``) the first bad line raises
:class:`~deepcart.errors.DataFormatError` naming the file, the line and the reason, and no output
file is left behind. With ``on_bad_lines="skip"`` bad lines are dropped and counted per reason:

================================  ==============================================================
``invalid_json``                  not valid JSON
``invalid_literal``               2014 metadata: neither a Python dict literal nor JSON
``not_an_object``                 valid JSON, but not an object
``not_utf8``                      bytes that are not UTF-8
``missing_field:<column>``        a required field is absent, null or '' (reviews: user_id,
                                  parent_asin, rating, timestamp; items: parent_asin)
``rating_not_a_number``           rating is a string, a boolean, ...
``rating_out_of_range``           rating outside 1..5 (or NaN)
``bad_type:<raw field>``          another field read has an impossible type (e.g. a list title)
``bad_timestamp``                 CSV: the timestamp is not a number
``timestamp_out_of_range``        CSV: the timestamp is a number too large for int64 ms (its
                                  absolute value, in ms, 9e15 or more)
``wrong_field_count``             CSV: a row without the file's number of fields
``invalid_csv``                   CSV: a row the csv module cannot split (a stray carriage return)
``truncated_gzip``                the .gz ends before its end-of-stream marker: the partial last
                                  line counts as one skipped line
================================  ==============================================================

A corrupt gzip stream, a "line" longer than 256 MB, an empty file (no non-blank line) and an
undetectable format are errors in both modes; a missing input file is an
:class:`~deepcart.errors.InputError`.

Engine. A reader thread reads the file and inflates it (zlib, or ISA-L when the ``isal`` package is
installed; both release the GIL) into blocks of about 16 MB cut at a line end; a scanner thread
finds each block's newlines and checks its UTF-8; the caller's thread parses the block with
``pyarrow.json`` / ``pyarrow.csv`` (multi-threaded, no Python per record), converts and validates it
with ``pyarrow.compute``; a writer thread encodes row groups of up to ~1M rows / ~128 MB with a
``pyarrow.parquet.ParquetWriter`` (zstd). A block that PyArrow refuses (a malformed line, an
unexpected type, a blank line that would shift the numbering) is re-read line by line with the
standard ``json`` (or ``csv``) module to find each bad line's number and reason; 2014 metadata
(Python literals) always takes that path. Memory stays bounded by a few blocks and two row groups
(about 0.8 GB peak for a 1 GB or a 3 GB review file), whatever the file size.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import queue
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from deepcart.data import formats as F
from deepcart.data.schema import (
    REQUIRED_ITEM_FIELDS,
    REQUIRED_REVIEW_FIELDS,
    SOURCE_KEY,
    parquet_kind,
    schema_for,
)
from deepcart.errors import DataFormatError, InputError
from deepcart.fsutil import atomic_path

try:  # ISA-L inflates ~1.5x faster than zlib, with the same API; used when installed
    from isal import isal_zlib as _inflate
except ImportError:  # pragma: no cover - depends on the environment
    _inflate = zlib

log = logging.getLogger(__name__)

__all__ = ["DetectedFormat", "IngestReport", "detect_format", "ingest_file", "output_path_for"]

BLOCK_SIZE = 16 << 20  # decompressed bytes handed to PyArrow at once
ROW_GROUP_ROWS = 1 << 20
ROW_GROUP_BYTES = 128 << 20
MAX_LINE = 256 << 20  # a longer "line" means the file is not line-oriented
SNIFF_BYTES = 1 << 20
SNIFF_LINES = 2000  # CSV rows sampled to tell the item column from the user column
SNIFF_RECORDS = 200  # JSON records whose keys identify the format

_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_BOM = b"\xef\xbb\xbf"
_SUFFIXES = (".jsonl.gz", ".json.gz", ".jsonl", ".json", ".csv.gz", ".csv", ".parquet")
_TRUNCATED = "truncated gzip stream (compressed file ended before the end-of-stream marker)"


# --------------------------------------------------------------------------- public API


@dataclass
class IngestReport:
    """What one :func:`ingest_file` call read, wrote and skipped."""

    source: Path
    output: Path
    kind: str  # 'reviews' | 'items'
    source_format: str  # e.g. 'amazon2023-reviews', 'ratings-csv', 'parquet'
    lines_read: int
    rows_written: int
    skipped: dict[str, int] = field(default_factory=dict)
    #: Where the time went, in seconds (for benchmarks/ingest.py): ``read_cpu``, ``scan_cpu``,
    #: ``write_cpu`` (CPU time of the reader, scanner and writer threads), ``write_busy`` (wall
    #: time the writer spent encoding), ``parse_busy`` (wall time the caller's thread spent
    #: parsing, converting and checking blocks and handing them to the writer, which waits
    #: when the writer is behind). Only ``write_*`` for Parquet input.
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def lines_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self, output: bool = True) -> str:
        """One line: ``SRC (format): read N lines, wrote M reviews, skipped K -> OUT`` (without
        ``-> OUT`` when ``output`` is False: a file that will not stay)."""
        unit = "rows" if self.source_format.endswith("parquet") else "lines"
        text = (
            f"{self.source} ({self.source_format}): read {self.lines_read:,} {unit}, "
            f"wrote {self.rows_written:,} {self.kind}, skipped {self.lines_skipped:,}"
        )
        if self.skipped:
            parts = ", ".join(f"{k} {v:,}" for k, v in sorted(self.skipped.items()))
            text += f" ({parts})"
        return f"{text} -> {self.output}" if output else text


@dataclass(frozen=True)
class DetectedFormat:
    """The format of a raw file: its ``name`` (the report's source_format), kind and compression."""

    name: str
    kind: str
    compression: str | None = None

    def __str__(self) -> str:
        return self.name


def output_path_for(path: str | Path, output_dir: str | Path) -> Path:
    """``output_dir/<stem>.parquet``; the stem drops .jsonl.gz, .json.gz, .csv(.gz), .parquet."""
    name = Path(path).name
    lower = name.lower()
    for suffix in _SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return Path(output_dir) / f"{name[: -len(suffix)]}.parquet"
    if lower.endswith(".gz"):
        name = name[:-3]
    stem = Path(name).stem or name
    return Path(output_dir) / f"{stem}.parquet"


def detect_format(path: str | Path, csv_columns: Sequence[str] | None = None) -> DetectedFormat:
    """Detect the format of ``path`` from its content (gzip from its magic bytes).

    Raises :class:`InputError` for a missing file and :class:`DataFormatError` for an empty file
    or content that matches no supported format.
    """
    plan = _plan(Path(path), csv_columns)
    return DetectedFormat(plan.name, plan.kind, "gzip" if plan.gz else None)


def ingest_file(
    path: str | Path,
    output_dir: str | Path,
    *,
    on_bad_lines: str = "error",
    csv_columns: Sequence[str] | None = None,
    progress: bool = False,
    block_size: int = BLOCK_SIZE,
) -> IngestReport:
    """Convert one raw file to ``output_dir/<stem>.parquet`` in the canonical schema.

    ``on_bad_lines``: ``"error"`` raises :class:`DataFormatError` at the first bad line (no output
    is left behind); ``"skip"`` drops bad lines and counts them per reason in the report.
    ``csv_columns``: the column order of a headerless ratings CSV (the four canonical names),
    overriding the detected order; with a header ingest reads, it must agree with the header, and
    for a file that is not a CSV it is an error (:class:`InputError`). It also names the columns
    of a CSV whose header ingest cannot read. ``progress`` shows a progress bar on a terminal.
    """
    if on_bad_lines not in ("error", "skip"):
        raise InputError(f"on_bad_lines: expected 'error' or 'skip', got {on_bad_lines!r}")
    if csv_columns is not None:
        csv_columns = list(csv_columns)
        if sorted(csv_columns) != sorted(F.CSV_COLUMNS):
            raise InputError(
                "csv_columns: expected the four names user_id,parent_asin,rating,timestamp, "
                f"got {','.join(csv_columns)!r}"
            )
    path = Path(path)
    plan = _plan(path, csv_columns)
    output = output_path_for(path, output_dir)
    if output.exists() and output.resolve() == path.resolve():
        raise InputError(f"{path}: the output {output} would overwrite the input; pick another dir")
    schema = schema_for(plan.kind)
    schema = schema.with_metadata({**schema.metadata, SOURCE_KEY: plan.name.encode()})
    run = _Run(path, plan, on_bad_lines == "skip", block_size)
    with atomic_path(output) as tmp:
        sink = _Sink(tmp, schema)
        try:
            run.execute(sink, progress)
        except BaseException:
            sink.close(abort=True)
            raise
        sink.close()
    report = IngestReport(
        source=path,
        output=output,
        kind=plan.kind,
        source_format=plan.name,
        lines_read=run.lines_read,
        rows_written=sink.rows,
        skipped=dict(run.skipped),
        stages={**run.stages, **sink.stages},
    )
    if report.lines_read != report.rows_written + report.lines_skipped:  # pragma: no cover
        raise AssertionError(f"ingest lost count of lines: {report}")
    log.info("%s", report.summary())
    return report


# --------------------------------------------------------------------------- reading bytes


class _GzipFault(Exception):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


def _chunks(path: Path, gz: bool, counter: list[int] | None = None) -> Iterator[bytes]:
    """The decompressed content of ``path`` in chunks; raises _GzipFault for a bad gzip stream.

    Concatenated gzip members (``cat a.gz b.gz``, bgzip) are read in turn; zero padding after the
    last member is ignored.
    """
    read_size = 1 << 20 if gz else 4 << 20
    with open(path, "rb") as fh:
        if not gz:
            while chunk := fh.read(read_size):
                if counter is not None:
                    counter[0] += len(chunk)
                yield chunk
            return
        d: Any = None
        carry = b""
        while True:
            raw = fh.read(read_size)
            if counter is not None:
                counter[0] += len(raw)
            if not raw:
                break
            data = carry + raw
            carry = b""
            while data:
                if d is None:
                    if not data.strip(b"\0"):
                        data = b""  # padding after the last member
                        break
                    if len(data) < 2:
                        carry = data
                        break
                    if not data.startswith(_GZIP_MAGIC):
                        raise _GzipFault(
                            "corrupt_gzip", "corrupt gzip stream (garbage after a gzip member)"
                        )
                    d = _inflate.decompressobj(31)
                try:
                    out = d.decompress(data, 8 << 20)
                except _inflate.error as exc:
                    raise _GzipFault("corrupt_gzip", f"corrupt gzip stream ({exc})") from None
                if out:
                    yield out
                if d.eof:
                    data = d.unused_data
                    d = None
                else:
                    data = d.unconsumed_tail
        if d is not None or carry:
            if d is not None:
                try:
                    out = d.flush()
                except _inflate.error:  # pragma: no cover - flush after a clean read does not fail
                    out = b""
                if out:
                    yield out
            raise _GzipFault("truncated_gzip", _TRUNCATED)


@dataclass
class _Fault:
    """The end of a damaged gzip stream: what came after the last complete line, and why."""

    tail: bytes
    key: str
    reason: str


class _Blocks:
    """Blocks of whole lines from a (gzip) file, prepared by two background threads.

    The reader thread reads and inflates the file and cuts blocks at line ends; the scanner thread
    finds each block's newlines and checks its UTF-8. Both stages release the GIL for most of
    their work, so they overlap with parsing in the caller's thread.
    """

    def __init__(self, path: Path, gz: bool, block_size: int, depth: int = 2) -> None:
        self.path = path
        self.gz = gz
        self.block_size = block_size
        self.raw_bytes = [0]
        self.cpu: dict[str, float] = {}  # thread CPU seconds: 'read_cpu', 'scan_cpu'
        self._raw: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._produce, name="deepcart-ingest-read", daemon=True),
            threading.Thread(target=self._scan, name="deepcart-ingest-scan", daemon=True),
        ]

    def __enter__(self) -> _Blocks:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            while thread.is_alive():
                for q in (self._raw, self._queue):
                    try:
                        q.get_nowait()
                    except queue.Empty:
                        pass
                thread.join(timeout=0.05)

    def _put(self, item: Any, into: queue.Queue[Any] | None = None) -> bool:
        into = self._raw if into is None else into
        while not self._stop.is_set():
            try:
                into.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _scan(self) -> None:
        try:
            self._scan_blocks()
        finally:
            self.cpu["scan_cpu"] = time.thread_time()

    def _scan_blocks(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._raw.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(item, bytes):
                try:
                    item = _Chunk.scan(item)
                except BaseException as exc:  # handed to the consumer
                    item = exc
            if not self._put(item, self._queue) or not isinstance(item, _Chunk):
                return

    def _produce(self) -> None:
        try:
            self._produce_blocks()
        finally:
            self.cpu["read_cpu"] = time.thread_time()

    def _produce_blocks(self) -> None:
        parts: list[bytes] = []
        size = 0
        first = True
        try:
            try:
                for chunk in _chunks(self.path, self.gz, self.raw_bytes):
                    if first:
                        chunk, first = chunk.removeprefix(_BOM), False
                    parts.append(chunk)
                    size += len(chunk)
                    if size < self.block_size:
                        continue
                    data = b"".join(parts)
                    cut = data.rfind(b"\n") + 1
                    if cut == 0:
                        if size > MAX_LINE:
                            raise _GzipFault("line_too_long", "a line longer than 256 MB")
                        parts = [data]
                        continue
                    rest = data[cut:]
                    parts, size = ([rest], len(rest)) if rest else ([], 0)
                    if not self._put(data[:cut]):
                        return
                    del data
            except _GzipFault as fault:
                data = b"".join(parts)
                cut = data.rfind(b"\n") + 1
                if cut and not self._put(data[:cut]):
                    return
                self._put(_Fault(data[cut:], fault.key, fault.reason))
                return
            if parts and not self._put(b"".join(parts)):
                return
            self._put(None)
        except OSError as exc:
            self._put(InputError(f"{self.path}: cannot read: {exc}"))
        except BaseException as exc:  # a bug or MemoryError: hand it to the consumer
            self._put(exc)

    def __iter__(self) -> Iterator[_Chunk | _Fault]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


@dataclass
class _Chunk:
    """A block of whole lines, scanned in the reader thread (numpy and PyArrow drop the GIL)."""

    data: bytes
    n_lines: int  # physical lines
    newlines: np.ndarray  # offsets of the b"\n" bytes
    utf8: bool  # the whole block is valid UTF-8

    @classmethod
    def scan(cls, data: bytes) -> _Chunk:
        newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
        n_lines = len(newlines) + (0 if not data or data.endswith(b"\n") else 1)
        return cls(data, n_lines, newlines, _valid_utf8(data))


# --------------------------------------------------------------------------- detection


@dataclass
class _CsvLayout:
    n_fields: int
    header_line: int | None  # physical line number of the header, if any
    columns: dict[str, int]  # canonical name -> field index


@dataclass
class _Plan:
    name: str
    kind: str
    gz: bool = False
    fmt: F.Format | None = None
    csv: _CsvLayout | None = None
    parquet: str | None = None  # 'canonical' | 'raw'


def _check_input(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")


def _sniff(path: Path, gz: bool) -> list[tuple[int, bytes]]:
    """The first non-blank lines (number, bytes) of the file, for detection."""
    lines: list[tuple[int, bytes]] = []
    line_no = 0
    pending = b""
    first = True
    read = 0
    fault: _GzipFault | None = None
    eof = False
    chunks = _chunks(path, gz)  # a damaged stream is reported by the main pass, in order
    try:
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                eof = True
            if not eof:
                if first and chunk:
                    chunk = chunk.removeprefix(_BOM)
                    first = False
                pending += chunk
                read += len(chunk)
            cut = len(pending) if eof else pending.rfind(b"\n") + 1
            if cut:
                for raw in pending[:cut].split(b"\n")[: None if eof else -1]:
                    line_no += 1
                    if raw.strip():
                        lines.append((line_no, raw))
                        if len(lines) >= SNIFF_LINES:
                            break
                pending = pending[cut:]
            if eof or len(lines) >= SNIFF_LINES or (lines and read >= SNIFF_BYTES):
                break
            if len(pending) > MAX_LINE:
                break
    except _GzipFault as exc:
        fault = exc
    finally:
        chunks.close()
    if not lines:
        if fault is not None:  # not one complete line before the damage
            raise DataFormatError(path, line_no + 1, fault.reason)
        raise DataFormatError(path, None, "empty file: no records")
    return lines


def _plan(path: Path, csv_columns: Sequence[str] | None) -> _Plan:
    _check_input(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    if not magic:
        raise DataFormatError(path, None, "empty file: no records")
    if magic == _PARQUET_MAGIC:
        plan = _plan_parquet(path)
        _no_csv_columns(path, plan, csv_columns)
        return plan
    gz = magic.startswith(_GZIP_MAGIC)
    lines = _sniff(path, gz)
    first_no, first = lines[0]
    head = first.lstrip()
    if head.startswith(b"{"):
        plan = _plan_json(path, lines)
        _no_csv_columns(path, plan, csv_columns)
    elif head.startswith(b"["):
        raise DataFormatError(
            path,
            first_no,
            "cannot detect the format: a JSON array; expected JSON Lines (one object per line)",
        )
    else:
        plan = _plan_csv(path, lines, csv_columns)
    plan.gz = gz
    return plan


def _no_csv_columns(path: Path, plan: _Plan, csv_columns: Sequence[str] | None) -> None:
    """``csv_columns`` given for a file that is not a CSV is an error, not silently ignored."""
    if csv_columns is not None:
        raise InputError(
            f"{path}: --csv-columns {','.join(csv_columns)} is for a ratings CSV, but this file "
            f"is {plan.name}; leave it out for this file (ingest it in a separate command)"
        )


def _plan_json(path: Path, lines: list[tuple[int, bytes]]) -> _Plan:
    keys: set[str] = set()
    literal = False
    first_bad: tuple[int, str] | None = None
    for line_no, raw in lines[:SNIFF_RECORDS]:
        text = raw.decode("utf-8", errors="replace")
        try:
            obj = F.parse_line(text, literal=False)
        except F.BadRecord as bad:
            try:
                obj = F.parse_line(text, literal=True)
                literal = True
            except F.BadRecord:
                first_bad = first_bad or (line_no, bad.message)
                continue
        keys.update(str(k) for k in obj)
    if not keys:
        where = min(len(lines), SNIFF_RECORDS)
        detail = f"line {first_bad[0]}: {first_bad[1]}" if first_bad else "all are empty objects"
        raise DataFormatError(
            path,
            None,
            f"cannot detect the format: none of the first {where} lines is a JSON object with "
            f"fields ({detail})",
        )
    fmt = F.detect_json_format(keys)
    if fmt is None:
        shown = ", ".join(sorted(keys)[:15]).encode("utf-8", "backslashreplace").decode()
        raise DataFormatError(
            path,
            None,
            f"cannot detect the format: records with keys [{shown}] are neither Amazon reviews "
            "nor item metadata (2023, 2018 or 2014)",
        )
    if literal and not fmt.literal:
        fmt = dataclasses.replace(fmt, literal=True)
    return _Plan(fmt.name, fmt.kind, fmt=fmt)


def _csv_fields(raw: bytes) -> list[str]:
    text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
    try:
        return next(csv.reader([text]), [])
    except csv.Error:  # e.g. a stray carriage return
        return [text]


def _plan_csv(
    path: Path, lines: list[tuple[int, bytes]], csv_columns: Sequence[str] | None
) -> _Plan:
    first_no, first = lines[0]
    fields = _csv_fields(first)
    n = len(fields)
    if n < 4:
        preview = first[:60].decode("utf-8", errors="replace")
        raise DataFormatError(
            path,
            None,
            f"cannot detect the format: line {first_no} {preview!r} is neither a JSON object "
            "nor a ratings CSV row (user, item, rating, timestamp)",
        )
    rating_pos = list(csv_columns).index("rating") if csv_columns else 2
    header = not F.is_number(fields[rating_pos])
    flagged = {name: i for i, name in enumerate(csv_columns or ())}  # --csv-columns' order
    if header:
        names = [f.strip().lower() for f in fields]
        columns = {}
        for canon, aliases in F.CSV_ALIASES.items():
            idx = next((i for i, name in enumerate(names) if name in aliases), None)
            if idx is None:
                if csv_columns:  # a header ingest cannot read: the flag names the columns
                    columns = flagged
                    break
                raise DataFormatError(
                    path,
                    first_no,
                    f"CSV header {','.join(fields)!r} has no column for {canon} "
                    f"(expected one of {', '.join(aliases)})",
                )
            columns[canon] = idx
        if csv_columns and columns != flagged:
            order = ",".join(sorted(columns, key=columns.__getitem__))
            raise InputError(
                f"{path}:{first_no}: --csv-columns {','.join(csv_columns)} contradicts the CSV "
                f"header {','.join(fields)!r} (columns {order}); --csv-columns is for a "
                "headerless CSV: leave it out, or give the header's order"
            )
    elif csv_columns:
        columns = flagged
    else:
        if n > 5:
            raise DataFormatError(
                path,
                None,
                f"cannot detect the format: a headerless ratings CSV has 4 or 5 fields "
                f"(user, item, rating, timestamp[, history]); line {first_no} has {n}",
            )
        rows = [_csv_fields(raw) for _, raw in lines]
        col0 = [r[0] for r in rows if len(r) >= 2]
        col1 = [r[1] for r in rows if len(r) >= 2]
        frac0, distinct0 = F.looks_like_items(col0)
        frac1, distinct1 = F.looks_like_items(col1)
        item_first = frac0 > frac1 or (frac0 == frac1 and distinct0 < distinct1)
        order = ("parent_asin", "user_id") if item_first else ("user_id", "parent_asin")
        columns = {order[0]: 0, order[1]: 1, "rating": 2, "timestamp": 3}
    layout = _CsvLayout(n, first_no if header else None, columns)
    return _Plan("ratings-csv", "reviews", csv=layout)


def _plan_parquet(path: Path) -> _Plan:
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataFormatError(path, None, f"not a readable Parquet file ({exc})") from None
    names = set(schema.names)
    kind = parquet_kind(schema)
    if kind is not None:
        required = REQUIRED_REVIEW_FIELDS if kind == "reviews" else REQUIRED_ITEM_FIELDS
        if set(required) <= names:
            return _Plan("parquet", kind, parquet="canonical")
    fmt = F.detect_json_format(names)
    if fmt is None or fmt.literal:
        shown = ", ".join(schema.names[:15])
        raise DataFormatError(
            path,
            None,
            f"cannot detect the format: a Parquet file with columns [{shown}] is neither in the "
            "canonical reviews/items schema nor a raw Amazon table",
        )
    return _Plan(f"{fmt.name}-parquet", fmt.kind, fmt=fmt, parquet="raw")


# --------------------------------------------------------------------------- writing


class _Sink:
    """A ParquetWriter fed through a background thread, in row groups of ~1M rows or ~128 MB.

    Converted blocks are gathered until a row group is full; the row group is then encoded and
    compressed by a writer thread (PyArrow releases the GIL) while the next blocks are parsed.
    """

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.schema = schema
        text_columns = {"title", "text", "description", "features", "image"}
        self._writer = pq.ParquetWriter(
            path,
            schema,
            compression="zstd",
            compression_level=1,
            use_dictionary=[n for n in schema.names if n not in text_columns],
        )
        self._pending: list[pa.Table] = []
        self._rows = 0
        self._bytes = 0
        self.rows = 0
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self.stages = {"write_busy": 0.0}
        self._thread = threading.Thread(target=self._write, name="deepcart-ingest-write")
        self._thread.daemon = True
        self._thread.start()

    def _write(self) -> None:
        while (table := self._queue.get()) is not None:
            if self._error is None:
                started = time.perf_counter()
                try:
                    self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
                except BaseException as exc:  # re-raised in the caller's thread
                    self._error = exc
                self.stages["write_busy"] += time.perf_counter() - started
        self.stages["write_cpu"] = time.thread_time()

    def add(self, table: pa.Table) -> None:
        if self._error is not None:
            raise self._error
        if not table.num_rows:
            return
        self._pending.append(table)
        self._rows += table.num_rows
        self._bytes += table.nbytes
        self.rows += table.num_rows
        if self._rows >= ROW_GROUP_ROWS or self._bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            table = pa.concat_tables(self._pending)
            self._pending, self._rows, self._bytes = [], 0, 0
            self._queue.put(table)

    def close(self, abort: bool = False) -> None:
        """Write what is pending and the footer; ``abort`` drops the pending rows instead."""
        try:
            if abort:
                self._pending = []
                self._error = self._error or RuntimeError("aborted")
            else:
                self._flush()
        finally:
            self._queue.put(None)
            self._thread.join()
            self._writer.close()
        if self._error is not None and not abort:
            raise self._error


# --------------------------------------------------------------------------- the run


class _Run:
    """One ingest: reads blocks, converts, validates, counts and hands rows to the sink."""

    def __init__(self, path: Path, plan: _Plan, skip: bool, block_size: int) -> None:
        self.path = path
        self.plan = plan
        self.skip = skip
        self.block_size = block_size
        self.lines_read = 0
        self.skipped: Counter[str] = Counter()
        self.stages: dict[str, float] = {}
        self.sink: _Sink | None = None
        if plan.kind == "reviews":
            self.sources = dict(zip(REQUIRED_REVIEW_FIELDS, REQUIRED_REVIEW_FIELDS, strict=True))
        else:
            self.sources = {"parent_asin": "parent_asin"}
        if plan.fmt is not None:
            self.sources = dict(plan.fmt.sources)

    # -- driver
    def execute(self, sink: _Sink, progress: bool) -> None:
        self.sink = sink
        if self.plan.parquet:
            self._run_parquet(progress)
        else:
            self._run_lines(progress)

    def _bar(self, progress: bool, total: int, unit: str) -> Any:
        if not progress:
            return _NoBar()
        from tqdm.auto import tqdm

        return tqdm(
            total=total,
            unit=unit,
            unit_scale=True,
            desc=f"ingest {self.path.name}",
            disable=None,  # shown on a terminal only
            leave=False,
        )

    def _run_lines(self, progress: bool) -> None:
        handle = self._csv_block if self.plan.csv else self._json_block
        line_no = 0
        done = 0
        busy = 0.0
        with (
            self._bar(progress, self.path.stat().st_size, "B") as bar,
            _Blocks(self.path, self.plan.gz, self.block_size) as blocks,
        ):
            for item in blocks:
                if isinstance(item, _Fault):
                    self._fault(item, line_no)
                    break
                started = time.perf_counter()
                handle(item, line_no + 1)
                busy += time.perf_counter() - started
                line_no += item.n_lines
                bar.update(blocks.raw_bytes[0] - done)
                done = blocks.raw_bytes[0]
        self.stages = {**blocks.cpu, "parse_busy": busy}
        if self.lines_read == 0 and not self.skipped:
            raise DataFormatError(self.path, None, "empty file: no records")

    def _fault(self, fault: _Fault, line_no: int) -> None:
        where = line_no + 1
        if fault.key != "truncated_gzip" or not self.skip:
            raise DataFormatError(self.path, where, fault.reason)
        self.lines_read += 1
        self.skipped[fault.key] += 1
        log.info("%s:%d: %s; skipped the partial line", self.path, where, fault.reason)

    # -- validation shared by every format
    def _bad(self, line: int, key: str, message: str) -> None:
        """One bad line found while parsing: raise, or count it."""
        if not self.skip:
            raise DataFormatError(self.path, line, message)
        self.lines_read += 1
        self.skipped[key] += 1

    def _accept(self, converted: F.Converted, lines: np.ndarray) -> None:
        """Validate a converted table (rows numbered ``lines``), count, and write the good rows."""
        table = converted.table
        n = table.num_rows
        assert len(lines) == n
        if n == 0:
            return
        checks = [*converted.checks, *F.standard_checks(self.sources, table)]
        masks = [
            np.asarray(pc.fill_null(c.mask, False).to_numpy(zero_copy_only=False), dtype=bool)
            for c in checks
        ]
        bad = np.zeros(n, dtype=bool)
        for mask in masks:
            bad |= mask
        if bad.any():
            if not self.skip:
                # the earliest bad row; its reason is the first check it fails
                first = int(np.argmax(bad))
                check = next(c for c, m in zip(checks, masks, strict=True) if m[first])
                raise DataFormatError(self.path, int(lines[first]), check.message(first))
            seen = np.zeros(n, dtype=bool)
            for check, mask in zip(checks, masks, strict=True):
                new = mask & ~seen
                if new.any():
                    self.skipped[check.key] += int(new.sum())
                    seen |= mask
        self.lines_read += n
        if bad.any():
            table = table.filter(pa.array(~bad))
        assert self.sink is not None
        self.sink.add(table.cast(self.sink.schema))

    # -- JSON
    def _json_block(self, chunk: _Chunk, first: int) -> None:
        fmt = self.plan.fmt
        assert fmt is not None
        if not fmt.literal:
            fast = self._arrow_json(chunk, first, fmt)
            if fast is not None:
                table, lines = fast
                self._accept(fmt.convert(table), lines)
                return
        self._slow_json(chunk.data, first, fmt)

    def _arrow_json(
        self, chunk: _Chunk, first: int, fmt: F.Format
    ) -> tuple[pa.Table, np.ndarray] | None:
        """Parse a whole block with PyArrow; None when the slow path must look at it."""
        if not chunk.utf8:
            return None
        try:
            table = pajson.read_json(
                pa.BufferReader(chunk.data),
                read_options=pajson.ReadOptions(block_size=1 << 20, use_threads=True),
                parse_options=pajson.ParseOptions(
                    explicit_schema=fmt.raw_schema, unexpected_field_behavior="ignore"
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return None
        lines = _line_numbers(chunk.data, first, chunk.newlines)
        if len(lines) != table.num_rows:
            return None
        return table, lines

    def _slow_json(self, block: bytes, first: int, fmt: F.Format) -> None:
        rows: list[dict[str, Any]] = []
        numbers: list[int] = []
        pending: tuple[int, F.BadRecord] | None = None
        for i, raw in enumerate(block.split(b"\n")):
            if not raw.strip():
                continue
            try:
                text = _decode(raw)
                rows.append(F.coerce_record(fmt, F.parse_line(text, fmt.literal)))
                numbers.append(first + i)
            except F.BadRecord as bad:
                if not self.skip:
                    pending = (first + i, bad)
                    break
                self._bad(first + i, bad.key, bad.message)
        if rows:
            table = pa.Table.from_pylist(rows, schema=fmt.raw_schema)
            self._accept(fmt.convert(table), np.asarray(numbers, dtype=np.int64))
        if pending is not None:
            self._bad(pending[0], pending[1].key, pending[1].message)

    # -- CSV
    def _csv_block(self, chunk: _Chunk, first: int) -> None:
        layout = self.plan.csv
        assert layout is not None
        block, newlines, utf8 = chunk.data, chunk.newlines, chunk.utf8
        if layout.header_line is not None and first <= layout.header_line:
            # drop the lines up to and including the header
            pos = 0
            for _ in range(layout.header_line - first + 1):
                nl = block.find(b"\n", pos)
                pos = len(block) if nl < 0 else nl + 1
            block = block[pos:]
            newlines = None
            first = layout.header_line + 1
        if not block.strip():
            return
        names = [f"f{i}" for i in range(layout.n_fields)]
        wanted = {f"f{idx}": canon for canon, idx in layout.columns.items()}
        table = None
        if utf8:
            try:
                table = pacsv.read_csv(
                    pa.BufferReader(block),
                    read_options=pacsv.ReadOptions(
                        column_names=names, use_threads=True, block_size=1 << 20
                    ),
                    parse_options=pacsv.ParseOptions(newlines_in_values=False),
                    convert_options=pacsv.ConvertOptions(
                        column_types={n: pa.string() for n in names},
                        include_columns=list(wanted),
                        strings_can_be_null=False,
                        quoted_strings_can_be_null=False,
                    ),
                )
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                table = None
        if table is not None:
            lines = _line_numbers(block, first, newlines)
            if len(lines) == table.num_rows:
                table = table.rename_columns([wanted[n] for n in table.column_names])
                self._accept(F.convert_ratings_csv(table), lines)
                return
        self._slow_csv(block, first, layout)

    def _slow_csv(self, block: bytes, first: int, layout: _CsvLayout) -> None:
        cols: dict[str, list[str]] = {name: [] for name in layout.columns}
        numbers: list[int] = []
        pending: tuple[int, F.BadRecord] | None = None
        for i, raw in enumerate(block.split(b"\n")):
            if not raw.strip():
                continue
            try:
                text = _decode(raw).rstrip("\r")
                try:
                    fields = next(csv.reader([text]), [])
                except csv.Error as exc:
                    raise F.BadRecord("invalid_csv", f"not a valid CSV row ({exc})") from None
                if len(fields) != layout.n_fields:
                    raise F.BadRecord(
                        "wrong_field_count",
                        f"expected {layout.n_fields} comma-separated fields, got {len(fields)}",
                    )
            except F.BadRecord as bad:
                if not self.skip:
                    pending = (first + i, bad)
                    break
                self._bad(first + i, bad.key, bad.message)
                continue
            for name, idx in layout.columns.items():
                cols[name].append(fields[idx])
            numbers.append(first + i)
        if numbers:
            table = pa.table({k: pa.array(v, pa.string()) for k, v in cols.items()})
            self._accept(F.convert_ratings_csv(table), np.asarray(numbers, dtype=np.int64))
        if pending is not None:
            self._bad(pending[0], pending[1].key, pending[1].message)

    # -- Parquet
    def _run_parquet(self, progress: bool) -> None:
        try:
            pf = pq.ParquetFile(self.path)
        except (pa.ArrowException, OSError) as exc:
            raise DataFormatError(self.path, None, f"not a readable Parquet file ({exc})") from None
        names = set(pf.schema_arrow.names)
        fmt = self.plan.fmt
        if self.plan.parquet == "canonical":
            wanted = [f for f in schema_for(self.plan.kind) if f.name in names]
        else:
            assert fmt is not None
            wanted = [f for f in fmt.raw_schema if f.name in names]
        start = 0
        with self._bar(progress, pf.metadata.num_rows, "rows") as bar:
            try:
                batches = pf.iter_batches(batch_size=65536, columns=[f.name for f in wanted])
                for batch in batches:
                    table = pa.Table.from_batches([batch])
                    lines = np.arange(start + 1, start + 1 + table.num_rows, dtype=np.int64)
                    start += table.num_rows
                    if fmt is not None:
                        converted = fmt.convert(table)
                    else:
                        converted = self._canonical(table)
                    self._accept(converted, lines)
                    bar.update(table.num_rows)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise DataFormatError(
                    self.path, None, f"cannot read its columns as the canonical types ({exc})"
                ) from None

    def _canonical(self, table: pa.Table) -> F.Converted:
        schema = schema_for(self.plan.kind)
        arrays = []
        for f in schema:
            col = F.column(table, f.name, f.type)
            if f.name == "rating":
                col = col.cast(pa.float64())
            elif f.type == pa.int32() and pa.types.is_integer(col.type):
                col = F.to_int32(col)
            elif col.type != f.type:
                col = col.cast(f.type)
            arrays.append(col)
        return F.Converted(pa.Table.from_arrays(arrays, names=schema.names))


# --------------------------------------------------------------------------- helpers


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, n: int) -> None:
        pass


def _valid_utf8(block: bytes) -> bool:
    if block.isascii():
        return True
    offsets = pa.array([0, len(block)], pa.int32()).buffers()[1]
    arr = pa.Array.from_buffers(pa.binary(), 1, [None, offsets, pa.py_buffer(block)])
    try:
        arr.cast(pa.string())
    except pa.ArrowInvalid:
        return False
    return True


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise F.BadRecord(
            "not_utf8", f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
        ) from None


def _line_numbers(block: bytes, first: int, newlines: np.ndarray | None = None) -> np.ndarray:
    """Physical line numbers of the non-blank lines of ``block`` (which starts at ``first``).

    ``newlines`` are the offsets of the newline bytes, when the caller has them already.
    """
    data = np.frombuffer(block, dtype=np.uint8)
    if newlines is None:
        newlines = np.flatnonzero(data == 10)
    starts = newlines + 1  # where each line after the first begins
    if len(starts) and starts[-1] == len(data):
        starts = starts[:-1]  # the block ends with a newline: no line after it
    starts = np.concatenate([[0], starts])
    numbers = np.arange(first, first + len(starts), dtype=np.int64)
    # a blank line starts with whitespace (or is empty); only those few need a closer look
    head = data[np.minimum(starts, len(data) - 1)] if len(data) else data
    suspect = np.flatnonzero((head == 10) | (head == 13) | (head == 32) | (head == 9))
    if not len(suspect):
        return numbers
    ends = np.concatenate([starts[1:], [len(data)]])
    blank = [i for i in suspect if not block[starts[i] : ends[i]].strip()]
    return np.delete(numbers, blank)
