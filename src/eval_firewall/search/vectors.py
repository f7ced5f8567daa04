"""Nearest-neighbour search over L2-normalized vectors (cosine = dot product).

One thin wrapper, two backends:
- ``numpy``: exact, blocked matrix products. Measured on 2 cores with 128-dimension static
  vectors of 100k GSM8K-like rows and 10k queries: 7.8 s for exact threshold search, against
  11.7 s to build a usearch HNSW graph plus 0.9 s to query it (whose top hit agreed with the
  exact one for 90% of queries). A cold audit builds the index once and queries it once, so
  exact search wins; a cached index queried by a few hundred changed rows takes under a second.
- ``usearch``: an HNSW graph (``backend="usearch"``), approximate, for an index built once and
  queried many times.

``search(queries, k)`` returns ``(indices, scores)``, both ``(len(queries), k)``, best first;
slots beyond the index size hold index -1 and score -inf.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

Backend = Literal["numpy", "usearch"]
BLOCK_ROWS = 16384      # index rows per matrix product
QUERY_BLOCK = 2048      # queries per matrix product (a block of scores: 128 MiB)


class VectorIndex:
    """``storage`` float16 halves the memory of a large index; scores are computed in float32."""

    def __init__(self, vectors: np.ndarray, backend: Backend = "numpy",
                 storage: type = np.float32) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=storage)
        if vectors.ndim != 2:
            raise ValueError("vectors must be a 2-D array")
        self.vectors = vectors
        self.backend = backend
        self._usearch = None
        if backend == "usearch" and len(vectors):
            from usearch.index import Index
            self._usearch = Index(ndim=vectors.shape[1], metric="cos", dtype="f16")
            self._usearch.add(np.arange(len(vectors)), vectors.astype(np.float32), threads=0)

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def _blocks(self, queries: np.ndarray):
        """(query offset, row offset, scores) for every block of the score matrix."""
        for r0 in range(0, len(self), BLOCK_ROWS):
            rows = self.vectors[r0:r0 + BLOCK_ROWS].astype(np.float32, copy=False).T
            for q0 in range(0, len(queries), QUERY_BLOCK):
                yield q0, r0, queries[q0:q0 + QUERY_BLOCK] @ rows

    def _empty(self, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        return np.full((n, k), -1, dtype=np.int64), np.full((n, k), -np.inf, dtype=np.float32)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        n = len(queries)
        indices, scores = self._empty(n, k)
        if n == 0 or len(self) == 0:
            return indices, scores
        if self._usearch is not None:
            found = self._usearch.search(queries, min(k, len(self)), threads=0)
            keys = np.asarray(found.keys, dtype=np.int64).reshape(n, -1)
            dist = np.asarray(found.distances, dtype=np.float32).reshape(n, -1)
            width = keys.shape[1]
            valid = keys < len(self)
            indices[:, :width] = np.where(valid, keys, -1)
            scores[:, :width] = np.where(valid, 1.0 - dist, -np.inf)
            return indices, scores
        for q0, r0, sims in self._blocks(queries):
            end = q0 + len(sims)
            _merge_top(indices[q0:end], scores[q0:end], sims, r0, k)
        return indices, scores

    def search_above(self, queries: np.ndarray, threshold: float, k: int
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`search`, but only neighbours scoring at least ``threshold`` count.

        Exact search selects only the scores above the threshold (a small fraction), so it
        needs no top-k pass over every score: cheaper than :meth:`search` on large indexes.
        """
        if self._usearch is not None:
            indices, scores = self.search(queries, k)
        else:
            queries = np.ascontiguousarray(queries, dtype=np.float32)
            indices, scores = self._empty(len(queries), k)
            for q0, r0, sims in self._blocks(queries):
                # a query's bar is the threshold, or its k-th best score so far if higher
                bar = np.maximum(threshold, scores[q0:q0 + len(sims), k - 1])
                hot = np.flatnonzero(sims.max(axis=1) >= bar)
                if len(hot):
                    sub = sims[hot]
                    rows, cols = np.nonzero(sub >= bar[hot, None])
                    _merge_hits(indices, scores, hot[rows] + q0, cols + r0, sub[rows, cols], k)
        below = scores < threshold
        indices[below] = -1
        scores[below] = -np.inf
        return indices, scores

    def save(self, path: Path) -> None:
        """Store the vectors as float16 ``.npy`` (1M x 128: 256 MB, loads in about 0.5 s)."""
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
