"""Paraphrase search: eval rows that say what a train row says, in other words.

Two stages (see README, section "semantic"):
1. retrieval: a static model distilled from the configured model finds, for each eval row,
   the ``candidates`` train rows with the highest cosine (exact search over the train-side
   :class:`VectorIndex`), keeping those above a loose static floor;
2. rescoring: only those pairs are encoded with the full sentence-transformers model; a pair
   is a paraphrase when its cosine reaches ``threshold`` and, with ``same_numbers``, both
   texts mention the same numbers (a math problem with other numbers is another problem).

Small jobs skip retrieval (``retriever: exact``, or ``auto`` below :data:`EXACT_MAX_ROWS`):
every row is encoded with the full model and searched exactly.
All embedding goes through the :class:`Embedder` objects passed in, so callers can cache them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from ..config import SemanticConfig
from ..embeddings import Embedder
from ..progress import Progress
from ..search.vectors import VectorIndex

# auto: at most this many rows to encode go through the full model alone (~70 sentences/s on
# 2 cores: ~15 s); above, static retrieval. The default model's static model ships in the
# package; another model's is distilled once per user (~110 s of CPU), which this bound keeps
# small audits from paying. Results differ only in which pairs get rescored.
EXACT_MAX_ROWS = 1000
# Static cosine under which a candidate is not worth rescoring: the lowest static cosine of a
# true paraphrase in tests/data/paraphrase_pairs.jsonl is 0.77 (bench/calibrate.py).
STATIC_FLOOR = 0.7

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*|\.\d+")
# Number words count as their digits; "one" does not (it is as often a pronoun or article).
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split(), start=0) if i > 1}
_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)


def numbers_of(text: str) -> frozenset[str]:
    """The numbers a text mentions (digits, or a number word from two to twenty), normalized."""
    found = set()
    for raw in _NUMBER.findall(text):
        value = raw.replace(",", "")
        try:
            number = float(value)
        except ValueError:
            continue
        found.add(f"{number:g}")
    found.update(_NUMBER_WORDS[w.lower()] for w in _WORD.findall(text))
    return frozenset(found)


def build_train_index(train_texts: Sequence[str], retriever: Embedder) -> VectorIndex:
    """The train-side retrieval index (static vectors); separate so callers can cache it."""
    return VectorIndex(retriever.encode(train_texts), storage=np.float16)


def use_exact(cfg: SemanticConfig, rows_to_encode: int) -> bool:
    """Whether to skip static retrieval and search with the full model alone."""
    if cfg.retriever == "auto":
        return rows_to_encode <= EXACT_MAX_ROWS
    return cfg.retriever == "exact"


def paraphrase_matches(eval_texts: Sequence[str], train_texts: Sequence[str],
                       cfg: SemanticConfig, *, embedder: Embedder,
                       retriever: Embedder | Callable[[], Embedder] | None = None,
                       skip: set[int] | None = None,
                       train_index: VectorIndex | Callable[[], VectorIndex] | None = None,
                       progress: Progress | None = None) -> dict[int, tuple[int, float]]:
    """eval index -> (best train index, cosine) for eval rows paraphrasing a train row.

    ``retriever`` and ``train_index`` may be given as zero-argument callables, called only
    when static retrieval runs (so a small exact job never distils a static model).
    """
    progress = progress or Progress(enabled=False)
    skip = skip or set()
    todo = [i for i in range(len(eval_texts)) if i not in skip]
    if not todo or not train_texts:
        return {}
    if use_exact(cfg, len(todo) + len(train_texts)):
        with progress.stage("paraphrase search (full model, exact)",
                            total=len(todo) + len(train_texts)) as stage:
            found = _exact_matches(eval_texts, train_texts, todo, cfg, embedder)
            stage.advance(len(todo) + len(train_texts))
        return found
    with progress.stage("load the static retrieval model"):
        if callable(retriever):
            retriever = retriever()
    if retriever is None:
        raise ValueError("static retrieval needs a retriever embedder")
    with progress.stage("embed train (static)", total=len(train_texts)) as stage:
        if train_index is None:
            train_index = build_train_index(train_texts, retriever)
        elif callable(train_index):
            train_index = train_index()
        stage.advance(len(train_texts))
    with progress.stage("paraphrase retrieval", total=len(todo)) as stage:
        vectors = retriever.encode([eval_texts[i] for i in todo])
        indices, _ = train_index.search_above(vectors, STATIC_FLOOR, cfg.candidates)
        pairs = [(todo[r], int(j)) for r, row in enumerate(indices) for j in row if j >= 0]
        pairs = _same_numbers(eval_texts, train_texts, pairs) if cfg.same_numbers else pairs
        stage.advance(len(todo))
    with progress.stage("paraphrase rescoring", total=len(pairs)) as stage:
        found = _rescore(eval_texts, train_texts, pairs, cfg.threshold, embedder)
        stage.advance(len(pairs))
    return found


def _same_numbers(eval_texts: Sequence[str], train_texts: Sequence[str],
                  pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    memo: dict[tuple[str, int], frozenset[str]] = {}

    def nums(side: str, texts: Sequence[str], i: int) -> frozenset[str]:
        if (side, i) not in memo:
            memo[side, i] = numbers_of(texts[i])
        return memo[side, i]

    return [(i, j) for i, j in pairs
            if nums("e", eval_texts, i) == nums("t", train_texts, j)]


def _exact_matches(eval_texts: Sequence[str], train_texts: Sequence[str], todo: list[int],
                   cfg: SemanticConfig, embedder: Embedder) -> dict[int, tuple[int, float]]:
    """Full-model vectors for every row, exact search: no static model, no rescoring."""
    index = VectorIndex(embedder.encode(train_texts))
    indices, scores = index.search_above(embedder.encode([eval_texts[i] for i in todo]),
                                         cfg.threshold, cfg.candidates)
    pairs = [(todo[r], int(j)) for r, row in enumerate(indices) for j in row if j >= 0]
    score_of = {(todo[r], int(j)): float(s) for r, (row, srow) in enumerate(zip(indices, scores))
                for j, s in zip(row, srow) if j >= 0}
    if cfg.same_numbers:
        pairs = _same_numbers(eval_texts, train_texts, pairs)
    found: dict[int, tuple[int, float]] = {}
    for i, j in pairs:   # best first per eval row
        if i not in found:
            found[i] = (j, score_of[i, j])
    return found


def _rescore(eval_texts: Sequence[str], train_texts: Sequence[str],
             pairs: list[tuple[int, int]], threshold: float, embedder: Embedder
             ) -> dict[int, tuple[int, float]]:
    """Score candidate pairs with the full model; keep each eval row's best at/above threshold."""
    if not pairs:
        return {}
    eval_ids = sorted({i for i, _ in pairs})
    train_ids = sorted({j for _, j in pairs})
    eval_vec = dict(zip(eval_ids, embedder.encode([eval_texts[i] for i in eval_ids])))
    train_vec = dict(zip(train_ids, embedder.encode([train_texts[j] for j in train_ids])))
    found: dict[int, tuple[int, float]] = {}
    for i, j in pairs:
        score = float(np.dot(eval_vec[i], train_vec[j]))
        if score >= threshold and (i not in found or score > found[i][1]
                                   or (score == found[i][1] and j < found[i][0])):
            found[i] = (j, score)
    return found


