"""The overlap search: each eval row's strongest overlap with the train rows (exact, near,
contained or paraphrased) and the eval rows repeating an earlier one, as plain values.

The search is a :class:`HitFinder`: the plain :class:`MemoryFinder` here, or the cached one of
:mod:`.cached`, which reuses earlier results for rows that did not change and searches only the
new ones. Both sides come in as a :class:`~.corpus.Corpus`. :func:`search_overlaps` runs one and
returns :class:`Overlaps`, the overlap audit's input (:mod:`eval_firewall.audits.overlap` turns
it into findings).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rapidfuzz import fuzz

from ..config import OverlapConfig
from ..findings import Evidence, Stat
from ..progress import Progress
from ..search import containment
from ..search.lexical import LexicalIndex
from ..search.windows import Windows, window_length, windows_of
from .corpus import Corpus

STRENGTH = {"exact-duplicate": 0, "near-duplicate": 1, "contained": 2, "paraphrase": 3}


@dataclass(frozen=True, slots=True)
class Hit:
    """The strongest overlap of one eval row: which rule, which train row, how close; for a
    containment or a paraphrase window, which words of the train row's normalized text
    (``start``..``end``) and, for containment, the share of the eval row covered."""

    rule: str
    train: int
    score: float
    start: int | None = None
    end: int | None = None
    coverage: float | None = None
    evidence: Evidence | None = None   # the numbers the decision used

    def beats(self, other: Hit | None) -> bool:
        """Whether this hit is stronger than ``other`` (a stronger kind, then a higher score)."""
        if other is None:
            return True
        return (STRENGTH[self.rule], -self.score) < (STRENGTH[other.rule], -other.score)


class ParaphraseQuery(Protocol):
    """Paraphrase search against one train set: eval texts, eval indices to skip, and the
    near-duplicate index's lexical candidates {eval index: train indices} -> {eval index:
    (train index, cosine, evidence)}."""

    def __call__(self, eval_texts: Sequence[str], skip: set[int],
                 lexical: dict[int, list[int]] | None = None, /
                 ) -> dict[int, tuple[int, float, Evidence]]:
        """Each searched eval row's best paraphrased train row and its cosine."""


# Builds the paraphrase search against one train corpus (the engine's, over :mod:`..search.paraphrase`).
ParaphraseFactory = Callable[[Corpus], ParaphraseQuery]


@dataclass(frozen=True)
class Found:
    """A hit finder's answer: the strongest hit of each eval row that has one, the eval rows
    repeating an earlier eval row (:func:`within_eval`), and figures about the search itself
    (reported after the audit's own)."""

    hits: dict[int, Hit]
    within: dict[int, tuple[int, float]]   # eval row -> (earlier eval row it repeats, score)
    stats: tuple[Stat, ...] = ()


class HitFinder(Protocol):
    """Finds each eval row's strongest overlap (exact, near or paraphrase) with the train rows,
    and the eval rows that repeat an earlier one."""

    def find(self, evals: Corpus, train: Corpus, cfg: OverlapConfig) -> Found:
        """The hits of ``evals`` against ``train`` under ``cfg``."""


def lexical_similarity(a: str, b: str) -> float:
    """Similarity of two normalized texts in 0..1: edits, or the same words reordered."""
    return max(fuzz.ratio(a, b), fuzz.token_sort_ratio(a, b)) / 100.0


class TrainSide:
    """What queries against the train rows need, each part built once on first use (or
    given: a cache can supply the lexical index)."""

    def __init__(self, norm: Sequence[str], texts: Sequence[str] | None = None,
                 lexical: LexicalIndex | None = None) -> None:
        """Index ``norm`` (normalized texts); ``texts`` are the originals, for paraphrases."""
        self.norm = norm
        self.texts = texts if texts is not None else norm
        self._lexical = lexical
        self._exact: dict[str, int] | None = None

    @property
    def exact(self) -> dict[str, int]:
        """Normalized text -> index of the first train row with it."""
        if self._exact is None:
            first: dict[str, int] = {}
            for j, text in enumerate(self.norm):
                first.setdefault(text, j)
            self._exact = first
        return self._exact

    @property
    def lexical(self) -> LexicalIndex:
        """The lexical candidate index of the normalized texts."""
        if self._lexical is None:
            self._lexical = LexicalIndex(self.norm)
        return self._lexical

    def contained(self, eval_norm: Sequence[str], settings: containment.Settings,
                  only: Sequence[int], advance: Callable[[int], None] | None = None
                  ) -> dict[int, containment.Contained]:
        """Eval index (of ``only``) -> its best containing train row: the train texts are
        tokenized a piece at a time (an index side scans its stored postings instead);
        ``advance`` is told the train rows scanned."""
        found = containment.search(eval_norm, self.norm, settings, only)
        if advance is not None:
            advance(len(self.norm))
        return found


