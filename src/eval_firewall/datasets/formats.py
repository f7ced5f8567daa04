"""The file formats: each format's reader in one table (:data:`READERS`), and the format of a
file told from its name.

A reader yields (line, record-or-problem) and streams. ``line`` is the 1-based line where the
record starts (CSV/TSV: the header is line 1), or the 1-based row number for Parquet. A record
that cannot be parsed is yielded as a :class:`BadRecord` so that it becomes a finding rather
than a dropped row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from ..config.model import LimitsConfig
from ..errors import UserError
from .delimited import delimited_header, read_delimited
from .json_array import read_json
from .jsonl import read_jsonl
from .lines import BadRecord, Record
from .parquet import parquet_header, read_parquet

EXTENSIONS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
    ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
}


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


class Reader(NamedTuple):
    """A format's reader: its records, and its columns when the format has a header or schema."""

    records: Callable[[Path, list[str] | None, LimitsConfig | None, str | None],
                      Iterator[tuple[int, Record | BadRecord]]]
    header: Callable[[Path, LimitsConfig, str], list[str]] | None = None


# The one place a format is registered: its name (the config's ``format``) -> its reader.
READERS: dict[str, Reader] = {
    "jsonl": Reader(lambda path, columns, limits, display: read_jsonl(path, limits, display)),
    "json": Reader(lambda path, columns, limits, display: read_json(path, limits, display)),
    "csv": Reader(lambda path, columns, limits, display: read_delimited(path, ",", limits, display),
                  lambda path, limits, display: delimited_header(path, ",", limits, display)),
    "tsv": Reader(lambda path, columns, limits, display: read_delimited(path, "\t", limits, display),
                  lambda path, limits, display: delimited_header(path, "\t", limits, display)),
    "parquet": Reader(read_parquet, parquet_header),
}


def header_of(path: Path, fmt: str, display: str | None = None,
              limits: LimitsConfig | None = None) -> list[str] | None:
    """Column names for formats that have a header (CSV/TSV, Parquet); None otherwise.

    A file that is not Parquet at all is a UserError naming ``display``.
    """
    reader = READERS.get(fmt)
    if reader is None or reader.header is None:
        return None
    return reader.header(path, limits or LimitsConfig(), display or str(path))


def read_records(path: Path, fmt: str, columns: list[str] | None = None,
                 limits: LimitsConfig | None = None, display: str | None = None
                 ) -> Iterator[tuple[int, Record | BadRecord]]:
    """The records of a file in format ``fmt``, each with its line (or row) number."""
    reader = READERS.get(fmt)
    if reader is None:
        raise UserError(f"unknown format '{fmt}'", path=display or str(path))
    return reader.records(path, columns, limits, display)
