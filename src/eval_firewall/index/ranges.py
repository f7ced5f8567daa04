"""A chunk's rows read a few at a time from the index location: where each column's buffers
lie in its rows file (noted when the chunk is written), and those byte ranges fetched and
checked block by block.

The rows file is an uncompressed Arrow IPC file; its manifest entry lists, besides the whole
file's SHA-256, its block size, each column's null count and the *layout*: per record batch,
its rows and, per column, its type, offset and the file offsets of its buffers (validity
bitmap, value offsets, data). The chunk's ``rows.blocks.npy`` holds the SHA-256 of each block
(32 bytes per 32 KiB; fetched and checked whole, as any chunk file). One value is then a few
small ranges (its validity bit, two offsets, its bytes), each read as the blocks that hold it,
every block checked against its digest before use and kept for the next value; a column
without values is not read. A search that has read half a file by range (or 64 MiB) fetches
the file (a cold run reads most rows' texts: ranges would cost more requests and bytes). A
chunk whose manifest has no layout (written by an older version) or a column of another type
is read whole, as before.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

TYPES = ("int64", "large_string", "string")      # the column types read by range
BLOCK = 1 << 15                                 # bytes per checked block of a rows file
BLOCKS = "rows.blocks"                          # the array of their SHA-256 digests
KEEP_BLOCKS = 512                               # blocks kept per chunk for the next value
POINT_ROWS = 64                                 # a longer slice reads the whole rows file
WHOLE, WHOLE_BYTES = 0.5, 1 << 26    # past half a rows file read by range (64 MiB at most),
                                    # the file is fetched


def blocks_name(file: str) -> str:
    """The array holding the block digests of a chunk's file (``rows.arrow``:
    ``rows.blocks``; ``lexical.rows.npy``: ``lexical.rows.blocks``)."""
    return f"{file.rsplit('.', 1)[0]}.blocks"


def layout(path: Path) -> dict[str, Any] | None:
    """Where each column's buffers lie in the Arrow IPC file ``path``, per record batch;
    None when a column's type is not read by range."""
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        base = source.read_buffer(source.size()).address      # zero-copy: the mapping
        reader = pa.ipc.open_file(source)
        batches = []
        for i in range(reader.num_record_batches):
            batch = reader.get_batch(i)
            columns = {}
            for name, array in zip(batch.schema.names, batch.columns):
                if str(array.type) not in TYPES:
                    return None
                columns[name] = {"type": str(array.type), "offset": array.offset, "buffers": [
                    None if b is None else [b.address - base, b.size] if b.size else [0, 0]
                    for b in array.buffers()]}       # (an empty buffer lies nowhere in it)
            batches.append({"rows": batch.num_rows, "columns": columns})
    return {"batches": batches}