def exact_matches(eval_norm: Sequence[str], train: TrainSide) -> dict[int, int]:
    """Eval index -> index of the first train row with the same normalized text.

    Rows with no letter or digit (emoji, punctuation) normalize to "" and match nothing:
    otherwise every such row would be a 'copy' of every other.
    """
    return {i: train.exact[t] for i, t in enumerate(eval_norm) if t and t in train.exact}


def near_matches(eval_norm: Sequence[str], train: TrainSide | Sequence[str], threshold: float,
                 k: int, skip: set[int] | None = None,
                 candidates: dict[int, list[int]] | None = None
                 ) -> dict[int, tuple[int, float]]:
    """Eval index -> (best train index, score) for scores at or above ``threshold``.

    ``candidates``, if given, receives each searched row's lexical candidates (best first):
    the paraphrase search adds them to its own.
    """
    side = train if isinstance(train, TrainSide) else TrainSide(train)
    skip = skip or set()
    todo = [i for i in range(len(eval_norm)) if i not in skip]
    if not todo or not side.norm:
        return {}
    found: dict[int, tuple[int, float]] = {}
    for i, cands in zip(todo, side.lexical.candidates([eval_norm[i] for i in todo], k)):
        if candidates is not None:
            candidates[i] = [int(j) for j in cands]
        best, best_score = -1, 0.0
        for j in cands:
            score = lexical_similarity(eval_norm[i], side.norm[j])
            if score > best_score:
                best, best_score = int(j), score
        if best >= 0 and best_score >= threshold:
            found[i] = (best, best_score)
    return found


def containment_settings(cfg: OverlapConfig) -> containment.Settings:
    """The containment search's parameters from the config."""
    c = cfg.containment
    return containment.Settings(c.ngram, c.min_words, c.short_words, c.max_train_rows,
                                c.min_coverage)


def find_overlaps(evals: Corpus, train: Corpus, cfg: OverlapConfig, *,
                  side: TrainSide | None = None, paraphrases: ParaphraseFactory | None = None,
                  progress: Progress | None = None, window: int | None = None) -> dict[int, Hit]:
    """The strongest overlap of each eval row with the train rows (rows without one are absent).

    ``side`` is the train corpus' index when a cache supplied it. ``window`` is the paraphrase
    window in words (default: from ``evals``; a caller searching a part of the eval set passes
    the whole set's, so the windows, and the cached train vectors, stay the same).
    """
    progress = progress or Progress(enabled=False)
    side = side or TrainSide(train.norm, train.texts)
    search = None       # made first: it may start loading its models while the rest runs
    units: Windows | None = None
    if paraphrases is not None and cfg.semantic.enabled and len(train):
        if cfg.windows.enabled:
            units = windows_of(train, window or window_length(evals.norm),
                               cfg.windows.min_ratio, cfg.windows.max_windows)
        search = paraphrases(units.corpus if units is not None else train)
    hits: dict[int, Hit] = {}
    if cfg.exact.enabled:
        for i, j in exact_matches(evals.norm, side).items():
            hits[i] = Hit("exact-duplicate", j, 1.0, evidence=Evidence("exact", 1.0))
    near_dup = cfg.near_duplicate
    lexical: dict[int, list[int]] = {}     # the near-duplicate index's candidates, reused
    if near_dup.enabled and len(train):
        with progress.stage("near-duplicate search", total=len(evals)) as stage:
            for i, (j, score) in near_matches(evals.norm, side, near_dup.threshold,
                                              near_dup.candidates, skip=set(hits),
                                              candidates=lexical).items():
                hits[i] = Hit("near-duplicate", j, score, evidence=Evidence(
                    "near-duplicate", round(score, 4), threshold=near_dup.threshold))
            stage.advance(len(evals))
    if cfg.containment.enabled and len(train):
        todo = [i for i in range(len(evals)) if i not in hits]
        with progress.stage("containment search", total=len(train)) as stage:
            found = side.contained(evals.norm, containment_settings(cfg), todo, stage.advance)
        for i, c in found.items():
            hits[i] = Hit("contained", c.train, round(c.coverage, 4), c.start, c.end,
                          round(c.coverage, 4))
    if search is not None:
        hits.update(_paraphrases(search, units, evals, set(hits), lexical))
    return hits


