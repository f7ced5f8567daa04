"""Paraphrase search: eval rows that say what a train row says, in other words.

Three stages (see docs/audits/overlap.md, "Paraphrases"):
1. retrieval: a static model distilled from the configured model finds, for each eval row,
   the train rows with the highest cosine (exact search over the train-side
   :class:`VectorIndex`) above a loose static floor, :data:`RETRIEVE` times ``candidates`` of
   them, plus the lexical candidates of the near-duplicate index (rows sharing rare words);
2. template collapsing: candidates nearly identical to each other (another instance of one
   template) collapse into one, the one whose numbers agree best with the eval row, so a
   templated train set cannot crowd the partner out; ``candidates`` groups are kept;
3. scoring: those pairs are encoded with the full sentence-transformers model and scored by
   the calibrated model of :mod:`eval_firewall.overlap.score` (cosine, margin over
   the neighbourhood, number, shared-word and question evidence); the verdict is
   :func:`eval_firewall.overlap.semantic.decide`.

Small jobs skip retrieval (``retriever: exact``, or ``auto`` below
:data:`~eval_firewall.overlap.semantic.EXACT_MAX_ROWS`): every row is encoded with the full
model and searched exactly. All embedding goes through the :class:`Embedder` objects passed
in, so callers can cache them.

One entry point: ``ParaphraseSearch(cfg, embedder=..., retriever=...).for_train(train)``
gives a :class:`TrainSearch` whose ``search(eval_texts, skip, lexical)`` the overlap audit
calls (both objects are also callable that way).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

import numpy as np

from ..config import SemanticConfig
from ..embeddings import Embedder
from ..findings import Evidence
from ..overlap import score as paraphrase_score
from ..overlap.score import neighbourhood, pair_features
from ..overlap.semantic import Scored, decide, decide_pairs, evidence_of, use_exact
from ..progress import Progress
from ..text.numbers import DIGITS, compare, numbers_of
from .vectors import VectorIndex

# Static cosine under which a candidate is not worth rescoring: the lowest static cosine of a
# true paraphrase in tests/data/paraphrase_pairs.jsonl is 0.77 (bench/calibrate.py).
STATIC_FLOOR = 0.7
# Lexical candidates (sharing rare words) are kept this far below the floor.
LEXICAL_SLACK = 0.15
# Full-model cosine under which a candidate is not kept by exact search (small jobs).
FULL_FLOOR = 0.5
# Static retrieval fetches RETRIEVE x candidates before template collapsing keeps candidates.
RETRIEVE = 3
# Code eval rows (paraphrase_score.looks_like_code): the static model tells code apart poorly
# (every function looks alike to it, bench/calibrate.py), so they keep RETRIEVE x candidates,
# uncollapsed, above this lower static floor, and the full model sorts them out.
CODE_STATIC_FLOOR = 0.5
# Two candidates this close to each other (cosine of their vectors) are one template.
TEMPLATE_COSINE = 0.97
_TEMPLATE_COSINE32 = float(np.float32(TEMPLATE_COSINE))   # as float32 scores compare

Lazy = Callable[[], Embedder]
IndexBuilder = Callable[[Sequence[str], Embedder], VectorIndex]
Candidates = dict[int, list[tuple[int, float]]]


def build_train_index(train_texts: Sequence[str], retriever: Embedder) -> VectorIndex:
    """The train-side retrieval index (static vectors); separate so callers can cache it."""
    return VectorIndex(retriever.encode(train_texts), storage=np.float16)


class ParaphraseSearch:
    """The paraphrase search of one configuration, for any number of train sets.

    ``retriever`` (the static model) may be a zero-argument callable: it is called at most
    once, and only if static retrieval runs, so a small exact job never distils a static
    model. ``index_builder`` builds a train set's static index (a cache can replace it).
    """

    def __init__(self, cfg: SemanticConfig, *, embedder: Embedder,
                 retriever: Embedder | Lazy | None = None,
                 index_builder: IndexBuilder = build_train_index,
                 progress: Progress | None = None) -> None:
        """Keep the configuration and the models; nothing is loaded yet."""
        self.cfg = cfg
        self.embedder = embedder
        self.index_builder = index_builder
        self.progress = progress or Progress(enabled=False)
        self._retriever = retriever

    def retriever(self) -> Embedder:
        """The static model, resolved on first use."""
        found = self._retriever
        if found is None:
            raise ValueError("static retrieval needs a retriever embedder")
        if not isinstance(found, Embedder):   # a factory: call it once
            found = self._retriever = found()
        return found

    def for_train(self, train_texts: Sequence[str],
                  train_index: VectorIndex | None = None) -> TrainSearch:
        """The search against one train set (its index built at most once, when needed)."""
        return TrainSearch(self, train_texts, train_index)

    __call__ = for_train


class TrainSearch:
    """Paraphrase search against one train set."""

    def __init__(self, owner: ParaphraseSearch, train_texts: Sequence[str],
                 train_index: VectorIndex | None = None) -> None:
        """A search of ``owner``'s configuration over ``train_texts``."""
        self.owner = owner
        self.cfg = owner.cfg
        self.train_texts = train_texts
        self._index = train_index

    def index(self) -> VectorIndex:
        """The train set's static index, built on first use."""
        if self._index is None:
            self._index = self.owner.index_builder(self.train_texts, self.owner.retriever())
        return self._index

    def search(self, eval_texts: Sequence[str], skip: set[int] | None = None,
               lexical: Mapping[int, Sequence[int]] | None = None
               ) -> dict[int, tuple[int, float]]:
        """Map each eval row paraphrasing a train row to (train index, cosine).

        ``skip``: eval rows already flagged; ``lexical``: extra candidate train rows per eval
        row (the near-duplicate index's).
        """
        return decide(self.score(eval_texts, skip, lexical), self.cfg)

    def search_with_evidence(self, eval_texts: Sequence[str], skip: set[int] | None = None,
                             lexical: Mapping[int, Sequence[int]] | None = None
                             ) -> dict[int, tuple[int, float, Evidence]]:
        """Like :meth:`search`, with the evidence of each decision (probability, features)."""
        return {i: (s.train, s.cosine, evidence_of(s, p, self.cfg))
                for i, (s, p) in decide_pairs(self.score(eval_texts, skip, lexical),
                                              self.cfg).items()}

    __call__ = search_with_evidence

    def score(self, eval_texts: Sequence[str], skip: set[int] | None = None,
              lexical: Mapping[int, Sequence[int]] | None = None) -> list[Scored]:
        """Retrieve, collapse and score the candidate pairs of every eval row not skipped."""
        cfg, progress, train_texts = self.cfg, self.owner.progress, self.train_texts
        skip = skip or set()
        lexical = lexical or {}
        todo = [i for i in range(len(eval_texts)) if i not in skip]
        if not todo or not train_texts:
            return []
        embedder = self.owner.embedder
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
                retriever = self.owner.retriever()
            with progress.stage("embed train (static)", total=len(train_texts)) as stage:
                index = self.index()
                stage.advance(len(train_texts))
            with progress.stage("paraphrase retrieval", total=len(todo)) as stage:
                vectors = retriever.encode([eval_texts[i] for i in todo])
                code = np.array([paraphrase_score.looks_like_code(eval_texts[i]) for i in todo],
                                dtype=bool)
                prose_rows = [i for i, c in zip(todo, code) if not c]
                code_rows = [i for i, c in zip(todo, code) if c]
                candidates = _candidates(eval_texts, train_texts, prose_rows, vectors[~code],
                                         index, STATIC_FLOOR, lexical, cfg)
                if code_rows:
                    candidates.update(_candidates(eval_texts, train_texts, code_rows,
                                                  vectors[code], index, CODE_STATIC_FLOOR,
                                                  lexical, cfg, collapse=False))
                if cfg.scoring == "model" and cfg.same_numbers:
                    candidates = _numbers_differ(eval_texts, train_texts, candidates)
                stage.advance(len(todo))
            pairs = [(i, j) for i, row in candidates.items() for j, _ in row]
            with progress.stage("paraphrase rescoring", total=len(pairs)) as stage:
                cosines = _rescore(eval_texts, train_texts, pairs, embedder)
                stage.advance(len(pairs))
        return _scored(eval_texts, train_texts, candidates, cosines, cfg)


