"""Lexical candidate search: an inverted index over informative words.

Normalized rows are hashed into word features (numbers left out) (scikit-learn's HashingVectorizer), words that
occur in too many rows are dropped (they say nothing about which row is a copy), the rest are
IDF-weighted, and one sparse product finds, for each query, the rows that share the most
informative words. Only those candidates are then scored with rapidfuzz.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:      # scikit-learn takes a second or more to import: only when indexing
    from sklearn.feature_extraction.text import HashingVectorizer

N_FEATURES = 2**20
CHUNK = 512


def words(normalized: str) -> list[str]:
    """Index keys of a normalized text: its words, less bare numbers.

    Near-duplicates often differ exactly in their numbers, so numbers only add noise to the
    candidate search (measured: more true near-duplicates found, and faster); the rapidfuzz
    score that decides still sees them.
    """
    return [w for w in normalized.split() if not w.isdigit()]


def _vectorizer() -> HashingVectorizer:
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=N_FEATURES, analyzer=words, alternate_sign=False,
                             binary=True, norm=None, dtype=np.float32)


def max_postings(n_rows: int) -> int:
    """How many rows a word may occur in before it stops being a useful key."""
    return int(min(max(50, 0.02 * n_rows), 2000))


class LexicalIndex:
    """Index over already-normalized texts; ``candidates`` returns the top-k row indices."""

    def __init__(self, texts: Sequence[str]) -> None:
        self._build(texts)

    def _build(self, texts: Sequence[str]) -> None:
        self.size = len(texts)
        matrix = _vectorizer().transform(texts)                  # rows x features, CSR
        df = np.bincount(matrix.indices, minlength=N_FEATURES)
        keep = (df > 0) & (df <= max_postings(self.size))
        self.idf = np.zeros(N_FEATURES, dtype=np.float32)
        self.idf[keep] = np.log((1 + self.size) / (1 + df[keep])) + 1.0
        matrix.data = self.idf[matrix.indices]
        matrix.eliminate_zeros()
        from sklearn.preprocessing import normalize as l2_normalize

        l2_normalize(matrix, copy=False)
        self._matrix_t = matrix.T.tocsr()                          # features x rows

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The index as plain arrays (for the cache)."""
        m = self._matrix_t
        nonzero = np.flatnonzero(self.idf)
        return {"size": np.array([self.size]), "idf_at": nonzero, "idf": self.idf[nonzero],
                "data": m.data, "indices": m.indices, "indptr": m.indptr}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "LexicalIndex":
        """The index :meth:`to_arrays` stored."""
        from scipy import sparse

        index = cls.__new__(cls)
        index.size = int(arrays["size"][0])
        index.idf = np.zeros(N_FEATURES, dtype=np.float32)
        index.idf[arrays["idf_at"]] = arrays["idf"]
        index._matrix_t = sparse.csr_matrix(
            (arrays["data"], arrays["indices"], arrays["indptr"]), shape=(N_FEATURES, index.size))
        return index

    def candidates(self, queries: Sequence[str], k: int) -> list[np.ndarray]:
        """For each query, up to ``k`` row indices sharing informative words, best first."""
        out: list[np.ndarray] = []
        if self.size == 0:
            return [np.empty(0, dtype=np.int64) for _ in queries]
        from sklearn.preprocessing import normalize as l2_normalize

        vectorizer = _vectorizer()
        for start in range(0, len(queries), CHUNK):
            q = vectorizer.transform(queries[start:start + CHUNK])
            q.data = self.idf[q.indices]
            l2_normalize(q, copy=False)
            scores = (q @ self._matrix_t).tocsr()
            for i in range(scores.shape[0]):
                lo, hi = scores.indptr[i], scores.indptr[i + 1]
                cols, vals = scores.indices[lo:hi], scores.data[lo:hi]
                if len(cols) > k:
                    top = np.argpartition(-vals, k - 1)[:k]
                    cols, vals = cols[top], vals[top]
                out.append(cols[np.argsort(-vals, kind="stable")])
        return out
