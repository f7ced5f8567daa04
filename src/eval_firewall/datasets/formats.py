"""Record readers, one per file format: each yields (line, record-or-problem) and streams.

``line`` is the 1-based line where the record starts (CSV/TSV: the header is line 1), or the
1-based row number for Parquet. A record that cannot be parsed is yielded as a
:class:`BadRecord` so that it becomes a finding rather than a dropped row.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from ..config import LimitsConfig
from ..errors import UserError
from ..safeio.paths import shorten

# Said of a record after which a file cannot be parsed any further, so no row goes unmentioned.
REST_NOT_READ = "the rest of the file was not read"
LFS_SIGNATURE = b"version https://git-lfs.github.com/spec/v1"
BOM = b"\xef\xbb\xbf"
SKIP_CHUNK = 1 << 20        # bytes read at a time, also while skipping a line over the limit

EXTENSIONS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
    ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
}


Record = dict[str, Any]     # one record as parsed: column or key -> value


@dataclass(frozen=True, slots=True)
class BadRecord:
    message: str
    field: str | None = None
    digest: str | None = None     # line_digest of the record's bytes, when they were read


def detect_format(path: Path, override: str | None, display: str) -> str:
    """The file's format: ``override`` if set, else from its extension (``.gz`` looked through)."""
    if override:
        return override
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in EXTENSIONS:
        return EXTENSIONS[suffixes[-1]]
    raise UserError("cannot tell the file format from its name", path=display,
                    hint="use .jsonl, .jsonl.gz, .json, .csv, .tsv or .parquet, or set 'format' "
                         "on the dataset in the config")


def check_not_lfs_pointer(path: Path, display: str) -> None:
    """Refuse a Git LFS pointer file in place of the data (a one-line UserError)."""
    with open(path, "rb") as fh:
        head = fh.read(len(LFS_SIGNATURE))
    if head == LFS_SIGNATURE:
        raise UserError(
            "this is a Git LFS pointer file, not the data it points to", path=display, line=1,
            hint="fetch the data with 'git lfs pull' (in GitHub Actions: actions/checkout "
                 "with 'lfs: true')")


# --- bounded reading ----------------------------------------------------------------------------

def too_big_message(limits: LimitsConfig, decompressed: bool) -> str:
    """The error for a file over ``limits.max_file_bytes`` (on disk, or once decompressed)."""
    if decompressed:
        return (f"decompressed, the file is larger than limits.max_file_bytes "
                f"({int(limits.max_file_bytes)} bytes); reading stopped there")
    return f"the file is larger than limits.max_file_bytes ({int(limits.max_file_bytes)} bytes)"


def too_long_message(limits: LimitsConfig) -> str:
    """The invalid-row message for a line over ``limits.max_row_bytes``."""
    return (f"the line is longer than limits.max_row_bytes ({int(limits.max_row_bytes)} bytes); "
            "it was skipped")


def too_deep_message(limits: LimitsConfig) -> str:
    """The invalid-row message for JSON nested deeper than ``limits.max_json_depth``."""
    return f"the JSON is nested deeper than limits.max_json_depth ({limits.max_json_depth})"


class _Capped(io.RawIOBase):
    """A raw stream that stops with a UserError once more than ``limit`` bytes came out of it:
    a gzip bomb is cut off at the limit, whatever its compression ratio."""

    def __init__(self, inner: io.BufferedIOBase, limit: int, message: str, display: str) -> None:
        self._inner, self._limit, self._message, self._display = inner, limit, message, display
        self._total = 0

    def readable(self) -> bool:
        """Always: this is a read-only stream."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer``; a UserError once the limit is passed."""
        n = self._inner.readinto(buffer)
        self._total += n or 0
        if self._total > self._limit:
            raise UserError(self._message, path=self._display)
        return n

    def close(self) -> None:
        """Close the wrapped stream too."""
        try:
            self._inner.close()
        finally:
            super().close()


