"""Nearest-neighbour search over L2-normalized vectors (cosine = dot product).

One thin wrapper, one backend (usearch's approximate HNSW graph was dropped: no path used it):
- ``numpy``: exact, blocked matrix products. A cold audit builds the index once and queries
  it once, so exact search beat building an approximate HNSW graph and querying it (whose top
  hit did not always agree with the exact one; the docs' Benchmarks page has the figures).
  Threshold search (:meth:`VectorIndex.search_above`) starts each query's bar at its
  k-th best score among a sample of rows and runs in two exact stages: a bound of every score
  by one product over 80 columns instead of 128 (the 72 leading principal dimensions of the
  rows plus the norms of 8 tail segments, Cauchy-Schwarz), then exact scores of the pairs
  whose bound reaches the bar (a small share of them, refined by their rotated tails, then
  fewer still scored in float64), whose second stage runs in threads. It returns the hits of
  the one-stage product (``bench/search.py`` compares the two side by side). Where the bound
  is loose (vectors without principal structure) a slice of
  queries falls back to its full products, and a block of them to one stage.

``search(queries, k)`` returns ``(indices, scores)``, both ``(len(queries), k)``, best first;
slots beyond the index size hold index -1 and score -inf.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np

Backend = Literal["numpy"]   # the one backend (an approximate one would go here)
BLOCK_ROWS = 32768      # index rows per matrix product
QUERY_BLOCK = 1024      # queries per matrix product (a block of scores: 128 MiB)
FLOOR_SAMPLE = 8192     # rows whose k-th best score starts each query's bar in search_above
PREFIX_DIMS = 72        # per 128 dimensions: the leading principal ones, in stage one's product
TAIL_PARTS = 8          # per 128 dimensions: tail segments whose norms bound the rest
BOUND_SLACK = 1e-4      # float32 rounding allowance of a bound, per unit of both norms
HIT_ROWS = 128          # queries whose stage-one hits are listed at once
PAIR_CHUNK = 1 << 15    # pairs scored exactly at once (bounded memory)
WORKERS = min(8, os.cpu_count() or 1)   # threads of stage two
LOOSE_SHARE = 0.03      # pairs reaching the bar beyond which stage one's bound does not pay
# Fewer queries than this search in one stage: rotating every index row costs more than the
# narrower product saves (measured with a pull request's changed rows against 1M rows).
TWO_STAGE_QUERIES = 512


class VectorIndex:
    """``storage`` float16 halves the memory of a large index; scores are computed in float32.

    ``vectors`` is one 2-D array or a list of them (parts, e.g. one memory-mapped array per
    train index chunk): the rows are numbered across the parts in order, and the parts are
    searched block by block where they lie, never concatenated (:attr:`vectors` joins them
    only when asked). ``release(part, start, stop)``, when given, is told each block of a
    part's rows once a search is done with it (a memory-mapped part lets its pages go)."""

    def __init__(self, vectors: np.ndarray | Sequence[np.ndarray], backend: Backend = "numpy",
                 storage: type = np.float32,
                 release: Callable[[int, int, int], None] | None = None) -> None:
        parts = [vectors] if isinstance(vectors, np.ndarray) else list(vectors)
        parts = [np.ascontiguousarray(p, dtype=storage) for p in parts]
        if not parts or any(p.ndim != 2 for p in parts) or len({p.shape[1] for p in parts}) > 1:
            raise ValueError("vectors must be 2-D arrays of one width")
        self.parts = parts           # empty ones too: ``release`` numbers parts as given
        self.starts = np.cumsum([0] + [len(p) for p in self.parts])
        self.backend = backend
        self.release = release
        self._joined: np.ndarray | None = self.parts[0] if len(self.parts) == 1 else None

    @property
    def vectors(self) -> np.ndarray:
        """Every row as one array (the parts joined, once, when there are several)."""
        if self._joined is None:
            self._joined = np.concatenate(self.parts)
        return self._joined

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def dim(self) -> int:
        """The size of a vector."""
        return int(self.parts[0].shape[1])

    def take(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The rows ``ids`` (numbered across the parts) as float32."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(self.parts) == 1:
            one: np.ndarray = self.parts[0][ids].astype(np.float32)
            return one
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        part = np.searchsorted(self.starts, ids, side="right") - 1
        for p in np.unique(part):
            where = part == p
            out[where] = self.parts[p][ids[where] - self.starts[p]]
        return out

    def _sample(self) -> np.ndarray:
        """An evenly spaced sample of :data:`FLOOR_SAMPLE`-odd rows (float32)."""
        return self.take(np.arange(0, len(self), max(1, len(self) // FLOOR_SAMPLE)))

    def _row_blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first row's number, rows) for blocks of up to :data:`BLOCK_ROWS` rows of a part;
        each block is released (see the class) when the caller asks for the next."""
        for p, (start, part) in enumerate(zip(self.starts, self.parts)):
            for r0 in range(0, len(part), BLOCK_ROWS):
                yield int(start) + r0, part[r0:r0 + BLOCK_ROWS]
                if self.release is not None:
                    self.release(p, r0, min(len(part), r0 + BLOCK_ROWS))

    def _blocks(self, queries: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
        """(query offset, row offset, scores) for every block of the score matrix."""
        for r0, block in self._row_blocks():
            rows = block.astype(np.float32, copy=False).T
            for q0 in range(0, len(queries), QUERY_BLOCK):
                yield q0, r0, queries[q0:q0 + QUERY_BLOCK] @ rows

    def _empty(self, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        return np.full((n, k), -1, dtype=np.int64), np.full((n, k), -np.inf, dtype=np.float32)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best rows of each query and their scores, best first."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        n = len(queries)
        indices, scores = self._empty(n, k)
        if n == 0 or len(self) == 0:
            return indices, scores
        for q0, r0, sims in self._blocks(queries):
            end = q0 + len(sims)
            _merge_top(indices[q0:end], scores[q0:end], sims, r0, k)
        return indices, scores

    def search_above(self, queries: np.ndarray, threshold: float, k: int
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`search`, but only neighbours scoring at least ``threshold`` count.

        Exact, in two stages. The bar of a query is the threshold, or the k-th best score so
        far if higher; it starts at the query's k-th best among an evenly spaced sample of
        :data:`FLOOR_SAMPLE` rows (k rows reach it, so no row below it can be in the top k).
        Stage one bounds every score from above by one matrix product over fewer dimensions
        (:class:`_Projection`; the full product when the index is small) and keeps the pairs
        whose bound reaches the bar, found by one ``flatnonzero`` pass; stage two scores those
        pairs exactly (:func:`exact_scores`). Scores are the float32 rounding of the exact dot
        products of the stored vectors, so equal rows tie and hits come best first, then by
        row.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        indices, scores = self._empty(len(queries), k)
        if len(queries) and len(self):
            self._search_exact(queries, threshold, k, indices, scores)
        below = scores < threshold
        indices[below] = -1
        scores[below] = -np.inf
        return indices, scores

    def _search_exact(self, queries: np.ndarray, threshold: float, k: int,
                      indices: np.ndarray, scores: np.ndarray) -> None:
        """The two stages of :meth:`search_above`, block by block, into indices/scores;
        stage two of a block's queries runs in threads (numpy releases the GIL)."""
        projection = _Projection.fit(self._sample()) if self._two_stage(len(queries)) else None
        slack = BOUND_SLACK * np.linalg.norm(queries, axis=1)
        state = _Pass(queries, _side(projection, queries, query=True),
                      self._floor(queries, threshold, k, slack), slack, indices, scores, k)
        if self.release is not None:            # the sample's pages (and those around them)
            for p, part in enumerate(self.parts):
                self.release(p, 0, len(part))
        width = min(BLOCK_ROWS, len(self))
        sims = np.empty((min(QUERY_BLOCK, len(queries)), width), dtype=np.float32)  # reused:
        mask = np.empty(sims.shape, dtype=bool)     # fresh 128 MiB blocks cost page faults
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for r0, part in self._row_blocks():
                vecs = part.astype(np.float32)
                norms = np.sqrt(np.einsum("ij,ij->i", vecs, vecs))
                reach = float(np.max(norms, initial=0.0, where=np.isfinite(norms)))
                rows = _Rows(vecs, _side(projection, vecs), r0, reach)
                for q0 in range(0, len(queries), QUERY_BLOCK):
                    m = min(QUERY_BLOCK, len(queries) - q0)
                    block = np.matmul(state.side.head[q0:q0 + m], rows.side.head.T,
                                      out=sims[:m, :len(vecs)])
                    spans = range(0, m, HIT_ROWS)
                    work = partial(state.stage_two, rows, q0, block, mask[:m, :len(vecs)])
                    loose = list(pool.map(work, spans, [min(lo + HIT_ROWS, m) for lo in spans]))
                    if 2 * sum(loose) > len(loose):      # the bound is loose on these vectors:
                        state = replace(state, side=_side(None, queries))   # one stage
                        rows = replace(rows, side=_side(None, vecs))
                        projection = None

    def _two_stage(self, queries: int | None = None) -> bool:
        """Whether stage one bounds scores over fewer dimensions: large indexes only, and
        (given their number) many queries only."""
        if queries is not None and queries < TWO_STAGE_QUERIES:
            return False
        return len(self) > 2 * FLOOR_SAMPLE and sum(_Projection.widths(self.dim)) < self.dim

    def _floor(self, queries: np.ndarray, threshold: float, k: int,
               slack: np.ndarray) -> np.ndarray:
        """Per query, a score the k-th best reaches: the threshold, or the k-th best among a
        sample of rows when higher (less the float32 rounding ``slack`` of a product)."""
        floor = np.full(len(queries), threshold, dtype=np.float32)
        if len(self) <= 2 * FLOOR_SAMPLE or k > FLOOR_SAMPLE:
            return floor
        sample = self.take(np.arange(0, len(self), len(self) // FLOOR_SAMPLE))
        norms = np.sqrt(np.einsum("ij,ij->i", sample, sample))
        reach = float(np.max(norms, initial=0.0, where=np.isfinite(norms)))
        kth = len(sample) - k
        for q0 in range(0, len(queries), QUERY_BLOCK):
            sims = queries[q0:q0 + QUERY_BLOCK] @ sample.T
            best = np.partition(sims, kth, axis=1)[:, kth] - reach * slack[q0:q0 + len(sims)]
            floor[q0:q0 + len(sims)] = np.maximum(threshold, best)
        return floor

    def save(self, path: Path) -> None:
        """Store the vectors as float16 ``.npy`` (half the bytes of float32, memory-mappable)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, self.vectors.astype(np.float16), allow_pickle=False)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, backend: Backend = "numpy") -> "VectorIndex":
        """Load a saved index; a missing or corrupt file raises ``ValueError``."""
        try:
            vectors = np.load(Path(path), allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"cannot load vector index {path}: {exc}") from None
        if vectors.ndim != 2 or not np.isfinite(vectors).all():
            raise ValueError(f"corrupt vector index {path}")
        return cls(vectors, backend, storage=vectors.dtype.type)


@dataclass(frozen=True)
class _Rows:
    """A block of index rows: float32 vectors, their side of stage one, the first row's
    number and the largest norm (which scales the rounding slack)."""

    vectors: np.ndarray
    side: _Side
    start: int
    reach: float


@dataclass(frozen=True)
class _Pass:
    """One exact search: the queries, their side of stage one, floors and rounding slack per
    query, and the results (top-k rows and scores, updated in place)."""

    queries: np.ndarray
    side: _Side
    floor: np.ndarray
    slack: np.ndarray
    indices: np.ndarray
    scores: np.ndarray
    k: int

    def stage_two(self, rows: _Rows, q0: int, block: np.ndarray, mask: np.ndarray,
                  lo: int, hi: int) -> bool:
        """Queries ``q0 + lo`` to ``q0 + hi`` of a block of bounds: the pairs whose bound
        reaches the bar, refined by the rotated tails and scored exactly, merged in. True
        when the bound was loose for these queries (more than :data:`LOOSE_SHARE` of their
        pairs reached the bar), so their full products were used instead."""
        first, last = q0 + lo, q0 + hi
        bar = np.maximum(self.floor[first:last], self.scores[first:last, self.k - 1])
        low = bar - self.slack[first:last] * rows.reach
        bounds = block[lo:hi]
        hits = np.flatnonzero(np.greater_equal(bounds, low[:, None], out=mask[lo:hi]))
        refine = rows.side.rest is not None
        loose = refine and len(hits) > LOOSE_SHARE * bounds.size
        if loose:
            bounds = self.queries[first:last] @ rows.vectors.T
            hits = np.flatnonzero(bounds >= low[:, None])
            refine = False
        for h in range(0, len(hits), PAIR_CHUNK):       # bounded memory however many hit
            qi, ri = np.divmod(hits[h:h + PAIR_CHUNK], bounds.shape[1])
            if refine:                                   # the rotated tails: a finer filter
                near = self.side.near(rows.side, qi + first, ri, bounds[qi, ri])
                keep = near >= low[qi]
                qi, ri = qi[keep], ri[keep]
            exact = exact_scores(self.queries[qi + first], rows.vectors[ri])
            keep = exact >= bar[qi]
            if keep.any():
                _merge_hits(self.indices, self.scores, qi[keep] + first,
                            ri[keep] + rows.start, exact[keep], self.k)
        return loose


def exact_scores(queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The dot product of each query with its row (row-aligned pairs), computed in float64
    and rounded to float32: the scores :meth:`VectorIndex.search_above` reports."""
    dots = np.einsum("ij,ij->i", queries.astype(np.float64), rows.astype(np.float64))
    return np.asarray(dots, dtype=np.float32)


@dataclass(frozen=True)
class _Projection:
    """The vectors' principal axes (from a sample of rows; any orthonormal basis keeps the
    bound exact, these make it tight) and the split of the rotated dimensions into a head
    and tail segments. Stage one scores ``head(q)·head(t) + sum |q_s| |t_s|`` over the tail
    segments s, at least ``q·t`` by Cauchy-Schwarz, as one product of width
    ``head + segments`` (80 for 128 dimensions, against 128)."""

    rotation: np.ndarray        # (dim, dim) float32, columns = principal axes, largest first
    edges: tuple[int, ...]      # head | segment | segment | ... boundaries, ending at dim

    @staticmethod
    def widths(dim: int) -> tuple[int, int]:
        """(head dimensions, tail segments) for vectors of ``dim`` dimensions."""
        return dim * PREFIX_DIMS // 128, max(1, dim * TAIL_PARTS // 128)

    @classmethod
    def fit(cls, vectors: np.ndarray) -> _Projection | None:
        """The principal axes of an evenly spaced sample of :data:`FLOOR_SAMPLE` rows (None
        for vectors that are not finite: one stage, where they never reach a bar)."""
        sample = vectors[:: max(1, len(vectors) // FLOOR_SAMPLE)].astype(np.float64)
        gram = sample.T @ sample
        if not np.isfinite(gram).all():
            return None
        _, axes = np.linalg.eigh(gram)          # ascending eigenvalues
        head, parts = cls.widths(vectors.shape[1])
        edges = np.linspace(head, vectors.shape[1], parts + 1).astype(int)
        return cls(np.ascontiguousarray(axes[:, ::-1], dtype=np.float32),
                   tuple(int(e) for e in edges))


@dataclass(frozen=True)
class _Side:
    """One side of stage one: ``head`` enters the product; ``rest`` (with a projection: the
    tail segments' norms, negated on the query side, then the rotated tail coordinates)
    turns a pair's bound into its rotated score."""

    head: np.ndarray
    rest: np.ndarray | None = None

    def near(self, rows: _Side, qi: np.ndarray, ri: np.ndarray, bound: np.ndarray
             ) -> np.ndarray:
        """The rotated score of pairs (qi, ri): their bound, the segment norms' products
        taken off and the tails' product added (the score, up to float32 rounding)."""
        assert self.rest is not None and rows.rest is not None
        return np.asarray(bound + np.einsum("ij,ij->i", self.rest[qi], rows.rest[ri]))


def _side(projection: _Projection | None, vectors: np.ndarray, query: bool = False) -> _Side:
    """Stage one's view of float32 vectors: themselves, or their projected head plus the
    norms of their tail segments (and the ``rest`` of :class:`_Side`)."""
    if projection is None:
        return _Side(vectors)
    rotated = vectors @ projection.rotation
    edges = projection.edges
    width, parts = edges[0], len(edges) - 1
    head = np.empty((len(vectors), width + parts), dtype=np.float32)
    head[:, :width] = rotated[:, :width]
    for s, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        part = rotated[:, a:b]
        head[:, width + s] = np.sqrt(np.einsum("ij,ij->i", part, part))
    rest = np.empty((len(vectors), parts + vectors.shape[1] - width), dtype=np.float32)
    rest[:, :parts] = -head[:, width:] if query else head[:, width:]
    rest[:, parts:] = rotated[:, width:]
    return _Side(head, rest)


def _merge_hits(indices: np.ndarray, scores: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                values: np.ndarray, k: int) -> None:
    """Merge (row, column, score) hits into each row's top-k lists, in place."""
    touched = np.unique(rows)
    old = indices[touched] >= 0
    old_rows = np.broadcast_to(touched[:, None], old.shape)[old]
    all_rows = np.concatenate([old_rows, rows])
    all_cols = np.concatenate([indices[touched][old], cols])
    all_vals = np.concatenate([scores[touched][old], values.astype(np.float32)])
    order = np.lexsort((all_cols, -all_vals, all_rows))
    all_rows, all_cols, all_vals = all_rows[order], all_cols[order], all_vals[order]
    starts = np.flatnonzero(np.r_[True, all_rows[1:] != all_rows[:-1]])
    rank = np.arange(len(all_rows)) - np.repeat(starts, np.diff(np.r_[starts, len(all_rows)]))
    keep = rank < k
    indices[touched] = -1
    scores[touched] = -np.inf
    indices[all_rows[keep], rank[keep]] = all_cols[keep]
    scores[all_rows[keep], rank[keep]] = all_vals[keep]


def _merge_top(best_i: np.ndarray, best_s: np.ndarray, sims: np.ndarray, offset: int,
               k: int) -> None:
    """Merge the top-k of ``sims`` (columns numbered from ``offset``) into best_i/best_s."""
    width = sims.shape[1]
    if width > k:
        part = np.argpartition(sims, width - k, axis=1)[:, width - k:]
    else:
        part = np.broadcast_to(np.arange(width), (len(sims), width))
    cand_s = np.concatenate([best_s, np.take_along_axis(sims, part, axis=1)], axis=1)
    cand_i = np.concatenate([best_i, part + offset], axis=1)
    order = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
    best_s[:] = np.take_along_axis(cand_s, order, axis=1)
    best_i[:] = np.take_along_axis(cand_i, order, axis=1)