def paraphrase_matches(eval_texts: Sequence[str], train_texts: Sequence[str],
                       cfg: SemanticConfig, *, embedder: Embedder,
                       retriever: Embedder | Lazy | None = None,
                       skip: set[int] | None = None,
                       lexical: Mapping[int, Sequence[int]] | None = None,
                       progress: Progress | None = None) -> dict[int, tuple[int, float]]:
    """One search of ``eval_texts`` against ``train_texts`` (see :class:`ParaphraseSearch`)."""
    search = ParaphraseSearch(cfg, embedder=embedder, retriever=retriever, progress=progress)
    return search.for_train(train_texts).search(eval_texts, skip, lexical)


def _scored(eval_texts: Sequence[str], train_texts: Sequence[str], candidates: Candidates,
            cosines: Mapping[tuple[int, int], float], cfg: SemanticConfig) -> list[Scored]:
    """Each candidate pair with its features (the calibrated model's, or the cosine alone)."""
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
                lexical: Mapping[int, Sequence[int]], cfg: SemanticConfig,
                retrieve: int = RETRIEVE, collapse: bool = True) -> Candidates:
    """Map eval index to [(train index, cosine in ``index``'s space)], one per template, best
    first: the union of the index's and the lexical candidates above ``floor``, collapsed
    (without ``collapse``: the best ``retrieve`` x ``candidates`` of them)."""
    if not todo:
        return {}
    indices, scores = index.search_above(vectors, floor, cfg.candidates * retrieve)
    out: Candidates = {}
    for r, i in enumerate(todo):
        found = {int(j): float(s) for j, s in zip(indices[r], scores[r]) if j >= 0}
        extra = [int(j) for j in lexical.get(i, ())[:cfg.candidates] if int(j) not in found]
        if extra:   # rows sharing rare words: a lower floor (MMLU rephrasings: static 0.5+)
            sims = index.take(extra) @ vectors[r]
            found.update((j, float(s)) for j, s in zip(extra, sims)
                         if s >= floor - LEXICAL_SLACK)
        if found:
            ranked = sorted(found.items(), key=lambda c: (-c[1], c[0]))
            out[i] = _collapse(eval_texts[i], ranked, index, train_texts, cfg.candidates) \
                if collapse else ranked[:cfg.candidates * retrieve]
    return out


