"""Parsed rows of a data file, cached by the file's content.

Parsing a large JSONL file and normalizing its text costs far more than loading the rows back
from an Arrow file (the docs' Benchmarks page has the figures). The key covers the file's bytes,
its path and every dataset setting that shapes a row, so an edited file or config is simply a
cache miss.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..cache import Cache, content_key
from ..config import DatasetConfig
from ..rows import Row
from ..text.normalize import NORMALIZATION_VERSION, normalize_array, normalize_many

NAMESPACE = "rows"
FORMAT = f"rows/1+normalization/{NORMALIZATION_VERSION}"
_STRINGS = ("row_id", "text", "label", "label_source", "verified_by", "generator", "norm")


def file_digest(path: Path) -> str:
    """A hash of a file's bytes."""
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def file_key(ds: DatasetConfig, display: str, path: Path, blob: str | None = None) -> str:
    """The cache key of a data file's rows: its content (the git blob sha when git knows the
    file unchanged, so the file is not read; else a hash of its bytes), path and settings."""
    shape = ds.model_dump(mode="json", exclude={"paths", "card"})
    if blob is not None:       # with the size: a checkout filter cannot make two files alike
        return content_key(FORMAT, shape, display, "git-blob", blob, path.stat().st_size)
    return content_key(FORMAT, shape, display, file_digest(path))


def encode(rows: list[Row], norm: list[str], problems: list[dict[str, Any]]) -> bytes:
    """A file's rows, normalized texts and problems as an Arrow IPC file."""
    columns = {
        "line": pa.array([r.line for r in rows], pa.int64()),
        "row_id": [r.row_id for r in rows], "text": [r.text for r in rows],
        "label": [r.label for r in rows],
        "label_source": [r.provenance.label_source for r in rows],
        "verified_by": [r.provenance.verified_by for r in rows],
        "generator": [r.provenance.generator for r in rows],
        "norm": norm,
    }
    table = pa.table({k: v if k == "line" else pa.array(v, pa.large_string())
                      for k, v in columns.items()})
    data: bytes = encode_table(table, problems).to_pybytes()
    return data


def encode_table(table: pa.Table, problems: list[dict[str, Any]]) -> pa.Buffer:
    """A table of the rows' columns (line, the strings) as an Arrow IPC file, uncopied."""
    table = table.replace_schema_metadata({"problems": json.dumps(problems)})
    size = pa.MockOutputStream()            # written once to count, then once into its buffer
    with pa.ipc.new_file(size, table.schema) as writer:
        writer.write_table(table)
    buffer = pa.allocate_buffer(size.size())
    with pa.ipc.new_file(pa.FixedSizeBufferWriter(buffer), table.schema) as writer:
        writer.write_table(table)
    return buffer


def decode(data: bytes, ds: DatasetConfig, display: str) -> tuple[list[Row], list[str], list[dict[str, Any]]]:
    """The rows, normalized texts and problems :func:`encode` stored."""
    table = pa.ipc.open_file(pa.py_buffer(data)).read_all()
    if set(table.column_names) != {"line", *_STRINGS}:
        raise ValueError("unexpected columns")
    from .columnar import build_rows

    rows = build_rows(table, ds.name, ds.role, display)
    problems = json.loads((table.schema.metadata or {}).get(b"problems", b"[]"))
    return rows, table.column("norm").to_pylist(), problems


def load(cache: Cache, key: str, ds: DatasetConfig, display: str
         ) -> tuple[list[Row], list[str], list[dict[str, Any]]] | None:
    """A file's cached rows, or None (an unreadable entry is discarded)."""
    data = cache.get_bytes(NAMESPACE, key)
    if data is None:
        return None
    try:
        return decode(data, ds, display)
    except (pa.ArrowException, ValueError, KeyError) as exc:
        cache.discard_bytes(NAMESPACE, key, f"is unreadable ({exc})")
        return None


def store(cache: Cache, key: str, rows: list[Row], problems: list[dict[str, Any]]) -> list[str]:
    """Cache a file's rows; their normalized texts."""
    norm = normalize_many([r.text for r in rows])
    cache.put_bytes(NAMESPACE, key, encode(rows, norm, problems))
    return norm


def store_table(cache: Cache, key: str, table: pa.Table) -> list[str]:
    """Cache a file's rows given as columns (:data:`columnar.COLUMNS`, no problems); their
    normalized texts."""
    norm = normalize_array(table.column("text"))
    table = table.append_column("norm", norm)
    cache.put_bytes(NAMESPACE, key, memoryview(encode_table(table, [])))
    result: list[str] = norm.to_pylist()
    return result
