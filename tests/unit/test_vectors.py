"""The nearest-neighbour index: exact numpy search, usearch, save and load."""

from __future__ import annotations

import numpy as np
import pytest

from eval_firewall.search import vectors
from eval_firewall.search.vectors import VectorIndex


def unit(rows: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute(corpus: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ corpus.T), axis=1, kind="stable")[:, :k]


def test_exact_search_matches_brute_force_across_blocks(monkeypatch):
    monkeypatch.setattr(vectors, "BLOCK_ROWS", 7)
    monkeypatch.setattr(vectors, "QUERY_BLOCK", 5)
    corpus, queries = unit(50), unit(12, seed=1)
    indices, scores = VectorIndex(corpus).search(queries, 4)
    assert np.array_equal(indices, brute(corpus, queries, 4))
    expected = np.take_along_axis(queries @ corpus.T, indices, axis=1)
    assert np.allclose(scores, expected, atol=1e-6)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_k_larger_than_the_index_pads_with_minus_one():
    indices, scores = VectorIndex(unit(3)).search(unit(2, seed=1), 5)
    assert (indices[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all()
    assert sorted(indices[0, :3]) == [0, 1, 2]
    empty_i, _ = VectorIndex(np.zeros((0, 16), np.float32)).search(unit(2), 3)
    assert (empty_i == -1).all()


def test_search_above_keeps_only_neighbours_at_the_threshold(monkeypatch):
    monkeypatch.setattr(vectors, "BLOCK_ROWS", 8)
    corpus = unit(40)
    queries = np.vstack([corpus[3], corpus[17], unit(1, seed=9)[0]])
    indices, scores = VectorIndex(corpus).search_above(queries, 0.99, 3)
    assert indices[0, 0] == 3 and indices[1, 0] == 17
    assert (indices[:2, 1:] == -1).all() and (indices[2] == -1).all()
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_usearch_backend_finds_the_same_nearest_rows():
    corpus = unit(300, dim=32)
    queries = corpus[[5, 123, 299]] + 0.01 * unit(3, dim=32, seed=4)
    indices, scores = VectorIndex(corpus, backend="usearch").search(queries, 2)
    assert list(indices[:, 0]) == [5, 123, 299]
    assert (scores[:, 0] > 0.99).all()


def test_save_and_load_round_trip(tmp_path):
    corpus = unit(20)
    path = tmp_path / "index" / "train.npy"
    VectorIndex(corpus).save(path)
    loaded = VectorIndex.load(path)
    assert np.allclose(loaded.vectors, corpus, atol=1e-3)
    assert np.array_equal(loaded.search(corpus[:4], 1)[0][:, 0], [0, 1, 2, 3])


def test_loading_a_corrupt_index_raises_value_error(tmp_path):
    path = tmp_path / "train.npy"
    VectorIndex(unit(20)).save(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError):
        VectorIndex.load(path)
    with pytest.raises(ValueError):
        VectorIndex.load(tmp_path / "missing.npy")


def test_search_above_agrees_with_search_over_many_blocks(monkeypatch):
    monkeypatch.setattr(vectors, "BLOCK_ROWS", 6)
    monkeypatch.setattr(vectors, "QUERY_BLOCK", 4)
    corpus, queries = unit(60, dim=4), unit(10, dim=4, seed=3)   # low dim: many hits
    full_i, full_s = VectorIndex(corpus).search(queries, 5)
    above_i, above_s = VectorIndex(corpus).search_above(queries, 0.3, 5)
    keep = full_s >= 0.3
    assert np.array_equal(np.where(keep, full_i, -1), above_i)
    assert np.allclose(np.where(keep, full_s, -np.inf), above_s)


def test_float16_storage_halves_memory_and_keeps_the_ranking():
    corpus = unit(100, dim=32)
    small = VectorIndex(corpus, storage=np.float16)
    assert small.vectors.dtype == np.float16 and small.vectors.nbytes == corpus.nbytes // 2
    indices, scores = small.search(corpus[:10], 1)
    assert list(indices[:, 0]) == list(range(10)) and scores.dtype == np.float32


@pytest.mark.parametrize("k", [1, 5, 12])
def test_search_above_with_a_sampled_floor_is_still_exact(monkeypatch, k):
    """The bar each query starts from (its k-th best among a sample of rows) loses no neighbour,
    also when the index holds near-copies that tie (templated rows)."""
    monkeypatch.setattr(vectors, "BLOCK_ROWS", 16)
    monkeypatch.setattr(vectors, "QUERY_BLOCK", 8)
    monkeypatch.setattr(vectors, "FLOOR_SAMPLE", 12)
    base = unit(40, dim=6, seed=5)
    corpus = np.concatenate([base, base[:30], unit(50, dim=6, seed=6)])   # exact ties
    queries = unit(20, dim=6, seed=7)
    index = VectorIndex(corpus)
    assert len(index) > 2 * vectors.FLOOR_SAMPLE        # the sampled floor is used
    full_i, full_s = index.search(queries, k)
    above_i, above_s = index.search_above(queries, 0.2, k)
    keep = full_s >= 0.2
    assert np.allclose(np.where(keep, full_s, -np.inf), above_s)
    assert np.array_equal(np.where(keep, full_i, -1), above_i)
