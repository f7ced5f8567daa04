"""Overlap: eval rows that are copies of train rows, exact, near or paraphrased.

Rules:
- ``exact-duplicate``: the normalized text of an eval row equals a train row's.
- ``near-duplicate``: an eval row lexically close to a train row (edits, reordered or
  substituted words, changed numbers): candidates from :class:`LexicalIndex`, scored with
  rapidfuzz.
- ``contained``: an eval row quoted inside a train row of any length (shared word n-grams, see
  :mod:`..search.containment`); the finding names the span of the train row's text.
- ``paraphrase``: an eval row that says the same as a train row in other words (see
  :mod:`.semantic`); train rows much longer than the eval rows are searched in windows
  (:mod:`..search.windows`), and the finding names the window.
- ``eval-duplicate``: two rows of the eval set that are the same question (exact or near).
- ``disguised-text``: an eval row holding invisible characters or look-alike letters of
  another script (a notice: every matcher sees the text without them, :mod:`..normalize`).

Each eval row gets at most one overlap finding against train: the strongest kind. Each says
whether the train row holds the eval row's label near the item too (:mod:`.leak`). The search
is a :class:`HitFinder` passed to :func:`audit`: the plain :class:`MemoryFinder` here, or the
cached one of :mod:`eval_firewall.overlap.cached`, which reuses earlier results for rows that did
not change and searches only the new ones. Both sides come in as a :class:`~.corpus.Corpus`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from rapidfuzz import fuzz

from ..config import OverlapConfig
from ..findings import AuditResult, Evidence, Finding, Match, Severity, Span, Stat
from ..overlap.corpus import Corpus
from ..overlap.score import explain
from ..progress import Progress
from ..rows import Row
from ..rules import Noun, Pair, Rule
from ..search import containment
from ..search.lexical import LexicalIndex
from ..search.windows import Windows, window_length, windows_of
from ..text.normalize import disguise
from .leak import INPUT, INPUT_LABEL, leak_kind

AUDIT = "overlap"
STRENGTH = {"exact-duplicate": 0, "near-duplicate": 1, "contained": 2, "paraphrase": 3}
STAGE = {"exact-duplicate": "exact", "near-duplicate": "near-duplicate", "contained": "contained",
         "paraphrase": "paraphrase"}   # rule -> the Evidence stage that decides it

def _leak(one: str, many: str) -> Noun:
    """A leak's noun in the verdict: "leaked eval rows", with its flavour ("2 paraphrases")."""
    return Noun("leaked eval row", "leaked eval rows", (one, many))


RULES = (
    Rule("exact-duplicate", AUDIT, Severity.ERROR,
         "An eval row has the same normalized text as a train row.",
         noun=_leak("exact copy", "exact copies"), pair=Pair("Exact copy of a train row", None),
         new_when="row"),
    Rule("near-duplicate", AUDIT, Severity.ERROR, "An eval row is lexically close to a train row.",
         noun=_leak("near-duplicate", "near-duplicates"), pair=Pair("Near-duplicate of a train row"),
         new_when="row"),
    Rule("contained", AUDIT, Severity.ERROR, "An eval row is quoted inside a longer train row "
         "(shared spans of words cover enough of it; a short row must appear whole).",
         noun=_leak("copy inside a train document", "copies inside train documents"),
         pair=Pair("Quoted inside a train row", "of it shared"), new_when="row"),
    Rule("paraphrase", AUDIT, Severity.ERROR, "An eval row says the same as a train row in other "
         "words (a calibrated score over embedding similarity, numbers and shared words).",
         noun=_leak("paraphrase", "paraphrases"), pair=Pair("Paraphrase of a train row"),
         new_when="row"),
    Rule("eval-duplicate", AUDIT, Severity.WARNING, "Two eval rows are the same question.",
         noun=Noun("eval row duplicated in the eval set", "eval rows duplicated in the eval set"),
         pair=Pair("Same question as another eval row"), new_when="row"),
    Rule("disguised-text", AUDIT, Severity.NOTICE, "An eval row holds invisible characters or "
         "look-alike letters of another script; overlap was checked without them.",
         noun=Noun("eval row with hidden or look-alike characters",
                   "eval rows with hidden or look-alike characters"), new_when="row"),
)


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


def _percent(score: float) -> str:
    """A similarity as a whole percentage, rounded down: only identical texts show 100%."""
    return f"{math.floor(score * 100 + 1e-9)}%"


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


