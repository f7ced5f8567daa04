"""Paraphrase search: eval rows that say what a train row says, in other words.

Three stages (see README, section "Overlap: paraphrases"):
1. retrieval: a static model distilled from the configured model finds, for each eval row,
   the train rows with the highest cosine (exact search over the train-side
   :class:`VectorIndex`) above a loose static floor, :data:`RETRIEVE` times ``candidates`` of
   them, plus the lexical candidates of the near-duplicate index (rows sharing rare words);
2. template collapsing: candidates nearly identical to each other (another instance of one
   template) collapse into one, the one whose numbers agree best with the eval row, so a
   templated train set cannot crowd the partner out; ``candidates`` groups are kept;
3. scoring: those pairs are encoded with the full sentence-transformers model and scored by
   the calibrated model of :mod:`.paraphrase_score` (cosine, margin over the neighbourhood,
   number and shared-word evidence); ``scoring: cosine`` keeps the cosine alone.

Small jobs skip retrieval (``retriever: exact``, or ``auto`` below :data:`EXACT_MAX_ROWS`):
every row is encoded with the full model and searched exactly.
All embedding goes through the :class:`Embedder` objects passed in, so callers can cache them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..config import SemanticConfig
from ..embeddings import Embedder
from ..numbers import compare
from ..progress import Progress
from ..rules import Rule, register
from ..search.vectors import VectorIndex
from . import paraphrase_score
from .paraphrase_score import neighbourhood, pair_features

register(Rule("paraphrase", "overlap", "An eval row says the same as a train row in other "
              "words (a calibrated score over embedding similarity, numbers and shared words)."))

# auto: at most this many rows to encode go through the full model alone (~70 sentences/s on
# 2 cores: ~15 s); above, static retrieval. The default model's static model ships in the
# package; another model's is distilled once per user (~110 s of CPU), which this bound keeps
# small audits from paying. Results differ only in which pairs get rescored.
EXACT_MAX_ROWS = 1000
# Static cosine under which a candidate is not worth rescoring: the lowest static cosine of a
# true paraphrase in tests/data/paraphrase_pairs.jsonl is 0.77 (bench/calibrate.py).
STATIC_FLOOR = 0.7
# Lexical candidates (sharing rare words) are kept this far below the floor.
LEXICAL_SLACK = 0.15
# Full-model cosine under which a candidate is not kept by exact search (small jobs).
FULL_FLOOR = 0.5
# Static retrieval fetches RETRIEVE x candidates before template collapsing keeps candidates.
RETRIEVE = 3
# Two candidates this close to each other (cosine of their vectors) are one template.
TEMPLATE_COSINE = 0.97

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


def scoring_key(cfg: SemanticConfig) -> str:
    """What the paraphrase verdicts depend on beyond the config: the shipped model's
    fingerprint (a cache of earlier results must not outlive a recalibration)."""
    return f"paraphrase-score-v1:{paraphrase_score.default_model().fingerprint}" \
        if cfg.scoring == "model" else "paraphrase-cosine-v1"


@dataclass(frozen=True, slots=True)
class Scored:
    """One candidate pair after scoring: eval row, train row, full-model cosine, features."""

    eval: int
    train: int
    cosine: float
    features: np.ndarray


def paraphrase_matches(eval_texts: Sequence[str], train_texts: Sequence[str],
                       cfg: SemanticConfig, *, embedder: Embedder,
                       retriever: Embedder | Callable[[], Embedder] | None = None,
                       skip: set[int] | None = None,
                       train_index: VectorIndex | Callable[[], VectorIndex] | None = None,
                       lexical: Mapping[int, Sequence[int]] | None = None,
                       progress: Progress | None = None) -> dict[int, tuple[int, float]]:
    """eval index -> (best train index, cosine) for eval rows paraphrasing a train row.

    ``retriever`` and ``train_index`` may be given as zero-argument callables, called only
    when static retrieval runs (so a small exact job never distils a static model).
    ``lexical`` maps eval indices to extra candidate train rows (the near-duplicate index's).
    """
    scored = score_candidates(eval_texts, train_texts, cfg, embedder=embedder,
                              retriever=retriever, skip=skip, train_index=train_index,
                              lexical=lexical, progress=progress)
    return decide(scored, cfg)


def decide(scored: Sequence[Scored], cfg: SemanticConfig) -> dict[int, tuple[int, float]]:
    """Each eval row's best pair that counts as a paraphrase under ``cfg``."""
    if not scored:
        return {}
    if cfg.scoring == "model":
        prob = paraphrase_score.default_model().probability(np.stack([s.features
                                                                       for s in scored]))
        bar = cfg.min_probability
    else:   # the feature is the cosine, or -inf for a pair vetoed by its numbers
        prob, bar = np.array([s.features[0] for s in scored]), cfg.threshold
    best: dict[int, tuple[float, float, int]] = {}
    for s, p in zip(scored, prob):
        if s.cosine < cfg.threshold or p < bar:
            continue
        key = (float(p), s.cosine, -s.train)
        if s.eval not in best or key > best[s.eval]:
            best[s.eval] = key
    return {i: (-k[2], k[1]) for i, k in best.items()}


def score_candidates(eval_texts: Sequence[str], train_texts: Sequence[str],
                     cfg: SemanticConfig, *, embedder: Embedder,
                     retriever: Embedder | Callable[[], Embedder] | None = None,
                     skip: set[int] | None = None,
                     train_index: VectorIndex | Callable[[], VectorIndex] | None = None,
                     lexical: Mapping[int, Sequence[int]] | None = None,
                     progress: Progress | None = None) -> list[Scored]:
    """Retrieve, collapse and score the candidate pairs of every eval row not in ``skip``."""
    progress = progress or Progress(enabled=False)
    skip = skip or set()
    lexical = lexical or {}
    todo = [i for i in range(len(eval_texts)) if i not in skip]
    if not todo or not train_texts:
        return []
    if use_exact(cfg, len(todo) + len(train_texts)):
        with progress.stage("paraphrase search (full model, exact)",
                            total=len(todo) + len(train_texts)) as stage:
            index = VectorIndex(embedder.encode(train_texts))
            vectors = embedder.encode([eval_texts[i] for i in todo])
            stage.advance(len(todo) + len(train_texts))
        candidates = _candidates(eval_texts, train_texts, todo, vectors, index, FULL_FLOOR,
                                 lexical, cfg)
        if cfg.scoring == "model" and cfg.same_numbers:
            candidates = _numbers_differ(eval_texts, train_texts, candidates)
        cosines = {(i, j): s for i, row in candidates.items() for j, s in row}
    else:
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
            candidates = _candidates(eval_texts, train_texts, todo, vectors, train_index,
                                     STATIC_FLOOR, lexical, cfg)
            if cfg.scoring == "model" and cfg.same_numbers:
                candidates = _numbers_differ(eval_texts, train_texts, candidates)
            stage.advance(len(todo))
        pairs = [(i, j) for i, row in candidates.items() for j, _ in row]
        with progress.stage("paraphrase rescoring", total=len(pairs)) as stage:
            cosines = _rescore(eval_texts, train_texts, pairs, embedder)
            stage.advance(len(pairs))
    model = paraphrase_score.default_model() if cfg.scoring == "model" else None
    scored: list[Scored] = []
    for i, row in candidates.items():
        js = [j for j, _ in row]
        cos = [cosines[i, j] for j in js]
        for j, c, hood in zip(js, cos, neighbourhood(cos)):
            if model is None:
                same = not cfg.same_numbers or numbers_of(eval_texts[i]) == \
                    numbers_of(train_texts[j])
                scored.append(Scored(i, j, c, np.array([c if same else -np.inf])))
                continue
            features, _ = pair_features(eval_texts[i], train_texts[j], c, hood,
                                        numbers=cfg.same_numbers, model=model)
            scored.append(Scored(i, j, c, features))
    return scored


def _candidates(eval_texts: Sequence[str], train_texts: Sequence[str], todo: list[int],
                vectors: np.ndarray, index: VectorIndex, floor: float,
                lexical: Mapping[int, Sequence[int]], cfg: SemanticConfig
                ) -> dict[int, list[tuple[int, float]]]:
    """eval index -> [(train index, cosine in ``index``'s space)], one per template, best
    first: the union of the index's and the lexical candidates above ``floor``, collapsed."""
    indices, scores = index.search_above(vectors, floor, cfg.candidates * RETRIEVE)
    out: dict[int, list[tuple[int, float]]] = {}
    for r, i in enumerate(todo):
        found = {int(j): float(s) for j, s in zip(indices[r], scores[r]) if j >= 0}
        extra = [int(j) for j in lexical.get(i, ())[:cfg.candidates] if int(j) not in found]
        if extra:   # rows sharing rare words: a lower floor (MMLU rephrasings: static 0.5+)
            sims = index.vectors[extra].astype(np.float32) @ vectors[r]
            found.update((j, float(s)) for j, s in zip(extra, sims)
                         if s >= floor - LEXICAL_SLACK)
        if found:
            ranked = sorted(found.items(), key=lambda c: (-c[1], c[0]))
            out[i] = _collapse(eval_texts[i], ranked, index, train_texts, cfg.candidates)
    return out


def _collapse(eval_text: str, ranked: list[tuple[int, float]], index: VectorIndex,
              train_texts: Sequence[str], keep: int) -> list[tuple[int, float]]:
    """One candidate per template (vectors at least :data:`TEMPLATE_COSINE` apart), the
    member sharing most of the eval row's numbers in digits (a cheap stand-in for
    :func:`~eval_firewall.numbers.compare`, which costs too much for every member of a large
    template); at most ``keep``, best first."""
    if len(ranked) == 1:
        return ranked
    ids = [j for j, _ in ranked]
    vecs = index.vectors[ids].astype(np.float32)
    sims = vecs @ vecs.T
    groups: list[list[int]] = []
    leaders: list[int] = []
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
        if len(members) > 1 and mine:   # the member sharing most of the row's numbers
            best = max(members, key=lambda m: (len(mine & _digits(train_texts[ids[m]])), -m))
        kept.append(ranked[best])
    return kept


@lru_cache(maxsize=1 << 16)
def _digits(text: str) -> frozenset[str]:
    """The digit strings of a text: a cheap signature to pick a template's best instance."""
    return frozenset(_NUMBER.findall(text))


def _numbers_differ(eval_texts: Sequence[str], train_texts: Sequence[str],
                    candidates: dict[int, list[tuple[int, float]]]
                    ) -> dict[int, list[tuple[int, float]]]:
    """Drop candidates whose numbers conflict (both sides state numbers the other lacks).

    The calibrated model gives such pairs a probability near zero (weight -3.0 on a feature
    that is 0 for every true pair of the calibration); dropping them before the full model
    encodes them keeps rescoring as cheap as the old same-numbers check did on templated data.
    Numbers written in words, a number only one side states and texts in different scripts
    are no conflict, so none of those is dropped.
    """
    out = {}
    for i, row in candidates.items():
        kept = [(j, s) for j, s in row if compare(eval_texts[i], train_texts[j]).value >= 0]
        if kept:
            out[i] = kept
    return out


def _rescore(eval_texts: Sequence[str], train_texts: Sequence[str],
             pairs: list[tuple[int, int]], embedder: Embedder
             ) -> dict[tuple[int, int], float]:
    """The full model's cosine of each candidate pair."""
    if not pairs:
        return {}
    eval_ids = sorted({i for i, _ in pairs})
    train_ids = sorted({j for _, j in pairs})
    eval_vec = dict(zip(eval_ids, embedder.encode([eval_texts[i] for i in eval_ids])))
    train_vec = dict(zip(train_ids, embedder.encode([train_texts[j] for j in train_ids])))
    return {(i, j): float(np.dot(eval_vec[i], train_vec[j])) for i, j in pairs}


# (eval texts, eval indices to skip, optional lexical candidates) -> {eval: (train, cosine)}
ParaphraseSearch = Callable[..., dict[int, tuple[int, float]]]


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

        def search(eval_texts: Sequence[str], skip: set[int],
                   lexical: Mapping[int, Sequence[int]] | None = None
                   ) -> dict[int, tuple[int, float]]:
            return paraphrase_matches(eval_texts, train_texts, cfg, embedder=embedder,
                                      retriever=get_retriever, skip=skip,
                                      train_index=get_index, lexical=lexical,
                                      progress=progress)
        return search

    return for_train
