"""Template collapsing (search/paraphrase.py ``_collapse``): the properties its docstring
promises, on generated candidates: one candidate per template (vectors at least
``TEMPLATE_COSINE`` apart), the member sharing most of the eval row's numbers, at most ``keep``,
best first."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from eval_firewall.search.paraphrase import TEMPLATE_COSINE, _collapse
from eval_firewall.search.vectors import VectorIndex

DIM = 16
# Cosines computed here and in _collapse may differ in the last float32 bit: a pair this close
# to TEMPLATE_COSINE is not held against either side of the promise.
EPS = 1e-5


def _cosines(index: VectorIndex, ids: list[int]) -> np.ndarray:
    vecs = index.vectors[ids].astype(np.float64)
    return vecs @ vecs.T


@st.composite
def candidates(draw, separated: bool):
    """(ranked, index, templates, keep): ``rows`` candidates drawn from ``templates`` template
    centres, ranked by made-up descending scores in a random order. ``separated``: centres
    orthogonal and members within 0.99 of theirs, so the true templates are known; else any
    noise, cosines near ``TEMPLATE_COSINE`` included, and exact ties (noise 0: equal rows)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = draw(st.integers(1, 40))
    count = draw(st.integers(1, 6))
    of = rng.integers(0, count, rows)
    if separated:
        centres = np.eye(DIM, dtype=np.float64)[:count]
        noise = 0.04 * rng.standard_normal((rows, DIM)) / np.sqrt(DIM)
    else:
        centres = rng.standard_normal((count, DIM))
        noise = draw(st.sampled_from([0.0, 0.01, 0.05, 0.2, 0.25])) * rng.standard_normal((rows, DIM))
    vectors = centres[of] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex(vectors, storage=np.float16 if draw(st.booleans()) else np.float32)
    order = rng.permutation(rows)
    scores = np.sort(rng.random(rows))[::-1]
    ranked = [(int(j), float(s)) for j, s in zip(order, scores)]
    return ranked, index, of, draw(st.integers(1, 8))


def _numbers_texts(rng_seed: int, rows: int) -> list[str]:
    rng = np.random.default_rng(rng_seed)
    return [f"{rng.integers(0, 5)} apples and {rng.integers(0, 5)} pears" for _ in range(rows)]


NO_DIGITS = "Some apples and a pear"


@settings(max_examples=200, deadline=None)
@given(case=candidates(separated=False), seed=st.integers(0, 2**16),
       eval_text=st.sampled_from([NO_DIGITS, "3 apples and 1 pear", "4 pears"]))
def test_kept_candidates_are_distinct_ranked_ones_at_most_keep(case, seed, eval_text):
    ranked, index, _, keep = case
    kept = _collapse(eval_text, ranked, index, _numbers_texts(seed, len(index)), keep)
    assert kept, "a non-empty ranking keeps its first template"
    assert all(c in ranked for c in kept)
    assert len({j for j, _ in kept}) == len(kept)
    assert len(kept) <= max(keep, 1)


@settings(max_examples=200, deadline=None)
@given(case=candidates(separated=False), seed=st.integers(0, 2**16))
def test_without_numbers_the_leaders_are_kept_apart_and_cover_the_rest(case, seed):
    """An eval row without digits keeps each template's best-ranked candidate: in rank order,
    the first one first, no two of them one template; and a dropped candidate is one template
    with a kept one unless ``keep`` templates were already full."""
    ranked, index, _, keep = case
    kept = _collapse(NO_DIGITS, ranked, index, _numbers_texts(seed, len(index)), keep)
    assert kept[0] == ranked[0]
    positions = [ranked.index(c) for c in kept]
    assert positions == sorted(positions)
    ids = [j for j, _ in ranked]
    sims = _cosines(index, ids)
    for a in positions:
        for b in positions:
            if a < b:
                assert sims[a, b] < TEMPLATE_COSINE + EPS
    if len(kept) < keep:
        for r in range(len(ranked)):
            assert max(sims[r, p] for p in positions) >= TEMPLATE_COSINE - EPS, \
                f"candidate {r} was dropped with room for its template"
    # a dropped candidate ranked before the last kept one belongs to an earlier template
    for r in range(positions[-1]):
        if r not in positions:
            assert max(sims[r, p] for p in positions if p < r) >= TEMPLATE_COSINE - EPS


@settings(max_examples=200, deadline=None)
@given(case=candidates(separated=True), seed=st.integers(0, 2**16),
       eval_text=st.sampled_from([NO_DIGITS, "3 apples and 1 pear", "0 apples", "2 pears and 4"]))
def test_one_candidate_per_template_sharing_most_numbers(case, seed, eval_text):
    """Known templates: the first ``keep`` templates in rank order, each once, in that order;
    each by its member sharing most of the eval row's digit strings, the best ranked of
    equals (the first one when the eval row has no digits)."""
    ranked, index, of, keep = case
    texts = _numbers_texts(seed, len(index))
    kept = _collapse(eval_text, ranked, index, texts, keep)
    order: list[int] = []
    for j, _ in ranked:
        if of[j] not in order:
            order.append(int(of[j]))
    assert [int(of[j]) for j, _ in kept] == order[:keep]
    mine = set(w for w in eval_text.split() if w.isdigit())

    def shared(j: int) -> int:
        return len(mine & set(w for w in texts[j].split() if w.isdigit()))

    for j, s in kept:
        members = [c for c in ranked if of[c[0]] == of[j]]
        best = max(members, key=lambda c: (shared(c[0]), -ranked.index(c)))
        assert (j, s) == best


@given(keep=st.integers(1, 5), rows=st.integers(1, 12))
def test_rows_far_apart_are_all_templates(keep, rows):
    """Orthogonal vectors: nothing collapses, the best ``keep`` are kept as ranked."""
    index = VectorIndex(np.eye(DIM, dtype=np.float32)[:rows])
    ranked = [(j, 1.0 - j / 100) for j in reversed(range(rows))]
    assert _collapse("3 apples", ranked, index, _numbers_texts(0, rows), keep) == ranked[:keep]


def test_stop_words_are_scikit_learns_list_without_importing_it():
    import subprocess
    import sys

    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from eval_firewall.overlap.score import _stop_words
    assert _stop_words() == frozenset(ENGLISH_STOP_WORDS) | {"does", "did", "let", "use", "used",
                                                             "following"}
    code = ("import sys; from eval_firewall.overlap.score import content_words; "
            "assert content_words('How many apples does Anna have?'), 'no words'; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
