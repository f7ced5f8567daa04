"""Lexical candidate search: an inverted index over informative words.

Normalized rows are hashed into word features (numbers left out; the features scikit-learn's
``HashingVectorizer`` gives, computed column-wise with pyarrow and ``mmh3``), words that
occur in too many rows are dropped (they say nothing about which row is a copy), the rest are
IDF-weighted, and one sparse product finds, for each query, the rows that share the most
informative words. Only those candidates are then scored with rapidfuzz.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import mmh3
import numpy as np

if TYPE_CHECKING:
    from scipy import sparse

N_FEATURES = 2**20
CHUNK = 512
ROWS_PER_PIECE = 1 << 15      # rows featurized at once: bounds the temporary arrays (measured at 1M rows)

# Texts to featurize: Python strings, or a pyarrow string column (Array or ChunkedArray).
Texts = Sequence[str] | Any


def words(normalized: str) -> list[str]:
    """Index keys of a normalized text: its words, less bare numbers.

    Near-duplicates often differ exactly in their numbers, so numbers only add noise to the
    candidate search (measured: more true near-duplicates found, and faster); the rapidfuzz
    score that decides still sees them.
    """
    return [w for w in normalized.split() if not w.isdigit()]


def feature(word: str) -> int:
    """The hashed feature of one word: scikit-learn's ``FeatureHasher`` index (signed 32-bit
    MurmurHash3, seed 0, of the UTF-8 bytes; ``abs(h) % N_FEATURES``, and its rule for -2**31)."""
    h = mmh3.hash(word, 0, signed=True)
    if h == -2**31:        # abs(-2**31) overflows in int32: scikit-learn's defined stand-in
        return (2**31 - 1 - (N_FEATURES - 1)) % N_FEATURES
    return abs(h) % N_FEATURES


class _Vocabulary:
    """Features of the distinct space-separated tokens seen so far (each is hashed once)."""

    def __init__(self) -> None:
        self.single: dict[str, int] = {}                # token -> its one feature, -1 if none
        self.several: dict[str, list[int]] = {}         # tokens with other whitespace inside

    def lookup(self, tokens: list[str]) -> tuple[np.ndarray, dict[int, list[int]]]:
        """Per token: its feature (-1: none, or several), and the several ones by position."""
        out = np.empty(len(tokens), dtype=np.int64)
        several: dict[int, list[int]] = {}
        for at, token in enumerate(tokens):
            f = self.single.get(token)
            if f is None:
                f = self._learn(token)
            if f == -2:
                several[at] = self.several[token]
                f = -1
            out[at] = f
        return out, several

    def _learn(self, token: str) -> int:
        features = [feature(w) for w in words(token)]
        if len(features) > 1:                           # not a normalized text: "a\tb"
            self.several[token] = features
            self.single[token] = -2
        else:
            self.single[token] = features[0] if features else -1
        return self.single[token]


def _pieces(texts: Texts, rows: int) -> Iterator[Any]:
    """The texts as pyarrow string arrays of at most ``rows`` rows."""
    import pyarrow as pa

    if isinstance(texts, pa.ChunkedArray):
        for chunk in texts.chunks:
            yield from _pieces(chunk, rows)
        return
    for start in range(0, len(texts), rows):
        piece = texts[start:start + rows]
        yield piece if isinstance(piece, pa.Array) else pa.array(piece, type=pa.large_string())


def _piece_pairs(piece: Any, vocabulary: _Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, distinct (row, feature) pairs of one piece: its row counts and feature ids."""
    import pyarrow.compute as pc

    tokens = pc.split_pattern(piece, " ")
    rows = pc.list_parent_indices(tokens).to_numpy().astype(np.int64, copy=False)
    encoded = pc.dictionary_encode(pc.list_flatten(tokens))
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    by_code, several = vocabulary.lookup(encoded.dictionary.to_pylist())
    features = by_code[codes]
    keep = features >= 0
    keys = rows[keep] * N_FEATURES + features[keep]
    if several:                                         # rare: texts with tabs or newlines
        at = np.flatnonzero(np.isin(codes, list(several)))
        extra = [rows[a] * N_FEATURES + np.asarray(several[int(codes[a])], dtype=np.int64) for a in at]
        keys = np.concatenate([keys, *extra])
    keys.sort()                                         # by row, then feature; then distinct
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if len(keys) else keys
    counts = np.bincount(keys // N_FEATURES, minlength=len(piece))
    return counts, (keys % N_FEATURES).astype(np.int32)


def hashed_words(texts: Texts, piece_rows: int = ROWS_PER_PIECE) -> sparse.csr_matrix:
    """Rows x N_FEATURES, 1.0 where a row has a word: exactly what ``HashingVectorizer(
    n_features=N_FEATURES, analyzer=words, alternate_sign=False, binary=True, norm=None,
    dtype=np.float32).transform(texts)`` gives (indices sorted), without a Python call per row;
    ``piece_rows`` rows at a time."""
    from scipy import sparse

    indptr, indices = _hashed_rows(texts, piece_rows)
    data = np.ones(len(indices), dtype=np.float32)
    return sparse.csr_matrix((data, indices, indptr), shape=(len(texts), N_FEATURES))


def _hashed_rows(texts: Texts, piece_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The CSR ``indptr`` and ``indices`` of :func:`hashed_words`, in scikit-learn's dtypes."""
    pieces = list(_hashed_pieces(texts, piece_rows))
    return _csr_index([c for c, _ in pieces], [i for _, i in pieces], len(texts))


def _hashed_pieces(texts: Texts, piece_rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per piece of ``piece_rows`` texts: features per row, and the features (sorted per row)."""
    vocabulary = _Vocabulary()
    for piece in _pieces(texts, piece_rows):
        yield _piece_pairs(piece, vocabulary)


def _csr_index(counts: list[np.ndarray], indices: list[np.ndarray], n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Pieces' row counts and column indices joined into CSR ``indptr`` and ``indices``: int32
    both, or int64 both past 2**31 - 1 entries (as scikit-learn's hasher gives them)."""
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    if counts:
        np.cumsum(np.concatenate(counts), out=indptr[1:])
    cols = np.concatenate(indices) if indices else np.empty(0, dtype=np.int32)
    if indptr[-1] <= np.iinfo(np.int32).max:
        return indptr.astype(np.int32), cols
    return indptr, cols.astype(np.int64)


def l2_normalize_rows(matrix: sparse.csr_matrix, block: int = ROWS_PER_PIECE) -> None:
    """Scale each row of a float32 CSR matrix to unit length in place, as scikit-learn's
    ``normalize`` does (float32 squares summed in float64 in row order; empty rows left)."""
    data, indptr = matrix.data, matrix.indptr
    n = matrix.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        lo, hi = int(indptr[start]), int(indptr[stop])
        lengths = np.diff(indptr[start:stop + 1])
        rows = np.repeat(np.arange(stop - start), lengths)
        values = data[lo:hi]
        norms = np.sqrt(np.bincount(rows, weights=np.square(values).astype(np.float64),
                                    minlength=stop - start))
        norms[norms == 0.0] = 1.0
        data[lo:hi] = values / norms[rows]


def max_postings(n_rows: int) -> int:
    """How many rows a word may occur in before it stops being a useful key."""
    return int(min(max(50, 0.02 * n_rows), 2000))


class LexicalIndex:
    """Index over already-normalized texts; ``candidates`` returns the top-k row indices."""

    def __init__(self, texts: Texts) -> None:
        self._build(texts)

    def _build(self, texts: Texts) -> None:
        from scipy import sparse

        self.size = len(texts)
        pieces = list(_hashed_pieces(texts, ROWS_PER_PIECE))   # hashed_words(texts), by piece
        df = np.zeros(N_FEATURES, dtype=np.int64)
        for _, cols in pieces:
            df += np.bincount(cols, minlength=N_FEATURES)
        keep = (df > 0) & (df <= max_postings(self.size))
        self.idf = np.zeros(N_FEATURES, dtype=np.float32)
        self.idf[keep] = np.log((1 + self.size) / (1 + df[keep])) + 1.0
        counts: list[np.ndarray] = []
        indices: list[np.ndarray] = []
        while pieces:         # the words kept, piece by piece: the full matrix is never held
            row_counts, cols = pieces.pop(0)
            informative = keep[cols]
            rows = np.repeat(np.arange(len(row_counts)), row_counts)
            counts.append(np.bincount(rows[informative], minlength=len(row_counts)))
            indices.append(cols[informative])
        indptr, cols = _csr_index(counts, indices, self.size)
        matrix = sparse.csr_matrix((self.idf[cols], cols, indptr), shape=(self.size, N_FEATURES))
        l2_normalize_rows(matrix)
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

    def candidates(self, queries: Texts, k: int) -> list[np.ndarray]:
        """For each query, up to ``k`` row indices sharing informative words, best first."""
        if self.size == 0:
            return [np.empty(0, dtype=np.int64) for _ in range(len(queries))]
        featured = hashed_words(queries)
        featured.data = self.idf[featured.indices]
        l2_normalize_rows(featured)
        return self.candidates_of(featured, k)

    def candidates_of(self, featured: sparse.csr_matrix, k: int) -> list[np.ndarray]:
        """:meth:`candidates` of queries already featurized, weighted and normalized."""
        out: list[np.ndarray] = []
        for start in range(0, featured.shape[0], CHUNK):
            q = featured[start:start + CHUNK]
            scores = (q @ self._matrix_t).tocsr()
            for i in range(scores.shape[0]):
                lo, hi = scores.indptr[i], scores.indptr[i + 1]
                cols, vals = scores.indices[lo:hi], scores.data[lo:hi]
                if len(cols) > k:
                    top = np.argpartition(-vals, k - 1)[:k]
                    cols, vals = cols[top], vals[top]
                out.append(cols[np.argsort(-vals, kind="stable")])
        return out
