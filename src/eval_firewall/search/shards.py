"""The train index searched shard by shard: one search function per scan, two executors.

A train index is a list of chunks, one per train file (:mod:`eval_firewall.index`): its
shards. The two scans of the overlap audit that touch every train row are functions of one
shard and the eval side, whose answers merge exactly into the answer over all rows:

- :func:`vector_shard`: the static vectors' exact threshold search of one shard
  (:meth:`~.vectors.VectorIndex.search_above` on its mapped float16 vectors); the k best of
  each shard merge into the k best of all (best first, then by row, as one search orders
  them), kept as a bounded (queries x k) heap;
- :func:`containment_shard`: the containment scan of one shard's stored word hashes
  (:func:`~.containment.scan_stored`) from a fresh eval state; each shard's n-gram hits, the
  train rows each n-gram was found in and, for a short item, how many rows held its first
  words when each whole copy was found, merge in shard order into what one scan of every
  shard in turn finds (:func:`merge_containment`), boilerplate judged on the whole set.

An executor maps such a function over the shards, with the eval side (query vectors, n-gram
tables) given once:

- :class:`LocalExecutor` (``--engine local``, the default): in this process, one shard at a
  time, memory-mapped from disk, each answer merged as it comes;
- :class:`RayExecutor` (``--engine ray``): one Ray task per shard, the eval side put in the
  object store once (``ray.put``), each task opening its chunk from the shared cache
  directory (digests checked in the worker as in any process), answers merged in shard
  order by the driver. The cache's signing key never leaves the driver: it checked each
  chunk's signed manifest and hands the workers the manifest.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from . import containment
from .vectors import VectorIndex, _merge_hits

# Fractional CPUs of one shard's search task: a whole CPU each would let the tasks hold every
# CPU of a small cluster (a local Ray of 2), starving Ray's own work of what it needs.
TASK_CPUS = 0.5


class Executor(Protocol):
    """Runs ``fn(shard, *shared)`` for every shard; yields the answers in shard order.
    ``name``: the engine (``local`` runs in this process)."""

    name: str

    def map(self, fn: Callable[..., Any], shards: Sequence[Any], *shared: Any) -> Iterator[Any]:
        """Each shard's answer, in the order of ``shards``."""


class LocalExecutor:
    """In this process, one shard after the other (each memory-mapped)."""

    name = "local"

    def map(self, fn: Callable[..., Any], shards: Sequence[Any], *shared: Any) -> Iterator[Any]:
        """Each shard's answer, computed when the caller asks for it."""
        for shard in shards:
            yield fn(shard, *shared)


@dataclass(frozen=True)
class _ChunkSpec:
    """What a worker needs to open a chunk the driver opened and checked: its directory,
    key and (signature-checked) manifest, never the signing key; and the files whose digest
    the driver checked, by (device, inode, size, mtime), so that a worker on the same
    filesystem does not hash an unchanged file again (one elsewhere, or a file changed
    since, is hashed as in any process)."""

    directory: str
    key: str
    manifest: dict[str, Any]
    verified: tuple[tuple[tuple[int, ...], str], ...] = ()
    remote: str | None = None       # the index location a mirrored chunk's files come from

    @classmethod
    def of(cls, chunk: Any) -> _ChunkSpec:
        remote = chunk.remote.location if chunk.remote is not None else None
        return cls(os.path.abspath(chunk.directory), chunk.key, chunk.manifest, chunk.checked(),
                   remote)

    def open(self) -> Any:
        from pathlib import Path

        from ..index.chunk import Chunk
        from ..index.digests import trust

        trust(self.verified)
        where = (self.directory, self.key)
        if where not in _OPENED:
            directory, remote = Path(self.directory), None
            if self.remote is not None:     # a mirrored chunk: the files not here come
                from ..index.remote import RemoteIndex, worker_mirror

                remote = RemoteIndex(self.remote)          # from the index location
                if not directory.is_dir():  # a worker on another node: its own mirror
                    directory = worker_mirror(self.key)
            _OPENED[where] = Chunk(directory, self.key, self.manifest, b"", remote)
        return _OPENED[where]


# A worker's opened chunks (their mappings and checked digests), by directory and key, for the
# next task of the job.
_OPENED: dict[tuple[str, str], Any] = {}


def _on_worker(fn: Callable[..., Any], spec: _ChunkSpec, *shared: Any) -> Any:
    return fn(spec.open(), *shared)


class RayExecutor:
    """One Ray task per shard on the cluster of the current Ray session (see
    :func:`eval_firewall.index.ray_engine.session`)."""

    name = "ray"

    def __init__(self, ray: Any) -> None:
        """Run on ``ray`` (the module, initialized)."""
        self.ray = ray
        self._task = ray.remote(num_cpus=TASK_CPUS, max_retries=1)(_on_worker)

    def map(self, fn: Callable[..., Any], shards: Sequence[Any], *shared: Any) -> Iterator[Any]:
        """Each shard's answer; every task is submitted before the first answer is awaited."""
        from ..errors import UserError

        ray = self.ray
        refs = [ray.put(value) for value in shared]
        pending = [self._task.remote(fn, _ChunkSpec.of(c), *refs) for c in shards]
        for chunk, ref in zip(shards, pending):
            try:
                yield ray.get(ref)
            except ray.exceptions.RayError as exc:
                cause = getattr(exc, "cause", None) or exc
                raise UserError(f"the Ray task searching its index chunk failed: "
                                f"{type(cause).__name__}: {str(cause).splitlines()[0][:300]}",
                                path=str(chunk.manifest["source"].get("path"))) from None


