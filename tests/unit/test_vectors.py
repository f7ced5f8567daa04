"""The nearest-neighbour index: exact numpy search, save and load."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def brute_above(index: VectorIndex, queries: np.ndarray, threshold: float, k: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """The old semantics by brute force: every score (float64, rounded to float32), each
    query's k best above the threshold, best first, then by row."""
    exact = (queries.astype(np.float64) @ index.vectors.astype(np.float64).T).astype(np.float32)
    indices = np.full((len(queries), k), -1, dtype=np.int64)
    scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    for q, row in enumerate(exact):
        order = np.lexsort((np.arange(len(row)), -row))[:k]
        order = order[row[order] >= threshold]
        indices[q, :len(order)] = order
        scores[q, :len(order)] = row[order]
    return indices, scores


def corpus_of(seed: int, rows: int, dim: int, shape: str) -> np.ndarray:
    """Random, clustered (templates: a few centres, small noise) or duplicated unit rows."""
    rng = np.random.default_rng(seed)
    if shape == "clustered":
        centres = unit(max(1, rows // 10), dim, seed + 1)
        x = centres[rng.integers(0, len(centres), rows)]
        x = x + rng.uniform(0.0, 0.2) * rng.standard_normal((rows, dim)).astype(np.float32)
    elif shape == "duplicated":
        x = unit(max(1, rows // 4), dim, seed + 1)[rng.integers(0, max(1, rows // 4), rows)]
    else:
        x = rng.standard_normal((rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 160), dim=st.sampled_from([4, 8, 16, 40]),
       n_queries=st.integers(1, 24), k=st.integers(1, 12),
       threshold=st.floats(-0.5, 0.95), shape=st.sampled_from(["random", "clustered", "duplicated"]),
       half=st.booleans(), two_stage=st.booleans(), loose_share=st.sampled_from([0.03, 0.3, 1.0]))
def test_search_above_returns_the_brute_force_top_k(seed, rows, dim, n_queries, k, threshold,
                                                     shape, half, two_stage, loose_share):
    """Exact: the same rows and scores as scoring every pair, ties (equal rows) by row number,
    across blocks, with and without the sampled floor and stage one's projected bound (refined,
    or given up for full products where it is loose)."""
    corpus = corpus_of(seed, rows, dim, shape)
    rng = np.random.default_rng(seed + 7)
    picks = corpus[rng.integers(0, rows, n_queries)]        # queries near (or at) rows
    queries = picks + rng.uniform(0.0, 0.5) * unit(n_queries, dim, seed + 9)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    index = VectorIndex(corpus, storage=np.float16 if half else np.float32)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vectors, "BLOCK_ROWS", 17)
        patch.setattr(vectors, "QUERY_BLOCK", 5)
        patch.setattr(vectors, "HIT_ROWS", 2)
        patch.setattr(vectors, "PAIR_CHUNK", 7)
        patch.setattr(vectors, "FLOOR_SAMPLE", 8 if two_stage else 10**6)
        patch.setattr(vectors, "LOOSE_SHARE", loose_share)
        patch.setattr(vectors, "TWO_STAGE_QUERIES", 1)
        assert index._two_stage(n_queries) == (two_stage and rows > 16)
        found_i, found_s = index.search_above(queries, threshold, k)
    want_i, want_s = brute_above(index, queries, threshold, k)
    assert np.array_equal(found_i, want_i)
    assert np.array_equal(found_s, want_s)


def test_stage_one_bounds_every_score_from_above():
    """The projected product plus the tail segments' norm products is at least the score (the
    float32 slack aside), for every pair, and it is tighter than the norms alone."""
    corpus = corpus_of(3, 400, 32, "clustered")
    queries = corpus_of(4, 50, 32, "clustered")
    projection = vectors._Projection.fit(corpus)
    bound = vectors._side(projection, queries).head @ vectors._side(projection, corpus).head.T
    exact = queries.astype(np.float64) @ corpus.astype(np.float64).T
    assert (bound >= exact - vectors.BOUND_SLACK).all()
    assert (bound < 1.0 - 1e-3).any()


def test_rows_that_are_not_finite_do_not_crash_or_hide_the_others(monkeypatch):
    """An index holding NaN or infinite rows (a damaged cache) searches in one stage, as
    before: NaN rows reach no bar, the others are found as brute force finds them."""
    monkeypatch.setattr(vectors, "FLOOR_SAMPLE", 8)
    monkeypatch.setattr(vectors, "BLOCK_ROWS", 16)
    monkeypatch.setattr(vectors, "TWO_STAGE_QUERIES", 1)
    corpus = corpus_of(1, 60, 16, "clustered")
    corpus[[3, 40]] = np.nan
    corpus[7, 0] = np.inf
    index = VectorIndex(corpus)
    assert index._two_stage() and vectors._Projection.fit(index.vectors) is None
    queries = corpus[[1, 2, 5]]
    found_i, found_s = index.search_above(queries, 0.5, 4)
    want_i, want_s = brute_above(index, queries, 0.5, 4)
    assert np.array_equal(found_i, want_i) and np.array_equal(found_s, want_s)
    assert (found_i[:, :1] >= 0).all() and not np.isin(found_i, [3, 40]).any()


def test_a_few_queries_search_in_one_stage():
    """Rotating every index row pays only for many queries: a handful (a pull request's
    changed rows) skip stage one's projection, however large the index."""
    index = VectorIndex(corpus_of(2, 3 * vectors.FLOOR_SAMPLE, 32, "clustered"))
    assert index._two_stage() and index._two_stage(vectors.TWO_STAGE_QUERIES)
    assert not index._two_stage(vectors.TWO_STAGE_QUERIES - 1)


@pytest.mark.parametrize("queries", [40, 600])        # one stage, and two (bounds first)
def test_parts_search_as_their_concatenation_and_are_released_block_by_block(monkeypatch,
                                                                             queries):
    """An index of several parts (a train index's chunks) numbers rows across them and finds
    exactly what the joined array finds, without joining them; each block is released once."""
    monkeypatch.setattr(vectors, "BLOCK_ROWS", 1000)
    monkeypatch.setattr(vectors, "FLOOR_SAMPLE", 256)
    whole = unit(20_000, dim=32, seed=3).astype(np.float16)
    cuts = [0, 3_500, 3_500, 12_001, 20_000]             # an empty part too
    parts = [whole[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    released: list[tuple[int, int, int]] = []
    parted = VectorIndex(parts, storage=np.float16, release=lambda *r: released.append(r))
    joined = VectorIndex(whole, storage=np.float16)
    q = unit(queries, dim=32, seed=4) * 0.5 + whole[:queries].astype(np.float32) * 0.5
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    got, want = parted.search_above(q, 0.2, 5), joined.search_above(q, 0.2, 5)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert (got[0][:, 0] >= 0).all()
    ids = np.array([0, 3_499, 3_500, 12_000, 12_001, 19_999])
    assert np.array_equal(parted.take(ids), whole[ids].astype(np.float32))
    assert len(parted) == 20_000 and parted.dim == 32
    covered = np.zeros(20_000, dtype=int)            # every row released once the search is done
    for p, lo, hi in released:
        covered[int(parted.starts[p]) + lo:int(parted.starts[p]) + hi] += 1
    assert (covered >= 1).all()
    assert np.array_equal(parted.vectors, whole)