def field_at(row: Row, offset: int, fields: Sequence[str] | None) -> str | None:
    """The text field of ``row`` that code point ``offset`` of its text falls in (fields are
    joined by a newline); None when that cannot be told (a field holding newlines itself)."""
    if not fields:
        return None
    if len(fields) == 1:
        return fields[0]
    if row.text.count("\n") != len(fields) - 1:
        return None
    return fields[row.text.count("\n", 0, offset)]


def _span(hit: Hit, match: Row, fields: Sequence[str] | None) -> Span | None:
    """Where the hit's words are in the train row's original text."""
    if hit.start is None or hit.end is None:
        return None
    start, end = containment.char_span(match.text, hit.start, hit.end)
    return Span(start, end, field_at(match, start, fields), hit.coverage,
                window=hit.rule == "paraphrase")


LEAK_NOTE = {INPUT: "", INPUT_LABEL: "; with its answer (input+label: the worse leak)"}


def _finding(hit: Hit, row: Row, match: Row, fields: Sequence[str] | None = None,
             label_window: int = 200) -> Finding:
    span = _span(hit, match, fields)
    words = (hit.start, hit.end) if hit.start is not None and hit.end is not None else None
    leak = leak_kind(row, match, words, label_window)
    where = ""
    if span is not None:
        where = f", characters {span.start}-{span.end}" + (
            f" of field '{span.field}'" if span.field else "")
    if hit.rule == "exact-duplicate":
        message = f"same text as train row {match.location}"
    elif hit.rule == "near-duplicate":
        message = f"{_percent(hit.score)} similar to train row {match.location}"
    elif hit.rule == "contained":
        message = (f"quoted inside train row {match.location}{where} (shared spans cover "
                   f"{_percent(hit.coverage or hit.score)} of the eval row)")
    else:
        window = f" (the window{where})" if span is not None else ""
        message = (f"{explain(row.text, match.text, hit.score)}; train row {match.location}"
                   f"{window} (score: cosine similarity of their embeddings)")
    evidence = hit.evidence or Evidence(STAGE[hit.rule], round(hit.score, 4))
    return Finding.for_row(AUDIT, hit.rule, Severity.ERROR, message + LEAK_NOTE[leak], row,
                           score=round(hit.score, 4), match=Match.of(match, span), leak=leak,
                           evidence=evidence)


def audit(evals: Corpus, train: Corpus, cfg: OverlapConfig,
          finder: HitFinder | None = None,
          text_fields: Mapping[str, Sequence[str]] | None = None) -> AuditResult:
    """Overlap findings for ``evals`` against ``train``; ``finder`` (default: a plain
    :class:`MemoryFinder`) finds each eval row's strongest hit. ``text_fields`` (dataset name
    -> its configured text fields) lets a span name the field it falls in."""
    found = (finder or MemoryFinder()).find(evals, train, cfg)
    hits = found.hits
    fields = text_fields or {}
    findings = []
    for i in sorted(hits):
        match = train.rows[hits[i].train]
        findings.append(_finding(hits[i], evals.rows[i], match, fields.get(match.dataset),
                                 cfg.containment.label_window))

    within = 0
    for i, (j, score) in sorted(found.within.items()):
        within += 1
        kind = ("same text as" if evals.norm[i] == evals.norm[j]
                else f"{_percent(score)} similar to")
        findings.append(Finding.for_row(
            AUDIT, "eval-duplicate", Severity.WARNING,
            f"{kind} eval row {evals.rows[j].location}", evals.rows[i],
            score=round(score, 4), match=Match.of(evals.rows[j])))

    for row in evals.rows:
        hidden = disguise(row.text)
        if hidden:
            findings.append(Finding.for_row(
                AUDIT, "disguised-text", Severity.NOTICE,
                f"the text holds {hidden}: overlap was checked without them", row))

    rules = [h.rule for h in hits.values()]
    stats = [Stat("eval rows checked", len(evals)), Stat("train rows indexed", len(train)),
             Stat("exact duplicates of train rows", rules.count("exact-duplicate")),
             Stat("near-duplicates of train rows", rules.count("near-duplicate"))]
    if cfg.containment.enabled:
        stats.append(Stat("quoted inside train rows", rules.count("contained")))
    stats.append(Stat("overlaps with the eval row's label in the train row",
                      sum(1 for f in findings if f.leak == INPUT_LABEL)))
    if cfg.semantic.enabled:
        stats.append(Stat("paraphrases of train rows", rules.count("paraphrase")))
    stats.append(Stat("duplicates inside the eval set", within))
    stats.extend(found.stats)
    return AuditResult(AUDIT, "Overlap", findings, stats)