def _paraphrases(search: ParaphraseQuery, units: Windows | None, evals: Corpus, skip: set[int],
                 lexical: dict[int, list[int]]) -> dict[int, Hit]:
    """Paraphrase hits, on train rows or (``units``) on their windows, named by their words."""
    if units is not None:     # the lexical candidates are rows: those kept whole, as units
        lexical = {i: [units.unit_of[j] for j in js if j in units.unit_of]
                   for i, js in lexical.items()}
    hits: dict[int, Hit] = {}
    for i, (u, score, evidence) in search(evals.texts, skip, lexical).items():
        words = units.words[u] if units is not None else None
        row = units.row[u] if units is not None else u
        start, end = words if words is not None else (None, None)
        hits[i] = Hit("paraphrase", row, score, start, end, evidence=evidence)
    return hits


class MemoryFinder:
    """The plain hit finder: searches every eval row against the whole train corpus."""

    def __init__(self, paraphrases: ParaphraseFactory | None = None,
                 progress: Progress | None = None) -> None:
        """Search paraphrases with ``paraphrases`` (none without it)."""
        self.paraphrases = paraphrases
        self.progress = progress

    def find(self, evals: Corpus, train: Corpus, cfg: OverlapConfig) -> Found:
        """Every eval row's strongest hit."""
        return Found(find_overlaps(evals, train, cfg, paraphrases=self.paraphrases,
                                   progress=self.progress), within_eval(evals.norm, cfg))


def self_matches(norm: Sequence[str], threshold: float | None, k: int,
                 only: Sequence[int] | None = None) -> dict[int, tuple[int, float]]:
    """Row index -> (earlier row index, score) for rows repeating an earlier row of the same set.

    With ``threshold`` None only rows with the same normalized text count. ``only`` limits the
    near-duplicate search to those rows (identical rows are always found: that is cheap).
    """
    first: dict[str, int] = {}
    found: dict[int, tuple[int, float]] = {}
    for i, text in enumerate(norm):
        if not text:
            continue  # no letter or digit: see exact_matches
        j = first.setdefault(text, i)
        if j != i:
            found[i] = (j, 1.0)
    if threshold is None:
        return found
    todo = [i for i in (range(len(norm)) if only is None else only) if i not in found]
    if not todo:
        return found
    index = LexicalIndex(norm)
    for i, cands in zip(todo, index.candidates([norm[i] for i in todo], k + 1)):
        best, best_score = -1, 0.0
        for j in cands:
            if j >= i:
                continue
            score = lexical_similarity(norm[i], norm[j])
            if score > best_score:
                best, best_score = int(j), score
        if best >= 0 and best_score >= threshold:
            found[i] = (best, best_score)
    return found


def within_threshold(cfg: OverlapConfig) -> float | None:
    """The near-duplicate threshold inside the eval set; None when only identical rows count."""
    near_dup = cfg.near_duplicate
    return near_dup.threshold if near_dup.enabled and near_dup.within_eval else None


def within_eval(norm: Sequence[str], cfg: OverlapConfig) -> dict[int, tuple[int, float]]:
    """Eval rows repeating an earlier eval row, as the config asks (see :func:`self_matches`)."""
    threshold = within_threshold(cfg)
    if (threshold is None and not cfg.exact.enabled) or len(norm) < 2:
        return {}
    return self_matches(norm, threshold, cfg.near_duplicate.candidates)


@dataclass(frozen=True)
class Overlaps:
    """The overlap search's result, the overlap audit's input: both corpora, the finder's
    answer, and each train dataset's text fields (dataset name -> fields), so that a span can
    name the field it falls in."""

    evals: Corpus
    train: Corpus
    found: Found
    text_fields: Mapping[str, Sequence[str]] = field(default_factory=dict)


def search_overlaps(evals: Corpus, train: Corpus, cfg: OverlapConfig,
                    finder: HitFinder | None = None,
                    text_fields: Mapping[str, Sequence[str]] | None = None) -> Overlaps:
    """Search ``evals`` against ``train``: ``finder`` (default: a plain :class:`MemoryFinder`)
    finds each eval row's strongest hit."""
    found = (finder or MemoryFinder()).find(evals, train, cfg)
    return Overlaps(evals, train, found, text_fields or {})
