"""Parquet rows within bounds: decoded sizes counted before any value is copied.

A Parquet file is compressed twice over: by its codec and by its dictionary pages, where one
value can stand for every row. So the reader keeps text columns stored with a dictionary as
dictionaries (:func:`dictionary_columns`), measures each row's decoded bytes from lengths and
indices (:func:`sized_batches`, checked against ``limits.max_file_bytes``), skips a row over
``limits.max_row_bytes`` without copying it (:func:`cells_digest` hashes its bytes where they
lie), and makes Python values of the rest with shared dictionary values shared
(:func:`records`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config.model import LimitsConfig
from ..errors import UserError
from ..safeio.paths import shorten
from .lines import BadRecord, Record, line_hasher, too_big_message


def dictionary_columns(pf: Any) -> set[str]:
    """The top-level columns stored with a dictionary page in some row group."""
    meta, out = pf.metadata, set()
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        for j in range(group.num_columns):
            chunk = group.column(j)
            if chunk.has_dictionary_page:
                out.add(chunk.path_in_schema.split(".")[0])
    return out


def is_text(kind: Any) -> bool:
    """Whether an Arrow type holds strings or bytes."""
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind)
                or pa.types.is_binary(kind) or pa.types.is_large_binary(kind))


def bool_array(values: Any) -> Any:
    """A pyarrow boolean array of ``values`` (a numpy mask)."""
    import pyarrow as pa

    return pa.array(values, pa.bool_())


def _value_sizes(array: Any) -> Any:
    """The bytes each value of an Arrow array holds once decoded (strings by their length,
    dictionaries by the value each index points at, lists and structs summed), as int64."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    n = len(array)
    if isinstance(array, pa.ChunkedArray):
        parts = [_value_sizes(c) for c in array.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)
    if pa.types.is_dictionary(kind):
        sizes = _value_sizes(array.dictionary)
        indices = array.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        out = sizes[indices] if len(sizes) else np.zeros(n, np.int64)
        return np.where(array.is_null().to_numpy(zero_copy_only=False), 0, out)
    if is_text(kind):
        return pc.binary_length(array).fill_null(0).to_numpy(zero_copy_only=False).astype(
            np.int64)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_map(kind):
        flat = pc.list_flatten(array)
        parents = pc.list_parent_indices(array).to_numpy(zero_copy_only=False)
        return np.bincount(parents, weights=_value_sizes(flat), minlength=n).astype(np.int64)
    if pa.types.is_struct(kind):
        total = np.zeros(n, np.int64)
        for i in range(kind.num_fields):
            total += _value_sizes(array.field(i))
        return total
    width = getattr(kind, "bit_width", 64) or 64
    return np.full(n, max(1, width // 8), np.int64)


def _row_sizes(batch: Any) -> Any:
    """The decoded bytes of each row of a record batch: its cells' sizes summed."""
    import numpy as np

    total = np.zeros(batch.num_rows, np.int64)
    for column in batch.columns:
        total += _value_sizes(column)
    return total


def sized_batches(pf: Any, columns: list[str], limits: LimitsConfig, display: str
                   ) -> Iterator[tuple[Any, Any]]:
    """The file's record batches, each with its rows' decoded sizes; a UserError once the rows
    so far hold more than ``limits.max_file_bytes`` decoded. Sizes come from lengths and
    dictionary indices before any value is copied: a row group's declared size can be small
    while every row points at one huge dictionary value."""
    import pyarrow as pa

    limit, total = int(limits.max_file_bytes), 0
    batches = pf.iter_batches(batch_size=1024, columns=columns)
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as exc:
            raise UserError(f"not a readable Parquet file: {shorten(str(exc))}",
                            path=display) from None
        if batch is None:
            return
        sizes = _row_sizes(batch)
        total += int(sizes.sum())
        if total > limit:
            raise UserError(f"decoded, the file's rows are larger than limits.max_file_bytes "
                            f"({limit} bytes); reading stopped there", path=display)
        yield batch, sizes


def records(batch: Any) -> list[Record]:
    """A record batch's rows as dicts; a dictionary column's values are made Python objects
    once, and rows that share a value share the object."""
    import pyarrow as pa

    names = batch.schema.names
    columns = []
    for column in batch.columns:
        if pa.types.is_dictionary(column.type):
            values = column.dictionary.to_pylist()
            columns.append([None if i is None else values[i]
                            for i in column.indices.to_pylist()])
        else:
            columns.append(column.to_pylist())
    return [dict(zip(names, row)) for row in zip(*columns)]


def cells_digest(batch: Any, row: int) -> str:
    """A hash of one row's cells as stored (its string bytes uncopied): an unreadable row's
    identity, without making a Python string of a huge cell."""
    import numpy as np
    import pyarrow as pa

    hasher = line_hasher()
    for column in batch.columns:
        array = column
        # (No scalar of a text value: pyarrow copies its bytes into one.)
        if pa.types.is_dictionary(array.type):
            index = array.indices[row]
            array, row_in = array.dictionary, index.as_py()
        else:
            row_in = row
        if row_in is None or array.is_null()[row_in].as_py():
            hasher.update(b"\x00null")
        elif is_text(array.type):
            # The value's bytes where they lie in the array's data buffer: no copy.
            wide = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
            _, offsets, data = array.buffers()[:3]
            at = np.frombuffer(offsets, np.int64 if wide else np.int32,
                               count=2, offset=(array.offset + row_in) * (8 if wide else 4))
            hasher.update(memoryview(data)[int(at[0]):int(at[1])])
        else:
            hasher.update(repr(array[row_in].as_py()).encode("utf-8", "surrogatepass"))
        hasher.update(b"\x1f")
    digest: str = hasher.hexdigest()
    return digest


def read_parquet(path: Path, columns: list[str] | None, limits: LimitsConfig | None = None,
                 display: str | None = None) -> Iterator[tuple[int, Record | BadRecord]]:
    """Parquet: (1-based row number, {column: value}) per row, read a row group at a time."""
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


def parquet_header(path: Path, limits: LimitsConfig, display: str) -> list[str]:
    """The column names of a Parquet file (its schema)."""
    return list(_parquet_file(path, limits, display).schema_arrow.names)