def open_binary(path: Path, limits: LimitsConfig, display: str | None = None) -> io.BufferedReader:
    """The file's bytes (gunzipped for ``.gz``), ending in a UserError past
    ``limits.max_file_bytes``."""
    display = display or str(path)
    limit = int(limits.max_file_bytes)
    inner: io.BufferedIOBase
    if path.suffix.lower() == ".gz":
        inner = gzip.GzipFile(path, "rb")
        message = too_big_message(limits, decompressed=True)
    else:
        if path.stat().st_size > limit:
            raise UserError(too_big_message(limits, decompressed=False), path=display)
        inner = open(path, "rb")
        message = too_big_message(limits, decompressed=False)
    return io.BufferedReader(_Capped(inner, limit, message, display), buffer_size=1 << 16)


def iter_lines(fh: BinaryIO, max_row_bytes: int, chunk_bytes: int = SKIP_CHUNK,
               digests: list[str] | None = None) -> Iterator[tuple[int, bytes | None]]:
    """(1-based line number, raw line with its line break) of a binary stream; ``None`` for a
    line longer than ``max_row_bytes``, which is read and skipped in bounded chunks, never held
    whole. Lines end at ``\\n``, ``\\r\\n`` or ``\\r``, as Python's universal newlines; a UTF-8
    byte-order mark (as Excel writes) is dropped. With ``digests``, the hash of each skipped
    line's bytes (:func:`line_digest`, hashed as it streams past) is appended to it before its
    ``None`` is yielded."""
    number = 0
    carry: list[bytes] = []     # the start of a line that ends in a later chunk
    carried = 0
    skipping = False            # inside a line over the limit: drop it up to its end
    skipped = _SkippedLine(digests)
    for chunk in _chunks(fh, chunk_bytes):
        for line in chunk.splitlines(keepends=True):
            if not line.endswith((b"\n", b"\r")):      # the chunk's last, unfinished line
                if skipping:
                    skipped.update(line)
                else:
                    carry.append(line)
                    carried += len(line)
                    if carried > max_row_bytes:
                        skipped.start(carry)
                        carry, carried, skipping = [], 0, True
                continue
            number += 1
            if skipping:
                skipping = False
                skipped.finish(line)
                yield number, None
                continue
            if carry:
                carry.append(line)
                line = b"".join(carry)
                carry, carried = [], 0
            ending = 2 if line.endswith(b"\r\n") else 1
            if len(line) - ending > max_row_bytes:
                skipped.whole(line)
                yield number, None
            else:
                yield number, line
    if skipping or carry:
        number += 1
        if skipping:
            skipped.finish(b"")
        yield number, None if skipping else b"".join(carry)


class _SkippedLine:
    """The digest of a line being skipped, hashed piece by piece (nothing when ``digests`` is
    None); :meth:`finish` appends it to ``digests``."""

    def __init__(self, digests: list[str] | None) -> None:
        self.digests, self.hasher = digests, cast(Any, None)

    def whole(self, line: bytes) -> None:
        """A line over the limit that was read whole."""
        if self.digests is not None:
            self.digests.append(line_digest(line))

    def start(self, pieces: list[bytes]) -> None:
        """The line's first pieces, read before it was known to be too long."""
        if self.digests is not None:
            self.hasher = line_hasher()
            for piece in pieces:
                self.hasher.update(piece)

    def update(self, piece: bytes) -> None:
        """A middle piece of the line."""
        if self.hasher is not None:
            self.hasher.update(piece)

    def finish(self, last: bytes) -> None:
        """The line's last piece (its line break is not hashed)."""
        if self.hasher is not None and self.digests is not None:
            self.hasher.update(last.rstrip(b"\r\n"))
            self.digests.append(self.hasher.hexdigest())
            self.hasher = None


def line_hasher() -> Any:
    """The hash of a record's bytes (:func:`line_digest`), to be fed piece by piece."""
    return hashlib.blake2b(digest_size=16)


def line_digest(raw: bytes | str) -> str:
    """The hash of one record's bytes (line break excluded): what an unreadable row's finding
    is fingerprinted by, so that a waiver of one broken line covers no other."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    hasher = line_hasher()
    hasher.update(raw.rstrip(b"\r\n"))
    digest: str = hasher.hexdigest()
    return digest


def _chunks(fh: BinaryIO, chunk_bytes: int) -> Iterator[bytes]:
    """The stream in chunks of about ``chunk_bytes``: a leading UTF-8 byte-order mark dropped,
    and no chunk ending between the ``\\r`` and ``\\n`` of one line break."""
    first = True
    held = b""                  # a \r at a chunk's end: the next chunk may start with its \n
    while True:
        raw = fh.read(chunk_bytes)
        if first:
            first = False
            if raw.startswith(BOM):
                raw = raw[len(BOM):]
        chunk, held = held + raw, b""
        if raw and chunk.endswith(b"\r"):
            chunk, held = chunk[:-1], b"\r"
        if raw and not chunk:
            continue
        if not chunk:
            return
        yield chunk


def decode_line(raw: bytes, number: int, display: str) -> str:
    """A line as text; bytes that are not UTF-8 are a UserError naming line and column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}",
                        path=display, line=number, hint="save the file as UTF-8") from None


