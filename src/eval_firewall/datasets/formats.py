"""Record readers, one per file format: each yields (line, record-or-problem) and streams.

``line`` is the 1-based line where the record starts (CSV/TSV: the header is line 1), or the
1-based row number for Parquet. A record that cannot be parsed is yielded as a
:class:`BadRecord` so that it becomes a finding rather than a dropped row.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError

# Said of a record after which a file cannot be parsed any further, so no row goes unmentioned.
REST_NOT_READ = "the rest of the file was not read"
LFS_SIGNATURE = b"version https://git-lfs.github.com/spec/v1"

EXTENSIONS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
    ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
}

# The csv module refuses fields over 128 KiB by default; long documents are legitimate rows.
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


@dataclass(frozen=True, slots=True)
class BadRecord:
    message: str
    field: str | None = None


def detect_format(path: Path, override: str | None, display: str) -> str:
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
    with open(path, "rb") as fh:
        head = fh.read(len(LFS_SIGNATURE))
    if head == LFS_SIGNATURE:
        raise UserError(
            "this is a Git LFS pointer file, not the data it points to", path=display, line=1,
            hint="fetch the data with 'git lfs pull' (in GitHub Actions: actions/checkout "
                 "with 'lfs: true')")


def _open_text(path: Path) -> io.TextIOBase:
    """UTF-8 text; a byte-order mark (as Excel writes to CSV) is skipped, not read as data."""
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def first_non_utf8(path: Path) -> tuple[int, int, int] | None:
    """(line, byte column, byte value) of the first byte that is not UTF-8, or None."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, exc.start + 1, raw[exc.start]
    return None


def read_jsonl(path: Path) -> Iterator[tuple[int, dict | BadRecord]]:
    with _open_text(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as exc:
                yield number, BadRecord(f"invalid JSON: {exc.msg} (column {exc.colno})")
                continue
            if not isinstance(record, dict):
                yield number, BadRecord(f"expected a JSON object, got {_kind(record)}")
                continue
            yield number, record


def read_json(path: Path) -> Iterator[tuple[int, dict | BadRecord]]:
    """A JSON array of objects. The file is decoded whole (use JSONL for large data)."""
    with _open_text(path) as fh:
        text = fh.read()
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
        try:
            record, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield exc.lineno, BadRecord(f"invalid JSON: {exc.msg} (column {exc.colno}); "
                                        f"{REST_NOT_READ}")
            return
        if isinstance(record, dict):
            yield line, record
        else:
            yield line, BadRecord(f"expected a JSON object, got {_kind(record)}")
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


def read_delimited(path: Path, delimiter: str) -> Iterator[tuple[int, dict | BadRecord]]:
    with _open_text(path) as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield 1, BadRecord(f"invalid CSV header: {exc}")
            return
        width = len(header)
        previous = reader.line_num
        while True:
            start = previous + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, BadRecord(f"invalid CSV: {exc}; {REST_NOT_READ}")
                return
            previous = reader.line_num
            if not values:
                continue
            if len(values) != width:
                yield start, BadRecord(f"expected {width} columns, got {len(values)}")
                continue
            yield start, dict(zip(header, values))


def read_parquet(path: Path, columns: list[str] | None) -> Iterator[tuple[int, dict | BadRecord]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise UserError(f"not a readable Parquet file: {exc}", path=str(path)) from None
    present = set(pf.schema_arrow.names)
    wanted = [c for c in columns if c in present] if columns is not None else None
    number = 0
    for batch in pf.iter_batches(batch_size=4096, columns=wanted):
        for record in batch.to_pylist():
            number += 1
            yield number, record


def header_of(path: Path, fmt: str, display: str | None = None) -> list[str] | None:
    """Column names for formats that have a header (CSV/TSV, Parquet); None otherwise.

    A file that is not Parquet at all is a UserError naming ``display``.
    """
    if fmt in ("csv", "tsv"):
        with _open_text(path) as fh:
            try:
                return next(csv.reader(fh, delimiter="," if fmt == "csv" else "\t"))
            except (StopIteration, csv.Error):
                return []
    if fmt == "parquet":
        import pyarrow.parquet as pq
        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise UserError(f"not a readable Parquet file: {exc}",
                            path=display or str(path)) from None
    return None


def read_records(path: Path, fmt: str, columns: list[str] | None = None
                 ) -> Iterator[tuple[int, dict | BadRecord]]:
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt == "json":
        return read_json(path)
    if fmt == "csv":
        return read_delimited(path, ",")
    if fmt == "tsv":
        return read_delimited(path, "\t")
    if fmt == "parquet":
        return read_parquet(path, columns)
    raise UserError(f"unknown format '{fmt}'", path=str(path))


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)
