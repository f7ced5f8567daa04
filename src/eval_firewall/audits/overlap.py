"""Overlap: eval rows that are copies of train rows, exact, near or paraphrased.

Rules:
- ``exact-duplicate``: the normalized text of an eval row equals a train row's.
- ``near-duplicate``: an eval row lexically close to a train row (edits, reordered or
  substituted words, changed numbers): candidates from :class:`LexicalIndex`, scored with
  rapidfuzz.
- ``paraphrase``: an eval row that says the same as a train row in other words (see
  :mod:`.semantic`).
- ``eval-duplicate``: two rows of the eval set that are the same question (exact or near).

Each eval row gets at most one overlap finding against train: the strongest kind. The search
(:func:`find_overlaps`) is separate from the findings (:func:`audit`) so that the engine can
reuse earlier results for rows that did not change, and search only the new ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

from rapidfuzz import fuzz

from ..config import OverlapConfig
from ..findings import AuditResult, Finding, Match, Severity, Stat
from ..progress import Progress
from ..rows import Row
from ..search.lexical import LexicalIndex
from .paraphrase_score import explain

AUDIT = "overlap"
STRENGTH = {"exact-duplicate": 0, "near-duplicate": 1, "paraphrase": 2}


@dataclass(frozen=True, slots=True)
class Hit:
    """The strongest overlap of one eval row: which rule, which train row, how close."""

    rule: str
    train: int
    score: float

    def beats(self, other: "Hit | None") -> bool:
        if other is None:
            return True
        return (STRENGTH[self.rule], -self.score) < (STRENGTH[other.rule], -other.score)


# Paraphrase search over one train set: (eval texts, eval indices to skip, lexical
# candidates {eval index: train indices}) -> {eval index: (train index, cosine)}; a factory
# builds one from the train texts.
ParaphraseSearch = Callable[..., dict[int, tuple[int, float]]]
ParaphraseFactory = Callable[[Sequence[str]], ParaphraseSearch]


def lexical_similarity(a: str, b: str) -> float:
    """Similarity of two normalized texts in 0..1: edits, or the same words reordered."""
    return max(fuzz.ratio(a, b), fuzz.token_sort_ratio(a, b)) / 100.0


def _percent(score: float) -> str:
    """A similarity as a whole percentage, rounded down: only identical texts show 100%."""
    return f"{math.floor(score * 100 + 1e-9)}%"


class TrainSide:
    """What queries against the train rows need, built once (and cacheable by the engine)."""

    def __init__(self, norm: Sequence[str], texts: Sequence[str] | None = None,
                 lexical: LexicalIndex | None = None) -> None:
        self.norm = norm
        self.texts = texts if texts is not None else norm
        if lexical is not None:
            self.__dict__["lexical"] = lexical

    @cached_property
    def exact(self) -> dict[str, int]:
        first: dict[str, int] = {}
        for j, text in enumerate(self.norm):
            first.setdefault(text, j)
        return first

    @cached_property
    def lexical(self) -> LexicalIndex:
        return LexicalIndex(self.norm)


def _side(train: "TrainSide | Sequence[str]") -> TrainSide:
    return train if isinstance(train, TrainSide) else TrainSide(train)


def exact_matches(eval_norm: Sequence[str], train: TrainSide | Sequence[str]) -> dict[int, int]:
    """eval index -> index of the first train row with the same normalized text.

    Rows with no letter or digit (emoji, punctuation) normalize to "" and match nothing:
    otherwise every such row would be a 'copy' of every other.
    """
    train = _side(train)
    return {i: train.exact[t] for i, t in enumerate(eval_norm) if t and t in train.exact}


def near_matches(eval_norm: Sequence[str], train: TrainSide | Sequence[str], threshold: float,
                 k: int, skip: set[int] | None = None,
                 candidates: dict[int, list[int]] | None = None
                 ) -> dict[int, tuple[int, float]]:
    """eval index -> (best train index, score) for scores at or above ``threshold``.

    ``candidates``, if given, receives each searched row's lexical candidates (best first):
    the paraphrase search adds them to its own.
    """
    train = _side(train)
    skip = skip or set()
    todo = [i for i in range(len(eval_norm)) if i not in skip]
    if not todo or not train.norm:
        return {}
    found: dict[int, tuple[int, float]] = {}
    for i, cands in zip(todo, train.lexical.candidates([eval_norm[i] for i in todo], k)):
        if candidates is not None:
            candidates[i] = [int(j) for j in cands]
        best, best_score = -1, 0.0
        for j in cands:
            score = lexical_similarity(eval_norm[i], train.norm[j])
            if score > best_score:
                best, best_score = int(j), score
        if best >= 0 and best_score >= threshold:
            found[i] = (best, best_score)
    return found


def find_overlaps(eval_norm: Sequence[str], eval_text: Sequence[str], train: TrainSide,
                  cfg: OverlapConfig, *, paraphrases: ParaphraseFactory | None = None,
                  progress: Progress | None = None) -> dict[int, Hit]:
    """The strongest overlap of each eval row with the train rows (rows without one are absent)."""
    progress = progress or Progress(enabled=False)
    hits: dict[int, Hit] = {}
    if cfg.exact.enabled:
        for i, j in exact_matches(eval_norm, train).items():
            hits[i] = Hit("exact-duplicate", j, 1.0)
    near_dup = cfg.near_duplicate
    lexical: dict[int, list[int]] = {}     # the near-duplicate index's candidates, reused
    if near_dup.enabled and train.norm:
        with progress.stage("near-duplicate search", total=len(eval_norm)) as stage:
            for i, (j, score) in near_matches(eval_norm, train, near_dup.threshold,
                                              near_dup.candidates, skip=set(hits),
                                              candidates=lexical).items():
                hits[i] = Hit("near-duplicate", j, score)
            stage.advance(len(eval_norm))
    if paraphrases is not None and cfg.semantic.enabled and train.norm:
        search = paraphrases(train.texts)
        for i, (j, score) in search(eval_text, set(hits), lexical).items():
            hits[i] = Hit("paraphrase", j, score)
    return hits


def self_matches(norm: Sequence[str], threshold: float | None, k: int
                 ) -> dict[int, tuple[int, float]]:
    """Row index -> (earlier row index, score) for rows repeating an earlier row of the same set.

    With ``threshold`` None only rows with the same normalized text count.
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
    index = LexicalIndex(norm)
    for i, cands in enumerate(index.candidates(norm, k + 1)):
        if i in found:
            continue
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


