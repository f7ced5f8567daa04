"""Lexical candidate index: the column-wise featurizer and normalization give exactly what the
scikit-learn pipeline they replace gave (HashingVectorizer over ``words``, ``normalize``)."""

from __future__ import annotations

import subprocess
import sys

import mmh3
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize as sklearn_normalize

from conftest import gsm8k
from eval_firewall.search import lexical
from eval_firewall.search.lexical import LexicalIndex, hashed_words, words
from eval_firewall.text.normalize import normalize

N_FEATURES = lexical.N_FEATURES


def sklearn_features(texts: list[str]) -> sparse.csr_matrix:
    """The featurizer the index used before: scikit-learn's HashingVectorizer with ``words``."""
    return HashingVectorizer(n_features=N_FEATURES, analyzer=words, alternate_sign=False, binary=True,
                             norm=None, dtype=np.float32).transform(texts)


class SklearnIndex:
    """The index as it was built and queried with scikit-learn (the reference semantics)."""

    def __init__(self, texts: list[str]) -> None:
        self.size = len(texts)
        matrix = sklearn_features(texts)
        df = np.bincount(matrix.indices, minlength=N_FEATURES)
        keep = (df > 0) & (df <= lexical.max_postings(self.size))
        self.idf = np.zeros(N_FEATURES, dtype=np.float32)
        self.idf[keep] = np.log((1 + self.size) / (1 + df[keep])) + 1.0
        matrix.data = self.idf[matrix.indices]
        matrix.eliminate_zeros()
        sklearn_normalize(matrix, copy=False)
        self.matrix_t = matrix.T.tocsr()

    def candidates(self, queries: list[str], k: int) -> list[np.ndarray]:
        q = sklearn_features(queries)
        q.data = self.idf[q.indices]
        sklearn_normalize(q, copy=False)
        scores = (q @ self.matrix_t).tocsr()
        out = []
        for i in range(scores.shape[0]):
            cols = scores.indices[scores.indptr[i]:scores.indptr[i + 1]]
            vals = scores.data[scores.indptr[i]:scores.indptr[i + 1]]
            if len(cols) > k:
                top = np.argpartition(-vals, k - 1)[:k]
                cols, vals = cols[top], vals[top]
            out.append(cols[np.argsort(-vals, kind="stable")])
        return out


def assert_same_csr(ours: sparse.csr_matrix, theirs: sparse.csr_matrix) -> None:
    assert ours.shape == theirs.shape
    assert ours.has_sorted_indices and theirs.has_sorted_indices
    for name in ("indptr", "indices", "data"):
        a, b = getattr(ours, name), getattr(theirs, name)
        assert a.dtype == b.dtype, name
        assert np.array_equal(a, b), name


# Words as normalized texts hold them: ASCII and other letters, ASCII and other digits (bare
# numbers are left out by ``words``; "²" and "٣" are digits to str.isdigit), operators, mixes.
WORD = st.one_of(
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8),
    st.text("0123456789", min_size=1, max_size=5),
    st.text(st.characters(categories=["Ll", "Lu", "Lo", "Lm", "Nd", "Nl", "No", "Mn"]), min_size=1, max_size=6),
    st.sampled_from(["٣", "²", "१२", "x²", "3rd", "-", "+", "*", "/", "=", "%", "straße", "naïve", "東京"]),
)
# A few words, repeated in any order: repeated words and shared words across rows.
NORMALIZED = st.lists(WORD, min_size=1, max_size=6).flatmap(
    lambda vocab: st.lists(st.sampled_from(vocab), max_size=15)).map(" ".join)
TEXTS = st.lists(st.one_of(NORMALIZED, st.just(""), st.text(max_size=40).map(normalize)),
                 min_size=1, max_size=25)   # scikit-learn cannot transform no texts at all


@given(TEXTS)
@example(["sold sold clips 48 ٣ ² x² 3rd straße", "", "48 12", "东京 东京 - +"])
def test_features_are_the_hashing_vectorizers(texts):
    assert_same_csr(hashed_words(texts), sklearn_features(texts))


@given(st.lists(st.text(st.characters(exclude_categories=["Cs"]), max_size=30), min_size=1, max_size=12))
@example(["natalia\tsold  clips\u00a0to\n48 \x1c friends ", " ", "a\u2003b\u2003a"])
def test_features_match_on_texts_that_are_not_normalized(texts):
    # tabs, newlines, runs of spaces, Unicode spaces: split as str.split() splits them
    assert_same_csr(hashed_words(texts), sklearn_features(texts))


