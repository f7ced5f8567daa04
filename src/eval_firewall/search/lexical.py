"""Lexical candidate search: an inverted index over informative word n-grams.

Rows are hashed into word unigram and bigram features (scikit-learn's HashingVectorizer),
features shared by too many rows are dropped (they say nothing about which row is a copy),
the rest are IDF-weighted, and a sparse product finds, for each query, the rows that share
the most informative n-grams. Only those candidates are scored with rapidfuzz.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer

N_FEATURES = 2**20
CHUNK = 512


def _vectorizer() -> HashingVectorizer:
    return HashingVectorizer(
        n_features=N_FEATURES, ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b",
        lowercase=False, alternate_sign=False, binary=True, norm=None, dtype=np.float32)


def max_postings(n_rows: int) -> int:
    """How many rows a feature may occur in before it stops being a useful key."""
    return int(min(max(50, 0.02 * n_rows), 2000))


class LexicalIndex:
    """Index over already-normalized texts; ``candidates`` returns the top-k row indices."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.size = len(texts)
        matrix = _vectorizer().transform(texts).tocsc()
        df = np.diff(matrix.indptr)
        keep = (df > 0) & (df <= max_postings(self.size))
        idf = np.zeros(N_FEATURES, dtype=np.float32)
        idf[keep] = np.log((1 + self.size) / (1 + df[keep])) + 1.0
        self.idf = idf
        self._matrix_t = _weighted(matrix.tocsr(), idf).T.tocsr()  # features x rows

    def candidates(self, queries: Sequence[str], k: int) -> list[np.ndarray]:
        """For each query, up to ``k`` row indices sharing informative n-grams, best first."""
        out: list[np.ndarray] = []
        if self.size == 0:
            return [np.empty(0, dtype=np.int64) for _ in queries]
        vectorizer = _vectorizer()
        for start in range(0, len(queries), CHUNK):
            q = _weighted(vectorizer.transform(queries[start:start + CHUNK]), self.idf)
            scores = (q @ self._matrix_t).tocsr()
            for i in range(scores.shape[0]):
                lo, hi = scores.indptr[i], scores.indptr[i + 1]
                cols, vals = scores.indices[lo:hi], scores.data[lo:hi]
                if len(cols) > k:
                    top = np.argpartition(-vals, k - 1)[:k]
                    cols, vals = cols[top], vals[top]
                out.append(cols[np.argsort(-vals, kind="stable")])
        return out


def _weighted(matrix: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    weighted = matrix.multiply(idf).tocsr()
    weighted.eliminate_zeros()
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.diags(1.0 / norms).dot(weighted).tocsr().astype(np.float32)