def _collapse(eval_text: str, ranked: list[tuple[int, float]], index: VectorIndex,
              train_texts: Sequence[str], keep: int) -> list[tuple[int, float]]:
    """One candidate per template (vectors at least :data:`TEMPLATE_COSINE` apart), the
    member sharing most of the eval row's numbers in digits (a cheap stand-in for
    :func:`~eval_firewall.text.numbers.compare`, which costs too much for every member of a large
    template); at most ``keep``, best first."""
    if len(ranked) == 1:
        return ranked
    ids = [j for j, _ in ranked]
    vecs = index.take(ids)
    sims = (vecs @ vecs.T).tolist()      # Python floats: a few per row, cheaper than numpy
    groups: list[list[int]] = []
    leaders: list[int] = []
    for r in range(len(ids)):
        if leaders:
            near = [sims[r][leader] for leader in leaders]
            g = near.index(max(near))       # the first of equals, as np.argmax
            if near[g] >= _TEMPLATE_COSINE32:
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
    return frozenset(DIGITS.findall(text))


def _numbers_differ(eval_texts: Sequence[str], train_texts: Sequence[str],
                    candidates: Candidates) -> Candidates:
    """Drop candidates whose numbers conflict (both sides state numbers the other lacks).

    The calibrated model gives such pairs a probability near zero; dropping them before the
    full model encodes them keeps rescoring as cheap as the old same-numbers check did on
    templated data. Numbers written in words, a number only one side states, texts in
    different scripts and code (whose doctests and constants a rephrasing may keep or change)
    are no conflict, so none of those is dropped.
    """
    out = {}
    for i, row in candidates.items():
        kept = [(j, s) for j, s in row
                if paraphrase_score.is_code_pair(eval_texts[i], train_texts[j])
                or compare(eval_texts[i], train_texts[j]).value >= 0]
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
