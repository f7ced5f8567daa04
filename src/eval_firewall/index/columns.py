"""Row sequences over index chunks: what the audits index into, without a Python object per row.

:class:`IndexedRows` is a ``Sequence[Row]`` over the chunks' Arrow tables: ``len`` is known,
``rows[j]`` builds that one row, iteration builds them a chunk at a time (the few audits that
walk every train row pay what reading them used to cost, no more). :class:`StringColumn` is a
``Sequence[str]`` over one string column (texts, normalized texts), turning itself into a list
only when a caller reads a large share of it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np

from ..rows import Row
from .chunk import Chunk
from .ranges import ranged_rows, rows_slice


class _Offsets:
    """Global row number <-> (chunk number, row in chunk)."""

    def __init__(self, sizes: Sequence[int]) -> None:
        self.starts = [0]
        for size in sizes:
            self.starts.append(self.starts[-1] + size)

    def __len__(self) -> int:
        return self.starts[-1]

    def locate(self, j: int) -> tuple[int, int]:
        if j < 0:
            j += len(self)
        if not 0 <= j < len(self):
            raise IndexError(j)
        c = bisect.bisect_right(self.starts, j) - 1
        return c, j - self.starts[c]


class StringColumn(Sequence[str]):
    """One string column of several chunks' tables, as a read-only sequence of str."""

    # Past this share of the rows read one by one, the column becomes a list (faster per item).
    MATERIALIZE = 0.05

    def __init__(self, chunks: Sequence[Chunk], column: str) -> None:
        self.chunks = list(chunks)
        self.column = column
        self._at = _Offsets([c.rows for c in self.chunks])
        self._arrays: list[Any] = [None] * len(self.chunks)
        self._list: list[str] | None = None
        self._reads = 0

    def __len__(self) -> int:
        return len(self._at)

    def array(self, c: int) -> Any:
        """Chunk ``c``'s column (a pyarrow ChunkedArray over the mapped file, not copied)."""
        if self._arrays[c] is None:
            self._arrays[c] = self.chunks[c].table().column(self.column)
        return self._arrays[c]

    def tolist(self) -> list[str]:
        """Every string, as a list (kept)."""
        if self._list is None:
            self._list = [s for c in range(len(self.chunks)) for s in self.array(c).to_pylist()]
        return self._list

    @overload
    def __getitem__(self, j: int) -> str: ...
    @overload
    def __getitem__(self, j: slice) -> list[str]: ...

    def __getitem__(self, j: int | slice) -> str | list[str]:
        if self._list is not None:
            return self._list[j]
        if isinstance(j, slice):
            return [self[i] for i in range(*j.indices(len(self)))]
        self._reads += 1
        if self._reads > self.MATERIALIZE * len(self) and self._reads > 10_000:
            return self.tolist()[j]
        c, local = self._at.locate(int(j))
        ranges = ranged_rows(self.chunks[c]) if self._arrays[c] is None else None
        if ranges is not None:                  # a mirrored chunk's: read by range
            found: str = ranges.value(self.column, local)
            return found
        value: str = self.array(c)[local].as_py()
        return value

    def __iter__(self) -> Iterator[str]:
        if self._list is not None:
            yield from self._list
            return
        for c in range(len(self.chunks)):
            yield from self.array(c).to_pylist()


class IndexedRows(Sequence[Row]):
    """The rows of train datasets' chunks (one per file, in file order); ``names``: each
    chunk's dataset."""

    def __init__(self, chunks: Sequence[Chunk], names: Sequence[str], role: str,
                 displays: Sequence[str]) -> None:
        self.chunks = list(chunks)
        self.names, self.role = list(names), role       # each chunk's dataset name
        self.displays = list(displays)
        self._at = _Offsets([c.rows for c in self.chunks])

    def __len__(self) -> int:
        return len(self._at)

    def _build(self, c: int, start: int, stop: int) -> list[Row]:
        from ..datasets.columnar import build_rows

        table = rows_slice(self.chunks[c], start, stop)
        return build_rows(table, self.names[c], self.role, self.displays[c])

    @overload
    def __getitem__(self, j: int) -> Row: ...
    @overload
    def __getitem__(self, j: slice) -> list[Row]: ...

    def __getitem__(self, j: int | slice) -> Row | list[Row]:
        if isinstance(j, slice):
            return [self[i] for i in range(*j.indices(len(self)))]
        c, local = self._at.locate(int(j))
        return self._build(c, local, local + 1)[0]

    def __iter__(self) -> Iterator[Row]:
        for c, chunk in enumerate(self.chunks):    # growing blocks: a loop that stops early
            start, block = 0, 16                   # builds few rows
            while start < chunk.rows:
                yield from self._build(c, start, min(chunk.rows, start + block))
                start, block = start + block, min(block * 4, 65536)

    def distinct(self, name: str) -> bool:
        """Whether every row's value in column ``name`` differs from every other's."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if not self.chunks:
            return True
        values = pa.chunked_array([c.table().column(name).combine_chunks() for c in self.chunks])
        return bool(pc.count_distinct(values, mode="all").as_py() == len(self))

    def indices_in(self, name: str, values: Sequence[str]) -> np.ndarray:
        """The rows whose column ``name`` holds one of ``values``."""
        import pyarrow as pa
        import pyarrow.compute as pc

        wanted = pa.array(list(values), pa.large_string())
        found = [np.flatnonzero(pc.fill_null(pc.is_in(c.table().column(name), value_set=wanted),
                                             False).to_numpy(zero_copy_only=False)) + start
                 for c, start in self._valued(name)]
        return np.concatenate(found) if found else np.empty(0, dtype=np.int64)

    def _valued(self, name: str) -> list[tuple[Chunk, int]]:
        """The chunks (with their first row) where some row has a value in column ``name``:
        the others' rows are not read (a mirrored chunk's are not fetched)."""
        return [(c, start) for c, start in zip(self.chunks, self._at.starts)
                if c.null_count(name) < c.rows]

    def all_null(self, name: str) -> bool:
        """Whether no row has a value in column ``name``."""
        return all(c.null_count(name) == c.rows for c in self.chunks)

    def indices_with(self, name: str) -> np.ndarray:
        """The rows whose column ``name`` holds a non-empty value."""
        import pyarrow.compute as pc

        found = [np.flatnonzero(pc.fill_null(pc.not_equal(c.table().column(name), ""),
                                             False).to_numpy(zero_copy_only=False)) + start
                 for c, start in self._valued(name)]
        return np.concatenate(found) if found else np.empty(0, dtype=np.int64)

    def column(self, name: str) -> list[Any]:
        """One column of every row (e.g. ``row_id``), without building the rows."""
        return [v for chunk in self.chunks for v in chunk.table().column(name).to_pylist()]

    def of_file(self, display: str) -> Sequence[Row]:
        """The rows read from the file ``display``."""
        picked = [c for c, d in enumerate(self.displays) if d == display]
        return IndexedRows([self.chunks[c] for c in picked], [self.names[c] for c in picked],
                           self.role, [self.displays[c] for c in picked])

    def offsets(self) -> np.ndarray:
        """The global number of each chunk's first row, and the total."""
        return np.asarray(self._at.starts, dtype=np.int64)