class BlockReader:
    """One file of a chunk at the index location, read by byte range through ``read(start,
    stop)`` (the bytes there, as stored) in blocks of ``block`` bytes, each checked against
    its row of ``digests`` (n x 32 bytes of SHA-256) before use and kept for the next read."""

    def __init__(self, size: int, block: int, digests: Any, read: Callable[[int, int], bytes],
                 fail: Callable[[str], Exception], name: str) -> None:
        self.size, self.block, self.digests, self.name = size, block, digests, name
        if digests.ndim != 2 or digests.shape != (-(-size // block), 32):
            raise fail(f"has the block digests of {name} of the wrong shape")
        self._read, self._fail = read, fail
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self.fetched = 0                       # bytes fetched (blocks)

    def _block(self, i: int) -> bytes:
        found = self._blocks.get(i)
        if found is None:
            if not 0 <= i < len(self.digests):
                raise self._fail(f"has a layout outside its {self.name}")
            start = i * self.block
            found = self._read(start, min(self.size, start + self.block))
            if hashlib.sha256(found).digest() != self.digests[i].tobytes():
                raise self._fail(f"has {self.name} failing its digest check (changed or "
                                 "truncated there)")
            self.fetched += len(found)
            self._blocks[i] = found
            if len(self._blocks) > KEEP_BLOCKS:
                self._blocks.popitem(last=False)
        self._blocks.move_to_end(i)
        return found

    def bytes(self, start: int, length: int) -> bytes:
        """``length`` bytes of the file from ``start``, from checked blocks."""
        if length <= 0:
            return b""
        if start < 0 or start + length > self.size:
            raise self._fail(f"has a layout outside its {self.name}")
        first, last = start // self.block, (start + length - 1) // self.block
        joined = b"".join(self._block(i) for i in range(first, last + 1))
        return joined[start - first * self.block:start - first * self.block + length]


class RangeRows:
    """The rows of one chunk's rows file, read by range (:class:`BlockReader`) through the
    layout its manifest entry ``meta`` lists."""

    def __init__(self, meta: dict[str, Any], file: BlockReader,
                 fail: Callable[[str], Exception]) -> None:
        self.file, self._fail = file, fail
        batches = meta["layout"].get("batches")
        if not isinstance(batches, list) or not all(_batch(b) for b in batches):
            raise fail("has a rows layout that is not one")
        self.batches: list[dict[str, Any]] = batches
        self.nulls: dict[str, Any] = dict(meta.get("nulls", {}))
        self.starts = [0]
        for batch in self.batches:
            self.starts.append(self.starts[-1] + int(batch["rows"]))

    @property
    def fetched(self) -> int:
        """Bytes of the file fetched so far."""
        return self.file.fetched

    def bytes(self, start: int, length: int) -> bytes:
        """``length`` bytes of the rows file from ``start``."""
        return self.file.bytes(start, length)

    def value(self, column: str, row: int) -> Any:
        """Row ``row``'s value in ``column`` (None when null)."""
        import bisect

        if self.nulls.get(column) == self.starts[-1]:
            return None                         # a column without values: nothing to read
        b = bisect.bisect_right(self.starts, row) - 1
        try:
            spec = self.batches[b]["columns"][column]
            k = int(spec["offset"]) + row - self.starts[b]
            validity, *rest = spec["buffers"]
        except (KeyError, IndexError, TypeError, ValueError):
            raise self._fail(f"has no usable layout of column {column!r}") from None
        if validity is not None and not self.bytes(validity[0] + k // 8, 1)[0] >> (k % 8) & 1:
            return None
        if spec["type"] == "int64":
            return int.from_bytes(self.bytes(rest[0][0] + 8 * k, 8), "little", signed=True)
        width = 8 if spec["type"] == "large_string" else 4
        ends = self.bytes(rest[0][0] + width * k, 2 * width)
        first = int.from_bytes(ends[:width], "little", signed=True)
        last = int.from_bytes(ends[width:], "little", signed=True)
        if not 0 <= first <= last <= rest[1][1]:
            raise self._fail(f"has a layout outside its rows file ({column!r})")
        return self.bytes(rest[1][0] + first, last - first).decode("utf-8", "surrogatepass")

    def table(self, start: int, stop: int) -> Any:
        """Rows ``start`` to ``stop`` as a pyarrow Table (the columns and types of the file)."""
        import pyarrow as pa

        columns: dict[str, Any] = {}
        for name, spec in self.batches[0]["columns"].items() if self.batches else ():
            values: Sequence[Any] = [self.value(name, j) for j in range(start, stop)]
            columns[name] = pa.array(values, getattr(pa, spec["type"])())
        return pa.table(columns)


def _batch(batch: Any) -> bool:
    """Whether a layout's record batch is one: its rows, and per column a type read by range,
    an offset, and as many buffers (None, or a file offset and size) as that type has."""
    def number(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and x >= 0

    if not isinstance(batch, dict) or not number(batch.get("rows")) \
            or not isinstance(batch.get("columns"), dict):
        return False
    for spec in batch["columns"].values():
        if not isinstance(spec, dict) or spec.get("type") not in TYPES \
                or not number(spec.get("offset")) or not isinstance(spec.get("buffers"), list):
            return False
        buffers = spec["buffers"]
        if len(buffers) != (2 if spec["type"] == "int64" else 3) or not all(
                b is None or (isinstance(b, list) and len(b) == 2 and all(map(number, b)))
                for b in buffers) or buffers[1] is None:
            return False
    return True


# --- a chunk's files read by range ----------------------------------------------------------

def _reader(chunk: Any, file: str) -> BlockReader | None:
    """The range reader of a mirrored chunk's file not here that has block digests; None
    otherwise, or once a search read half of it (64 MiB at most) that way: then the file is
    fetched, and mapped as any."""
    meta = chunk.manifest["files"].get(file, {})
    digests = blocks_name(file)
    if chunk.remote is None or chunk.here(file) or not isinstance(meta.get("block"), int) \
            or not chunk.has(digests):
        chunk.readers.pop(file, None)
        return None
    found: BlockReader | None = chunk.readers.get(file)
    if found is None:
        found = chunk.readers[file] = chunk.remote.block_reader(
            chunk.key, file, meta, chunk.array(digests))
    elif found.fetched > min(meta["size"] * WHOLE, WHOLE_BYTES):
        chunk.fetch(file)
        chunk.readers.pop(file, None)
        return None
    return found


def ranged_rows(chunk: Any) -> RangeRows | None:
    """A mirrored chunk's rows read by range while its rows file is not here; else None."""
    from .chunk import ROWS

    file = _reader(chunk, ROWS)
    meta = chunk.manifest["files"][ROWS]
    if file is None or not isinstance(meta.get("layout"), dict):
        return None
    rows = chunk.readers.get(f"{ROWS}#rows")
    if not isinstance(rows, RangeRows) or rows.file is not file:
        rows = chunk.readers[f"{ROWS}#rows"] = RangeRows(meta, file,
                                                         chunk.remote.failure(chunk.key))
    return rows


def rows_slice(chunk: Any, start: int, stop: int) -> Any:
    """Rows ``start`` to ``stop`` of a chunk as a pyarrow Table: a few rows of a mirrored
    chunk are read by range, more fetch its rows file."""
    ranges = ranged_rows(chunk) if stop - start <= POINT_ROWS else None
    if ranges is not None:
        return ranges.table(start, stop)
    return chunk.table().slice(start, stop - start)