ParaphraseSearch = Callable[[Sequence[str], set[int]], dict[int, tuple[int, float]]]


def paraphrase_search(cfg: SemanticConfig, *, embedder: Embedder,
                      retriever: Embedder | Callable[[], Embedder] | None = None,
                      index_builder: Callable[[Sequence[str], Embedder], VectorIndex]
                      = build_train_index, progress: Progress | None = None
                      ) -> Callable[[Sequence[str]], ParaphraseSearch]:
    """A factory for :func:`overlap.find_overlaps`: train texts -> search(eval texts, skip).

    The retriever is resolved, and the train index built (with ``index_builder``, which a
    cache can replace), at most once per train set and only if static retrieval runs.
    """
    resolved: list[Embedder] = []

    def get_retriever() -> Embedder:
        if not resolved:
            resolved.append(retriever() if callable(retriever) else retriever)
        return resolved[0]

    def for_train(train_texts: Sequence[str]) -> ParaphraseSearch:
        built: list[VectorIndex] = []

        def get_index() -> VectorIndex:
            if not built:
                built.append(index_builder(train_texts, get_retriever()))
            return built[0]

        def search(eval_texts: Sequence[str], skip: set[int]) -> dict[int, tuple[int, float]]:
            return paraphrase_matches(eval_texts, train_texts, cfg, embedder=embedder,
                                      retriever=get_retriever, skip=skip,
                                      train_index=get_index, progress=progress)
        return search

    return for_train