@contextmanager
def open_executor(engine: str = "local", address: str | None = None) -> Iterator[Executor]:
    """The executor of ``engine`` for the length of a run (``ray``: on the cluster at
    ``address`` or ``RAY_ADDRESS``, else a local Ray started now and stopped after)."""
    if engine == "local":
        yield LocalExecutor()
        return
    from ..index.ray_engine import session

    with session(address) as ray:
        yield RayExecutor(ray)


# --- static vectors ----------------------------------------------------------------------------

def vector_shard(chunk: Any, name: str, queries: np.ndarray, threshold: float | None, k: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """One shard's k best rows per query (scoring at least ``threshold`` unless it is None),
    numbered in the shard: the search of :class:`~.vectors.VectorIndex`, exact."""
    index = VectorIndex(chunk.array(name), storage=np.float16)
    return index.search(queries, k) if threshold is None else \
        index.search_above(queries, threshold, k)


class _Rows:
    """Rows of every shard's vectors by global row number (``vectors[ids]``), mapped."""

    def __init__(self, chunks: Sequence[Any], name: str, offsets: np.ndarray, dim: int) -> None:
        self.chunks, self.name, self.offsets, self.dim = list(chunks), name, offsets, dim

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, ids: Any) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        out = np.empty((len(ids), self.dim), dtype=np.float16)
        shard = np.searchsorted(self.offsets, ids, side="right") - 1
        for c in np.unique(shard).tolist():
            at = shard == c
            out[at] = self.chunks[c].array(self.name)[ids[at] - self.offsets[c]]
        return out


