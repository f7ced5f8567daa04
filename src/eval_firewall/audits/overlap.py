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
itself is not here: the engine runs it before the audit (:mod:`eval_firewall.overlap.finders`)
and passes its result as the ``overlap`` input; this module turns that result into findings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..config import OverlapConfig
from ..findings import AuditResult, Evidence, Finding, Match, Severity, Span, Stat
from ..inputs import Inputs
from ..overlap.finders import Hit, Overlaps
from ..overlap.score import explain
from ..rows import Row
from ..rules import Noun, Pair, Rule
from ..text.normalize import disguise
from ..text.spans import char_span
from .leak import INPUT, INPUT_LABEL, leak_kind

AUDIT = "overlap"
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


def _percent(score: float) -> str:
    """A similarity as a whole percentage, rounded down: only identical texts show 100%."""
    return f"{math.floor(score * 100 + 1e-9)}%"


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
    start, end = char_span(match.text, hit.start, hit.end)
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


def audit(inputs: Inputs, cfg: OverlapConfig) -> AuditResult:
    """Overlap findings from the overlap search the engine ran before (the ``overlap`` input,
    :func:`eval_firewall.overlap.finders.search_overlaps`)."""
    if inputs.overlap is None:
        raise ValueError("the overlap audit needs the 'overlap' input")
    searched = inputs.overlap
    evals, train, found = searched.evals, searched.train, searched.found
    hits = found.hits
    findings = []
    for i in sorted(hits):
        match = train.rows[hits[i].train]
        findings.append(_finding(hits[i], evals.rows[i], match,
                                 searched.text_fields.get(match.dataset),
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
    return AuditResult(AUDIT, "Overlap", findings, _stats(searched, cfg, findings, within))


def _stats(searched: Overlaps, cfg: OverlapConfig, findings: list[Finding], within: int
           ) -> list[Stat]:
    """The audit's figures, then the search's own."""
    rules = [h.rule for h in searched.found.hits.values()]
    stats = [Stat("eval rows checked", len(searched.evals)),
             Stat("train rows indexed", len(searched.train)),
             Stat("exact duplicates of train rows", rules.count("exact-duplicate")),
             Stat("near-duplicates of train rows", rules.count("near-duplicate"))]
    if cfg.containment.enabled:
        stats.append(Stat("quoted inside train rows", rules.count("contained")))
    stats.append(Stat("overlaps with the eval row's label in the train row",
                      sum(1 for f in findings if f.leak == INPUT_LABEL)))
    if cfg.semantic.enabled:
        stats.append(Stat("paraphrases of train rows", rules.count("paraphrase")))
    stats.append(Stat("duplicates inside the eval set", within))
    stats.extend(searched.found.stats)
    return stats