def _finding(hit: Hit, row: Row, match: Row) -> Finding:
    if hit.rule == "exact-duplicate":
        message = f"same text as train row {match.location}"
    elif hit.rule == "near-duplicate":
        message = f"{_percent(hit.score)} similar to train row {match.location}"
    else:
        message = (f"{explain(row.text, match.text, hit.score)}; train row {match.location} "
                   "(score: cosine similarity of their embeddings)")
    return Finding.for_row(AUDIT, hit.rule, Severity.ERROR, message, row,
                           score=round(hit.score, 4), match=Match.of(match))


def audit(evals: Sequence[Row], train: Sequence[Row], cfg: OverlapConfig, *,
          eval_norm: Sequence[str] | None = None, train_side: TrainSide | None = None,
          hits: dict[int, Hit] | None = None, paraphrases: ParaphraseFactory | None = None,
          progress: Progress | None = None) -> AuditResult:
    """Overlap findings for ``evals`` against ``train``.

    ``hits`` (from :func:`find_overlaps`, possibly partly reused from a cache) skips the
    search; otherwise it runs here. ``eval_norm``/``train_side`` avoid normalizing twice.
    """
    from ..normalize import normalize

    progress = progress or Progress(enabled=False)
    if eval_norm is None:
        eval_norm = [normalize(r.text) for r in evals]
    if hits is None:
        if train_side is None:
            with progress.stage("normalize train", total=len(train)) as stage:
                train_side = TrainSide([normalize(r.text) for r in train],
                                       [r.text for r in train])
                stage.advance(len(train))
        hits = find_overlaps(eval_norm, [r.text for r in evals], train_side, cfg,
                             paraphrases=paraphrases, progress=progress)
    findings = [_finding(hits[i], evals[i], train[hits[i].train]) for i in sorted(hits)]

    within = 0
    near_dup = cfg.near_duplicate
    near_within = near_dup.enabled and near_dup.within_eval
    if (near_within or cfg.exact.enabled) and len(evals) > 1:
        threshold = near_dup.threshold if near_within else None
        for i, (j, score) in sorted(self_matches(eval_norm, threshold,
                                                 near_dup.candidates).items()):
            within += 1
            kind = ("same text as" if eval_norm[i] == eval_norm[j]
                    else f"{_percent(score)} similar to")
            findings.append(Finding.for_row(
                AUDIT, "eval-duplicate", Severity.WARNING,
                f"{kind} eval row {evals[j].location}", evals[i], score=round(score, 4),
                match=Match.of(evals[j])))

    rules = [h.rule for h in hits.values()]
    stats = [Stat("eval rows checked", len(evals)), Stat("train rows indexed", len(train)),
             Stat("exact duplicates of train rows", rules.count("exact-duplicate")),
             Stat("near-duplicates of train rows", rules.count("near-duplicate"))]
    if cfg.semantic.enabled:
        stats.append(Stat("paraphrases of train rows", rules.count("paraphrase")))
    stats.append(Stat("duplicates inside the eval set", within))
    return AuditResult(AUDIT, "Overlap", findings, stats)
