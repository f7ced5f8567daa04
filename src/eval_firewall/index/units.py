"""The paraphrase search's units over index chunks: whole train rows and windows of long ones.

:func:`~eval_firewall.search.windows.windows_of` turns a train corpus into paraphrase units by
walking every row; over an index that would build a Python object per train row on every run.
:func:`indexed_windows` gives the same units, numbered the same way, from arrays: each chunk
stores, per window setting, how many units each of its rows has and the word range of each unit
(``windows.<setting>.counts``, ``.first``, ``.last``), and the units' static vectors
(``windows.<setting>.<vectors name>``), computed the first time and then mapped. Only the long
rows' texts are read to cut windows, and a unit's text is read when the search asks for it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property, lru_cache
from typing import Any

import numpy as np

from ..search.vectors import VectorIndex
from ..search.windows import Windows, units_of
from ..text.normalize import model_text
from ..text.spans import word_offsets
from .chunk import ROWS, Chunk
from .digests import BadChunk
from .store import vectors_name
from .train import ENCODE_ROWS, IndexedCorpus, index_fingerprint


def word_counts(chunk: Chunk) -> np.ndarray:
    """Each row's words (as :func:`~eval_firewall.search.windows.word_count` counts them)."""
    import pyarrow.compute as pc

    norm = chunk.table().column("norm")
    spaces = pc.count_substring(norm, " ").to_numpy(zero_copy_only=False).astype(np.int64)
    empty = pc.equal(pc.binary_length(norm), 0).to_numpy(zero_copy_only=False)
    chunk.release(ROWS)                 # read once: its pages need not stay resident
    return np.where(empty, 0, spaces + 1)


