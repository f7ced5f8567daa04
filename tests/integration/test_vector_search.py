"""Exact threshold search on the real static vectors of GSM8K questions (tests/data)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import gsm8k
from eval_firewall.search import vectors
from eval_firewall.search.paraphrase import RETRIEVE, STATIC_FLOOR
from eval_firewall.search.vectors import VectorIndex

K = 5 * RETRIEVE        # the default candidates (5) times RETRIEVE: what _candidates asks


def brute_above(index: VectorIndex, queries: np.ndarray, threshold: float, k: int):
    """Every pair scored (float64, rounded to float32); k best per query above the
    threshold, best first, then by row."""
    exact = (queries.astype(np.float64) @ index.vectors.astype(np.float64).T).astype(np.float32)
    order = np.lexsort((np.broadcast_to(np.arange(exact.shape[1]), exact.shape), -exact))[:, :k]
    best = np.take_along_axis(exact, order, axis=1)
    keep = best >= threshold
    return np.where(keep, order, -1), np.where(keep, best, -np.inf)


@pytest.mark.parametrize("threshold, jitter", [(STATIC_FLOOR, 0.0), (STATIC_FLOOR, 0.05),
                                              (0.4, 0.05), (STATIC_FLOOR, 0.5)])
def test_two_stage_search_on_static_vectors_is_exact(static_model, threshold, jitter):
    """GSM8K's train and test questions (with the train set's near-copies), each row also
    stored again as is and jittered by ``jitter`` (the rows of a large train set, beyond one
    block of rows and the floor's sample; 0.5: vectors whose principal structure is blurred),
    against test and train questions themselves, as many queries as take the two-stage path:
    the two-stage search (projected bound, then exact scores) returns every pair brute force
    does, in the same order, with the same scores (equal rows tie, by row)."""
    texts = [r["question"] for r in gsm8k("train")] + [r["question"] for r in gsm8k("test")]
    base = static_model.encode(texts)
    rng = np.random.default_rng(0)
    copies = [base, base]
    while sum(map(len, copies)) <= max(vectors.BLOCK_ROWS, 2 * vectors.FLOOR_SAMPLE):
        noisy = base + jitter * rng.standard_normal(base.shape).astype(np.float32) / np.sqrt(base.shape[1])
        copies.append(noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
    index = VectorIndex(np.concatenate(copies), storage=np.float16)   # as build_train_index
    queries = base[::len(base) // (vectors.TWO_STAGE_QUERIES + 20)]
    assert len(queries) >= vectors.TWO_STAGE_QUERIES and index._two_stage(len(queries))
    found_i, found_s = index.search_above(queries, threshold, K)
    want_i, want_s = brute_above(index, queries, threshold, K)
    assert (want_i >= 0).sum() > 2 * len(queries)               # many neighbours to find
    assert np.array_equal(found_i, want_i)
    assert np.array_equal(found_s, want_s)