# A JSON string (escapes included) or a bracket: strings are skipped, so brackets in them do
# not count.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def json_too_deep(text: str, max_depth: int, start: int = 0) -> bool:
    """Does the JSON in ``text`` nest arrays/objects deeper than ``max_depth``? A scan of the
    brackets (no recursion), so ``json.loads`` is only ever given what it can decode."""
    if text.count("[", start) + text.count("{", start) <= max_depth:
        return False
    depth = 0
    for match in _JSON_TOKENS.finditer(text, start):
        token = match.group()
        if token == "[" or token == "{":
            depth += 1
            if depth > max_depth:
                return True
        elif token == "]" or token == "}":
            depth -= 1
    return False


def _json_value_end(text: str, start: int) -> int:
    """Where the array or object starting at ``start`` ends (brackets balanced), or the end of
    the text; used to step over an element too deep to decode."""
    depth = 0
    for match in _JSON_TOKENS.finditer(text, start):
        token = match.group()
        if token == "[" or token == "{":
            depth += 1
        elif token == "]" or token == "}":
            depth -= 1
            if depth == 0:
                return match.end()
    return len(text)


def parse_json_line(line: str, limits: LimitsConfig) -> Any:
    """``json.loads`` for one line, after the depth check; raises json.JSONDecodeError or
    ValueError (too deep)."""
    if json_too_deep(line, limits.max_json_depth):
        raise ValueError(too_deep_message(limits))
    return json.loads(line)


def first_non_utf8(path: Path, limits: LimitsConfig | None = None
                   ) -> tuple[int, int, int] | None:
    """(line, byte column, byte value) of the first byte that is not UTF-8, or None."""
    limits = limits or LimitsConfig()
    with open_binary(path, limits) as fh:
        for number, raw in iter_lines(fh, int(limits.max_row_bytes)):
            if raw is None:
                continue
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, exc.start + 1, raw[exc.start]
    return None


# --- readers -------------------------------------------------------------------------------------

def read_jsonl(path: Path, limits: LimitsConfig | None = None, display: str | None = None
               ) -> Iterator[tuple[int, Record | BadRecord]]:
    """JSON Lines: (line number, object) per non-blank line; bad JSON, a line over the row
    limit or nested too deeply, or a value that is not an object is a :class:`BadRecord`."""
    limits = limits or LimitsConfig()
    display = display or str(path)
    depth, loads = limits.max_json_depth, json.loads
    skipped: list[str] = []
    with open_binary(path, limits, display) as fh:
        for number, raw in iter_lines(fh, int(limits.max_row_bytes), digests=skipped):
            if raw is None:
                yield number, BadRecord(too_long_message(limits), digest=skipped.pop())
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                decode_line(raw, number, display)       # raises the error naming the column
            if not line.strip():
                continue
            # The same check as parse_json_line, inlined: this loop runs for every row.
            if line.count("[") + line.count("{") > depth and json_too_deep(line, depth):
                yield number, BadRecord(too_deep_message(limits), digest=line_digest(raw))
                continue
            try:
                record = loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as exc:
                yield number, BadRecord(f"invalid JSON: {exc.msg} (column {exc.colno})",
                                        digest=line_digest(raw))
                continue
            if not isinstance(record, dict):
                yield number, BadRecord(f"expected a JSON object, got {_kind(record)}",
                                        digest=line_digest(raw))
                continue
            yield number, record