class ShardedVectorIndex(VectorIndex):
    """The static vectors of a train index, searched shard by shard by an executor; answers
    as :class:`~.vectors.VectorIndex` gives them over all rows at once. ``vectors[ids]``
    gathers rows from the mapped shards (the whole matrix is never assembled)."""

    def __init__(self, chunks: Sequence[Any], name: str, dim: int,  # noqa: D417
                 runner: Executor) -> None:
        """Shards ``chunks``, each holding the array ``name`` of ``dim`` columns."""
        self.chunks, self.name, self.runner = list(chunks), name, runner
        self.backend = "numpy"
        self.offsets = np.cumsum([0] + [c.rows for c in self.chunks]).astype(np.int64)
        self.rows = _Rows(self.chunks, name, self.offsets, dim)

    @property
    def vectors(self) -> _Rows:  # type: ignore[override]
        """Rows by number, ``vectors[ids]``, gathered from the mapped shards."""
        return self.rows

    def take(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The rows ``ids`` as float32."""
        return self.rows[ids].astype(np.float32)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def dim(self) -> int:
        """The size of a vector."""
        return self.rows.dim

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`VectorIndex.search` over every shard: each shard's top k merged."""
        return self._merged(queries, k, None)

    def search_above(self, queries: np.ndarray, threshold: float, k: int
                     ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`VectorIndex.search_above` over every shard: each shard's top k merged."""
        return self._merged(queries, k, threshold)

    def save(self, path: Any) -> None:
        """Not stored elsewhere: its shards are the index's chunks."""
        raise NotImplementedError("a sharded index lives in its chunks")

    def _merged(self, queries: np.ndarray, k: int, threshold: float | None
                ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        indices = np.full((len(queries), k), -1, dtype=np.int64)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        if not len(queries):
            return indices, scores
        shards = [c for c in self.chunks if c.rows]
        starts = [int(self.offsets[i]) for i, c in enumerate(self.chunks) if c.rows]
        answers = self.runner.map(vector_shard, shards, self.name, queries, threshold, k)
        for start, (found, values) in zip(starts, answers):
            q, r = np.nonzero(found >= 0)
            if len(q):
                _merge_hits(indices, scores, q, found[q, r] + start, values[q, r], k)
        return indices, scores


# --- containment -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShardHits:
    """One shard's containment answer (rows numbered in the shard): its n-gram hits of keys not
    retired in the shard, the train rows each key was found in there and which it retired;
    its whole copies of short items, each with the rows holding the item's first words up to
    it in the shard (``reach``), and those rows' counts per anchor."""

    grams: np.ndarray          # [key, row, position]
    gram_rows: np.ndarray
    gram_dead: np.ndarray
    whole: np.ndarray          # [item, row, position]
    reach: np.ndarray
    anchor_rows: np.ndarray


class _Whole(list):  # type: ignore[type-arg]
    """The scan's list of whole copies, noting each copy's anchor row count when found."""

    def __init__(self, items: containment.EvalItems) -> None:
        super().__init__()
        self.items = items
        self.reach: list[np.ndarray] = []
        self.key_of = _anchor_key_of(items)

    def append(self, found: Any) -> None:
        self.reach.append(self.items.anchors.rows[self.key_of[found[:, 0]]].copy())
        super().append(found)


def _anchor_key_of(items: containment.EvalItems) -> np.ndarray:
    """Eval item -> the index of its anchor's key (short items only)."""
    anchors = items.anchors
    key_of = np.zeros(len(items.tokens), dtype=np.int64)
    entry = np.arange(len(anchors.items))
    key_of[anchors.items] = np.searchsorted(anchors.first, entry, side="right") - 1
    return key_of


def _fresh(items: containment.EvalItems) -> containment.EvalItems:
    """``items`` with none of its keys counted or retired yet (its tables' counters copied)."""
    fresh = copy.copy(items)
    for name in ("grams", "anchors"):
        table = copy.copy(getattr(items, name))
        table.rows = np.zeros(len(table.keys), dtype=np.int64)
        table.dead = np.zeros(len(table.keys), dtype=bool)
        setattr(fresh, name, table)
    return fresh


def stored_postings(chunk: Any) -> dict[str, np.ndarray]:
    """A chunk's containment arrays; built from its normalized texts (not stored) when the
    chunk lacks sound ones."""
    if chunk.has("containment.tokens") and chunk.has("containment.starts"):
        arrays = {"tokens": chunk.array("containment.tokens"),
                  "starts": chunk.array("containment.starts")}
        starts = arrays["starts"]
        if (starts.shape == (chunk.rows + 1,) and int(starts[0]) == 0
                and int(starts[-1]) == len(arrays["tokens"])
                and not (np.diff(starts) < 0).any()):
            return arrays
    return containment.build(chunk.table().column("norm"))


def containment_shard(chunk: Any, items: containment.EvalItems) -> ShardHits:
    """One shard's containment answer (see :class:`ShardHits`; rows numbered in the shard),
    scanned from a fresh state."""
    release = getattr(chunk, "release", None)      # a mapped chunk's scanned pages let go

    def done(lo: int, hi: int) -> None:
        if release is not None:
            release("containment.tokens", lo, hi)
    return scan_shard(stored_postings(chunk), items, done)


def scan_shard(arrays: dict[str, np.ndarray], items: containment.EvalItems,
               done: Callable[[int, int], None] | None = None) -> ShardHits:
    """:func:`containment_shard` of a shard's arrays (``done``: see
    :func:`~eval_firewall.search.containment.scan_stored`)."""
    items = _fresh(items)
    hits = containment.Hits()
    whole = hits.whole = _Whole(items)
    containment.scan_stored(arrays, items, hits, done=done)
    empty = np.zeros((0, 3), dtype=np.int64)
    return ShardHits(np.concatenate(hits.grams) if hits.grams else empty,
                     items.grams.rows, items.grams.dead,
                     np.concatenate(whole) if whole else empty,
                     np.concatenate(whole.reach) if whole.reach else np.zeros(0, np.int64),
                     items.anchors.rows)


def merge_containment(parts: Iterable[ShardHits], items: containment.EvalItems,
                      offsets: Sequence[int] | np.ndarray, advance: Callable[[int], None] | None = None
                      ) -> dict[int, containment.Contained]:
    """Each eval item's best containing train row from the shards' answers, in shard order
    (shard ``c``'s rows numbered from ``offsets[c]``; ``advance`` told each shard's rows):
    what one scan of every shard in turn finds. An n-gram counts as boilerplate when its rows
    over all shards pass ``max_train_rows``; a short item's whole copy counts when, with the
    rows of earlier shards, its first words had not yet passed ``ANCHOR_ROWS`` rows."""
    grams, anchors = items.grams, items.anchors
    gram_rows = np.zeros(len(grams.keys), dtype=np.int64)
    gram_dead = np.zeros(len(grams.keys), dtype=bool)
    anchor_rows = np.zeros(len(anchors.keys), dtype=np.int64)
    key_of = _anchor_key_of(items)
    hits = containment.Hits()
    for c, part in enumerate(parts):
        start = int(offsets[c])
        if advance is not None:
            advance(int(offsets[c + 1]) - start)
        gram_rows += part.gram_rows
        gram_dead |= part.gram_dead | (gram_rows > items.settings.max_train_rows)
        if len(part.grams):
            found = part.grams + np.array([0, start, 0], dtype=np.int64)
            hits.grams = [h[~gram_dead[h[:, 0]]] for h in (*hits.grams, found)]
        if len(part.whole):
            kept = anchor_rows[key_of[part.whole[:, 0]]] + part.reach <= containment.ANCHOR_ROWS
            hits.whole.append(part.whole[kept] + np.array([0, start, 0], dtype=np.int64))
        anchor_rows += part.anchor_rows
    merged = copy.copy(items)
    merged.grams = copy.copy(grams)
    merged.grams.rows, merged.grams.dead = gram_rows, gram_dead
    return containment.contained(hits, merged)
