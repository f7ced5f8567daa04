"""Exact threshold search on the real static vectors of GSM8K questions (tests/data)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import gsm8k
from eval_firewall.search import vectors
from eval_firewall.search.paraphrase import RETRIEVE, STATIC_FLOOR, build_train_index
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


@pytest.mark.parametrize("threshold, loose_share", [(STATIC_FLOOR, 1.0), (STATIC_FLOOR, 0.03),
                                                    (0.4, 1.0)])
def test_two_stage_search_on_static_vectors_is_exact(static_model, monkeypatch, threshold,
                                                     loose_share):
    """GSM8K train (7,473 questions, with its near-copies) against its test questions and a
    few train questions themselves: the two-stage search (projected bound, then exact
    scores) returns every pair brute force does, in the same order, with the same scores."""
    train = [r["question"] for r in gsm8k("train")]
    index = build_train_index(train, static_model)
    queries = static_model.encode([r["question"] for r in gsm8k("test", 400)] + train[:100:7])
    monkeypatch.setattr(vectors, "FLOOR_SAMPLE", 512)     # the 1M-row path at this size
    monkeypatch.setattr(vectors, "BLOCK_ROWS", 2048)
    monkeypatch.setattr(vectors, "LOOSE_SHARE", loose_share)    # 1.0: always refined
    monkeypatch.setattr(vectors, "TWO_STAGE_QUERIES", 1)
    assert index._two_stage(len(queries))
    found_i, found_s = index.search_above(queries, threshold, K)
    want_i, want_s = brute_above(index, queries, threshold, K)
    assert (want_i >= 0).sum() > len(queries)                   # many neighbours to find
    assert np.array_equal(found_i, want_i)
    assert np.array_equal(found_s, want_s)
