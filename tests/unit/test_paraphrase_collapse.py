"""Template collapsing (search/paraphrase.py ``_collapse``) against its former numpy loop."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from eval_firewall.search.paraphrase import TEMPLATE_COSINE, _collapse, _digits
from eval_firewall.search.vectors import VectorIndex


def collapse_with_numpy(eval_text, ranked, index, train_texts, keep):
    """The loop as it was: numpy indexing and argmax per candidate."""
    if len(ranked) == 1:
        return ranked
    ids = [j for j, _ in ranked]
    vecs = index.vectors[ids].astype(np.float32)
    sims = vecs @ vecs.T
    groups, leaders = [], []
    for r in range(len(ids)):
        if leaders:
            near = sims[r, leaders]
            g = int(np.argmax(near))
            if near[g] >= TEMPLATE_COSINE:
                groups[g].append(r)
                continue
        if len(groups) >= keep:
            continue
        leaders.append(r)
        groups.append([r])
    kept = []
    mine = _digits(eval_text)
    for members in groups:
        best = members[0]
        if len(members) > 1 and mine:
            best = max(members, key=lambda m: (len(mine & _digits(train_texts[ids[m]])), -m))
        kept.append(ranked[best])
    return kept


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 40), templates=st.integers(1, 6),
       noise=st.sampled_from([0.0, 0.01, 0.05, 0.2]), keep=st.integers(1, 8),
       half=st.booleans())
def test_collapse_keeps_what_the_numpy_loop_kept(seed, rows, templates, noise, keep, half):
    """Same groups, leaders and chosen members, also with exact ties (noise 0: equal rows)
    and cosines near TEMPLATE_COSINE."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((templates, 16)).astype(np.float32)
    vectors = centres[rng.integers(0, templates, rows)] + noise * rng.standard_normal((rows, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex(vectors, storage=np.float16 if half else np.float32)
    train_texts = [f"{rng.integers(0, 5)} apples and {rng.integers(0, 5)} pears" for _ in range(rows)]
    order = rng.permutation(rows)
    ranked = [(int(j), float(s)) for j, s in zip(order, np.sort(rng.random(rows))[::-1])]
    eval_text = "3 apples and 1 pear"
    assert _collapse(eval_text, ranked, index, train_texts, keep) == \
        collapse_with_numpy(eval_text, ranked, index, train_texts, keep)


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