def read_json(path: Path, limits: LimitsConfig | None = None, display: str | None = None
              ) -> Iterator[tuple[int, Record | BadRecord]]:
    """A JSON array of objects. The file is decoded whole (use JSONL for large data), so it is
    bounded by ``limits.max_file_bytes``; an element nested too deeply is an invalid row."""
    limits = limits or LimitsConfig()
    display = display or str(path)
    with open_binary(path, limits, display) as fh:
        data = fh.read()
    if data.startswith(BOM):
        data = data[len(BOM):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UserError(f"not UTF-8 text: byte 0x{data[exc.start]:02x} at column {column}",
                        path=display, line=line, hint="save the file as UTF-8") from None
    del data
    check_depth = json_too_deep(text, limits.max_json_depth + 1)   # + 1: the array itself
    decoder = json.JSONDecoder()
    pos, line = _skip_ws(text, 0), 1
    line += text.count("\n", 0, pos)
    if pos >= len(text) or text[pos] != "[":
        yield line, BadRecord("expected a JSON array of objects at the top level")
        return
    pos += 1
    while True:
        start = _skip_ws(text, pos)
        line += text.count("\n", pos, start)
        pos = start
        if pos < len(text) and text[pos] == "]":
            return
        end = _json_value_end(text, pos) if check_depth and text[pos:pos + 1] in ("[", "{") \
            else -1
        if end >= 0 and json_too_deep(text[pos:end], limits.max_json_depth):
            yield line, BadRecord(too_deep_message(limits), digest=line_digest(text[pos:end]))
        else:
            try:
                record, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                yield exc.lineno, BadRecord(f"invalid JSON: {exc.msg} (column {exc.colno}); "
                                            f"{REST_NOT_READ}")
                return
            if isinstance(record, dict):
                yield line, record
            else:
                yield line, BadRecord(f"expected a JSON object, got {_kind(record)}",
                                      digest=line_digest(text[pos:end]))
        line += text.count("\n", pos, end)
        pos = _skip_ws(text, end)
        line += text.count("\n", end, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] == "]":
            return
        else:
            yield line, BadRecord("invalid JSON: expected ',' or ']' after an array element; "
                                  f"{REST_NOT_READ}")
            return


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _csv_lines(fh: BinaryIO, limits: LimitsConfig, display: str,
               too_long: list[tuple[int, str]]) -> Iterator[str]:
    """Decoded physical lines for the csv module, one per line so its line numbers hold; a
    line over the row limit becomes an empty line and its number (and the digest of its
    bytes) goes to ``too_long``."""
    digests: list[str] = []
    for number, raw in iter_lines(fh, int(limits.max_row_bytes), digests=digests):
        if raw is None:
            too_long.append((number, digests.pop()))
            yield "\n"
        else:
            yield decode_line(raw, number, display)


def _bound_csv_fields(limits: LimitsConfig) -> None:
    # The csv module refuses fields over 128 KiB by default; long documents are legitimate
    # rows, up to the row limit.
    csv.field_size_limit(int(limits.max_row_bytes))


def read_delimited(path: Path, delimiter: str, limits: LimitsConfig | None = None,
                   display: str | None = None) -> Iterator[tuple[int, Record | BadRecord]]:
    """CSV or TSV with a header row: (line number, {column: value}) per record."""
    limits = limits or LimitsConfig()
    display = display or str(path)
    _bound_csv_fields(limits)
    too_long: list[tuple[int, str]] = []
    with open_binary(path, limits, display) as fh:
        reader = csv.reader(_csv_lines(fh, limits, display, too_long), delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield 1, BadRecord(f"invalid CSV header: {exc}")
            return
        if too_long:
            number, digest = too_long.pop()
            yield number, BadRecord(too_long_message(limits) + f"; {REST_NOT_READ}",
                                    digest=digest)
            return
        width = len(header)
        previous = reader.line_num
        while True:
            start = previous + 1
            try:
                values = next(reader)
            except StopIteration:
                values = None
            except csv.Error as exc:
                yield from ((n, BadRecord(too_long_message(limits), digest=d))
                            for n, d in too_long)
                yield start, BadRecord(f"invalid CSV: {exc}; {REST_NOT_READ}")
                return
            for number, digest in too_long:
                yield number, BadRecord(too_long_message(limits), digest=digest)
            too_long.clear()
            if values is None:
                return
            previous = reader.line_num
            if not values:
                continue
            if len(values) != width:
                yield start, BadRecord(f"expected {width} columns, got {len(values)}",
                                       digest=line_digest("\x1f".join(values)))
                continue
            yield start, dict(zip(header, values))


def read_parquet(path: Path, columns: list[str] | None, limits: LimitsConfig | None = None,
                 display: str | None = None) -> Iterator[tuple[int, Record | BadRecord]]:
    """Parquet: (1-based row number, {column: value}) per row, read a row group at a time."""
    from .parquet import (
        bool_array,
        cells_digest,
        dictionary_columns,
        is_text,
        records,
        sized_batches,
    )

    limits = limits or LimitsConfig()
    display = display or str(path)
    pf = _parquet_file(path, limits, display)
    present = pf.schema_arrow.names
    wanted = [c for c in columns if c in set(present)] if columns is not None else present
    # Text columns are read as dictionaries, as stored: a value a dictionary page holds once
    # and 20,000 rows reference is not copied 20,000 times (a 1 KB file of 160 GB).
    texts = [c for c in dictionary_columns(pf) if c in wanted
             and is_text(pf.schema_arrow.field(c).type)]
    if texts:
        pf = _parquet_file(path, limits, display, read_dictionary=texts)
    row_limit = int(limits.max_row_bytes)
    number = 0
    for batch, sizes in sized_batches(pf, wanted, limits, display):
        fits = sizes <= row_limit
        kept = iter(records(batch.filter(bool_array(fits))) if fits.any() else ())
        for i, ok in enumerate(fits.tolist()):
            number += 1
            if ok:
                yield number, next(kept)
            else:
                yield number, BadRecord(
                    f"the row is larger than limits.max_row_bytes ({row_limit} bytes); it "
                    "was skipped", digest=cells_digest(batch, i))


def _parquet_file(path: Path, limits: LimitsConfig, display: str,
                  read_dictionary: list[str] | None = None) -> Any:
    """An open Parquet file whose size on disk, and whose row groups' declared uncompressed
    size, are within ``limits.max_file_bytes``."""
    import pyarrow.parquet as pq

    limit = int(limits.max_file_bytes)
    if path.stat().st_size > limit:
        raise UserError(too_big_message(limits, decompressed=False), path=display)
    try:
        pf = pq.ParquetFile(path, read_dictionary=read_dictionary or None)
        declared = sum(max(0, pf.metadata.row_group(i).total_byte_size)
                       for i in range(pf.metadata.num_row_groups))
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise UserError(f"not a readable Parquet file: {shorten(str(exc))}",
                        path=display) from None
    if declared > limit:
        raise UserError(f"uncompressed, the file's row groups are larger than "
                        f"limits.max_file_bytes ({limit} bytes); it was not read", path=display)
    return pf


def header_of(path: Path, fmt: str, display: str | None = None,
              limits: LimitsConfig | None = None) -> list[str] | None:
    """Column names for formats that have a header (CSV/TSV, Parquet); None otherwise.

    A file that is not Parquet at all is a UserError naming ``display``.
    """
    limits = limits or LimitsConfig()
    display = display or str(path)
    if fmt in ("csv", "tsv"):
        _bound_csv_fields(limits)
        too_long: list[tuple[int, str]] = []
        with open_binary(path, limits, display) as fh:
            reader = csv.reader(_csv_lines(fh, limits, display, too_long),
                                delimiter="," if fmt == "csv" else "\t")
            try:
                header = next(reader)
            except (StopIteration, csv.Error):
                return []
            return [] if too_long else header
    if fmt == "parquet":
        return list(_parquet_file(path, limits, display).schema_arrow.names)
    return None


def read_records(path: Path, fmt: str, columns: list[str] | None = None,
                 limits: LimitsConfig | None = None, display: str | None = None
                 ) -> Iterator[tuple[int, Record | BadRecord]]:
    """The records of a file in format ``fmt``, each with its line (or row) number."""
    if fmt == "jsonl":
        return read_jsonl(path, limits, display)
    if fmt == "json":
        return read_json(path, limits, display)
    if fmt == "csv":
        return read_delimited(path, ",", limits, display)
    if fmt == "tsv":
        return read_delimited(path, "\t", limits, display)
    if fmt == "parquet":
        return read_parquet(path, columns, limits, display)
    raise UserError(f"unknown format '{fmt}'", path=display or str(path))


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)
