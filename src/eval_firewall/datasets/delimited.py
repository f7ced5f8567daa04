"""The CSV and TSV reader: a header row, then one record per row, each line bounded and
decoded as the JSON Lines reader's are."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..config.model import LimitsConfig
from .lines import REST_NOT_READ, BadRecord, Record, decode_line, iter_lines, line_digest, open_binary, too_long_message


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


def delimited_header(path: Path, delimiter: str, limits: LimitsConfig, display: str) -> list[str]:
    """The header row of a CSV or TSV file ([] when it has none, or it is unreadable)."""
    _bound_csv_fields(limits)
    too_long: list[tuple[int, str]] = []
    with open_binary(path, limits, display) as fh:
        reader = csv.reader(_csv_lines(fh, limits, display, too_long), delimiter=delimiter)
        try:
            header = next(reader)
        except (StopIteration, csv.Error):
            return []
        return [] if too_long else header

