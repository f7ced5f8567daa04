"""The posting kinds an index chunk holds: one registry, each kind a function of the chunk's
normalized texts returning named arrays.

A kind ``k`` returning ``{"a": ..., "b": ...}`` is stored as the chunk's arrays ``k.a`` and
``k.b`` (see :mod:`.chunk`); adding a kind is one function plus one line in :data:`POSTINGS`.
The containment search's word hashes (:func:`..search.containment.build`: ``tokens`` and the
rows' ``starts``) are the kind ``"containment"``; the audit scans them chunk by chunk with
each chunk's row offset (:class:`.train.IndexedTrainSide`), so an unchanged train file is not
tokenized again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..search import containment, lexical

# Texts: a pyarrow string array of the chunk's normalized texts (no nulls).
PostingBuilder = Callable[[Any], dict[str, np.ndarray]]


def lexical_postings(norm: Any) -> dict[str, np.ndarray]:
    """The lexical index's hashed word features, feature-major: the distinct ``features``
    (sorted), where each one's rows start in ``rows`` (``starts``, one more entry), and the
    chunk-local ``rows`` having it (ascending). Document frequencies are ``diff(starts)``; the
    global weights (IDF, the dropped common words) are applied at query time
    (:class:`.train.ChunkedLexicalIndex`), so a chunk never depends on the others."""
    from scipy import sparse

    n = len(norm)
    indptr, cols = lexical._hashed_rows(norm, lexical.ROWS_PER_PIECE)
    matrix = sparse.csr_matrix((np.ones(len(cols), dtype=np.int8), cols, indptr),
                               shape=(n, lexical.N_FEATURES)).tocsc()
    counts = np.diff(matrix.indptr)
    features = np.flatnonzero(counts).astype(np.int32)
    starts = np.zeros(len(features) + 1, dtype=np.int64)
    np.cumsum(counts[features], out=starts[1:])
    return {"features": features, "starts": starts, "rows": matrix.indices.astype(np.int32)}


# name -> builder (the names are part of every chunk's key: a new kind rebuilds the index).
POSTINGS: dict[str, PostingBuilder] = {
    "lexical": lexical_postings,
    "containment": containment.build,
}