def window_starts(words: np.ndarray, window: int) -> np.ndarray:
    """How many windows :func:`~eval_firewall.search.windows.starts` cuts from rows of
    ``words`` words (vectorized)."""
    step = max(1, window // 2)
    span = np.maximum(1, words - window + 1)
    count = (span + step - 1) // step
    out: np.ndarray = count + ((count - 1) * step + window < words)
    return out


def _setting(window: int, min_ratio: float) -> str:
    return f"windows.{window}x{min_ratio!r}"


def chunk_stats(chunk: Chunk, window: int, min_ratio: float) -> tuple[int, int]:
    """(long rows, windows :func:`window_starts` counts for them) of one chunk, stored in the
    chunk the first time (so a later run reads no text to decide whether to window)."""
    name = f"{_setting(window, min_ratio)}.stats"
    if chunk.has(name):
        try:
            stats = chunk.array(name)
            if stats.shape == (2,) and (stats >= 0).all():
                return int(stats[0]), int(stats[1])
        except BadChunk:
            pass
    words = word_counts(chunk)
    long = words[words > min_ratio * window]
    stats = np.array([len(long), int(window_starts(long, window).sum())], dtype=np.int64)
    chunk.add(name, stats)
    return int(stats[0]), int(stats[1])


def chunk_units(chunk: Chunk, window: int, min_ratio: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(units per row, first word, last word) of one chunk's units (-1: a whole row), stored in
    the chunk the first time (the long rows' windows, as :func:`units_of` cuts them)."""
    name = _setting(window, min_ratio)
    if all(chunk.has(f"{name}.{part}") for part in ("counts", "first", "last")):
        try:
            counts = chunk.array(f"{name}.counts")
            first, last = chunk.array(f"{name}.first"), chunk.array(f"{name}.last")
            if (counts.shape == (chunk.rows,) and first.shape == last.shape == (int(counts.sum()),)
                    and (counts >= 1).all()):
                return counts, first, last
        except BadChunk:
            pass
    words = word_counts(chunk)
    limit = min_ratio * window
    long_rows = np.flatnonzero(words > limit)
    counts = np.ones(chunk.rows, dtype=np.int32)
    ranges: list[list[tuple[int, int]]] = []
    if len(long_rows):
        table = chunk.table()
        texts = table.column("text").take(long_rows).to_pylist()
        norms = table.column("norm").take(long_rows).to_pylist()
        for j, text, norm in zip(long_rows, texts, norms):
            offsets = word_offsets(text)
            count = min(len(norm.split()), len(offsets))
            ranges.append(units_of(text, offsets[:count], window, limit))
            counts[j] = len(ranges[-1])
    first = np.full(int(counts.sum()), -1, dtype=np.int32)
    last = first.copy()
    if len(long_rows):
        at = np.cumsum(counts) - counts
        for j, cut in zip(long_rows, ranges):
            if cut:
                first[at[j]:at[j] + len(cut)], last[at[j]:at[j] + len(cut)] = zip(*cut)
    chunk.add(f"{name}.counts", counts)
    chunk.add(f"{name}.first", first)
    chunk.add(f"{name}.last", last)
    return counts, first, last


class _Ints(Sequence[int]):
    """An integer array as a sequence of Python ints."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [int(v) for v in self.values[i]]
        return int(self.values[i])


class _Words(Sequence["tuple[int, int] | None"]):
    """Unit -> its words in the row, (first, last), or None for a whole row."""

    def __init__(self, first: np.ndarray, last: np.ndarray) -> None:
        self.first, self.last = first, last

    def __len__(self) -> int:
        return len(self.first)

    def __getitem__(self, u: Any) -> Any:
        if isinstance(u, slice):
            return [self[i] for i in range(*u.indices(len(self)))]
        first = int(self.first[u])
        return None if first < 0 else (first, int(self.last[u]))


class _WholeRows(Mapping[int, int]):
    """Train row kept whole -> its unit (a windowed row is absent)."""

    def __init__(self, unit: np.ndarray) -> None:
        self.unit = unit            # per row: its unit, or -1 when windowed

    def __getitem__(self, j: Any) -> int:
        if isinstance(j, (int, np.integer)) and 0 <= j < len(self.unit) and self.unit[j] >= 0:
            return int(self.unit[j])
        raise KeyError(j)

    def __contains__(self, j: object) -> bool:
        return bool(isinstance(j, (int, np.integer)) and 0 <= j < len(self.unit)
                    and self.unit[j] >= 0)

    def __iter__(self) -> Iterator[int]:
        return iter(int(j) for j in np.flatnonzero(self.unit >= 0))

    def __len__(self) -> int:
        return int(np.count_nonzero(self.unit >= 0))


class _UnitTexts(Sequence[str]):
    """Each unit's text as a model reads it (read from its chunk on demand)."""

    def __init__(self, units: IndexedUnits) -> None:
        self.units = units

    def __len__(self) -> int:
        return len(self.units.row)

    def __getitem__(self, u: Any) -> Any:
        if isinstance(u, slice):
            return [self[i] for i in range(*u.indices(len(self)))]
        return self._text(int(u) if u >= 0 else int(u) + len(self))

    @lru_cache(maxsize=1 << 16)  # noqa: B019 (one per audit, dropped with it)
    def _text(self, u: int) -> str:
        units = self.units
        if not 0 <= u < len(units.row):
            raise IndexError(u)
        return self.batch(u, u + 1)[0]

    def batch(self, start: int, stop: int) -> list[str]:
        """The texts of units ``start`` to ``stop`` (of one chunk), read in one go."""
        units = self.units
        rows = units.row.values[start:stop]
        c = bisect.bisect_right(units.row_starts, int(rows[0])) - 1
        low = int(rows[0]) - units.row_starts[c]
        texts = units.chunks[c].table().column("text").slice(
            low, int(rows[-1]) - int(rows[0]) + 1).to_pylist()
        first, last = units.words.first[start:stop], units.words.last[start:stop]
        out = []
        offsets: tuple[int, list[tuple[int, int]]] = (-1, [])
        for k in range(stop - start):
            j = int(rows[k]) - int(rows[0])
            text = texts[j]
            if first[k] >= 0:
                if offsets[0] != j:
                    offsets = (j, word_offsets(text))
                text = text[offsets[1][first[k]][0]:offsets[1][last[k] - 1][1]]
            out.append(model_text(text))
        return out


class IndexedUnits(IndexedCorpus):
    """The paraphrase units of an indexed train corpus (see the module's docstring): what the
    paraphrase search reads as its train side (texts, fingerprint, vectors)."""

    owner: IndexedCorpus
    setting: str
    row: _Ints
    words: _Words
    row_starts: list[int]
    unit_starts: list[int]

    @property
    def chunks(self) -> list[Chunk]:
        """The train corpus' chunks."""
        return self.owner.chunks

    def __len__(self) -> int:
        return len(self.row)

    @cached_property
    def texts(self) -> _UnitTexts:  # type: ignore[override]
        """The units' texts, read on demand."""
        return _UnitTexts(self)

    @cached_property
    def fingerprint(self) -> str:
        """The chunks' keys and the window setting."""
        return index_fingerprint([*(c.key for c in self.chunks), self.setting])

    def vector_index(self, retriever: Any) -> VectorIndex:
        """The units' static vectors (float16), one mapped part per chunk, encoded into the
        chunk the first time a model needs them."""
        name = f"{self.setting}.{vectors_name(retriever.key)}"
        parts = []
        for c, chunk in enumerate(self.chunks):
            size = self.unit_starts[c + 1] - self.unit_starts[c]
            array = None
            if chunk.has(name):
                try:
                    array = chunk.array(name)
                    if array.shape != (size, retriever.dim):
                        raise BadChunk(f"has {name} of the wrong shape")
                except BadChunk as exc:
                    self.owner._warn(chunk, str(exc))
                    array = None
            if array is None:
                array = np.empty((size, retriever.dim), dtype=np.float16)
                for u0 in range(0, size, ENCODE_ROWS):
                    base = self.unit_starts[c] + u0
                    texts = self.texts.batch(base, base + min(ENCODE_ROWS, size - u0))
                    array[u0:u0 + len(texts)] = retriever.encode(texts)
                chunk.add(name, array, about=retriever.key)
                array = chunk.array(name)
            parts.append(array)
        chunks = self.chunks
        return VectorIndex(parts, storage=np.float16,
                           release=lambda c, lo, hi: chunks[c].release(name, lo, hi))


def indexed_windows(train: IndexedCorpus, window: int, min_ratio: float, max_windows: int
                    ) -> Windows | None:
    """:func:`~eval_firewall.search.windows.windows_of` for a corpus read from the index:
    the same units in the same order, from the chunks' arrays (see the module's docstring)."""
    chunks = train.chunks
    stats = [chunk_stats(c, window, min_ratio) for c in chunks]
    long_rows = sum(n for n, _ in stats)
    if not long_rows:
        return None
    total = sum(t for _, t in stats)
    if total + len(train) - long_rows > max_windows:
        return None
    rows, firsts, lasts, whole = [], [], [], []
    row_starts, unit_starts = [0], [0]
    for chunk in chunks:
        counts, first, last = chunk_units(chunk, window, min_ratio)
        local = np.repeat(np.arange(chunk.rows, dtype=np.int64), counts)
        rows.append(local + row_starts[-1])
        firsts.append(first)
        lasts.append(last)
        at = np.cumsum(counts) - counts
        whole.append(np.where(first[at] < 0, at + unit_starts[-1], -1) if chunk.rows else
                     np.empty(0, dtype=np.int64))
        row_starts.append(row_starts[-1] + chunk.rows)
        unit_starts.append(unit_starts[-1] + len(first))
    unit_row = _Ints(np.concatenate(rows))
    unit_words = _Words(np.concatenate(firsts), np.concatenate(lasts))
    corpus = IndexedUnits(train.rows, train.norm)      # rows/norm: the train rows' (unused)
    for key, value in (("owner", train), ("setting", _setting(window, min_ratio)),
                       ("row", unit_row), ("words", unit_words), ("row_starts", row_starts),
                       ("unit_starts", unit_starts)):
        object.__setattr__(corpus, key, value)
    return Windows(corpus, unit_row, unit_words,  # type: ignore[arg-type]
                   _WholeRows(np.concatenate(whole)))  # type: ignore[arg-type]