@given(TEXTS, st.integers(1, 7))
def test_pieces_and_arrow_columns_give_the_same_matrix(texts, piece_rows):
    whole = hashed_words(texts)
    assert_same_csr(hashed_words(texts, piece_rows=piece_rows), whole)
    column = pa.chunked_array([pa.array(texts[:3], pa.string()), pa.array(texts[3:], pa.string())])
    assert_same_csr(hashed_words(column, piece_rows=piece_rows), whole)


def test_the_hash_of_minus_two_to_the_31_maps_as_in_scikit_learn():
    # "akqlrggi" was found by inverting MurmurHash3 (x86, 32 bits) for the output 0x80000000
    assert mmh3.hash("akqlrggi") == -2**31
    assert sklearn_features(["akqlrggi"]).indices.tolist() == [lexical.feature("akqlrggi")]
    assert_same_csr(hashed_words(["akqlrggi x akqlrggi"]), sklearn_features(["akqlrggi x akqlrggi"]))


@given(st.lists(st.lists(st.floats(0, 40, width=32), max_size=8), min_size=1, max_size=10))
def test_l2_normalization_is_scikit_learns_to_the_bit(rows):
    lengths = [len(r) for r in rows]
    data = np.array([v for r in rows for v in r], dtype=np.float32)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    indices = np.concatenate([np.arange(n, dtype=np.int32) for n in lengths] or [np.empty(0, np.int32)])
    ours = sparse.csr_matrix((data.copy(), indices, indptr), shape=(len(rows), 8))
    theirs = sparse.csr_matrix((data.copy(), indices, indptr), shape=(len(rows), 8))
    lexical.l2_normalize_rows(ours, block=3)
    sklearn_normalize(theirs, copy=False)
    assert np.array_equal(ours.data, theirs.data)


def assert_same_index(texts: list[str], queries: list[str], k: int) -> None:
    ours, theirs = LexicalIndex(texts), SklearnIndex(texts)
    arrays = ours.to_arrays()
    assert np.array_equal(arrays["idf"], theirs.idf[arrays["idf_at"]])
    assert_same_csr(ours._matrix_t, theirs.matrix_t)
    got, want = ours.candidates(queries, k), theirs.candidates(queries, k)
    assert [c.tolist() for c in got] == [c.tolist() for c in want]


def test_index_and_candidates_are_the_scikit_learn_pipelines_on_gsm8k():
    train = [normalize(r["question"]) for r in gsm8k("train", 600)]
    queries = [normalize(r["question"]) for r in gsm8k("test", 80)] + train[:40]
    assert_same_index(train, queries, 10)
    assert any(len(c) for c in LexicalIndex(train).candidates(queries, 10))


@settings(max_examples=50)
@given(TEXTS, TEXTS, st.integers(1, 6))
def test_index_and_candidates_are_the_scikit_learn_pipelines(texts, queries, k):
    assert_same_index(texts, queries, k)


def test_cached_arrays_rebuild_the_same_index():
    train = [normalize(r["question"]) for r in gsm8k("train", 200)]
    queries = [normalize(r["question"]) for r in gsm8k("test", 30)]
    index = LexicalIndex(train)
    again = LexicalIndex.from_arrays(index.to_arrays())
    assert [c.tolist() for c in again.candidates(queries, 5)] == [c.tolist() for c in index.candidates(queries, 5)]


def test_no_texts_no_features_and_an_empty_index_has_no_candidates():
    assert hashed_words([]).shape == (0, N_FEATURES) and hashed_words([]).nnz == 0
    assert [c.tolist() for c in LexicalIndex([]).candidates(["a b", ""], 3)] == [[], []]


@pytest.mark.parametrize("code", [
    "LexicalIndex(['natalia sold clips', 'tom sold pens']).candidates(['natalia sold 5 clips'], 3)",
    "LexicalIndex.from_arrays(LexicalIndex(['a b', 'b c']).to_arrays()).candidates(['a c'], 2)",
])
def test_building_and_querying_do_not_import_scikit_learn(code):
    script = ("import sys\nfrom eval_firewall.search.lexical import LexicalIndex\n"
              f"print({code})\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"
    assert "array(" in out.stdout
