"""Disagreement: do humans, answering blind, agree with the eval labels?

Annotators' answers (from :mod:`eval_firewall.inputs.annotations` sheets) are joined to the eval rows
by row id and compared with the label by a :class:`~eval_firewall.text.matching.Matcher`. The
disagreement rate is over compared answers (one per annotator and row), with a 95% Wilson
interval; kappa is reported for categorical labels (Cohen's for one annotator against the
labels, Fleiss' for several annotators plus the labels as one more rater).

Rules:
- ``disagreement-rate``: the rate exceeds ``max_disagreement`` (error).
- ``disagreement-sample-too-small``: the rate is within the limit but the interval still
  includes it, or no answer could be compared (warning).
- ``label-disagreement``: a row whose label an annotator contradicts, with both answers (notice).
- ``annotation-unknown-row``, ``annotation-duplicate``, ``annotation-stale``,
  ``annotation-no-label`` (warning) and ``annotation-empty`` (notice): sheet rows that could
  not be compared, each at its sheet file and line.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..config import DisagreementConfig
from ..findings import AuditResult, Finding, Severity, Stat, content_hash
from ..inputs import Inputs
from ..records import Annotation, row_sha
from ..rows import Row
from ..rules import Noun, Rule
from ..text.matching import Matcher, make_matcher
from .stats import RateGate, answers_needed, fleiss_kappa, rate_gate

AUDIT = "disagreement"

RULES = (
    Rule("disagreement-rate", AUDIT, Severity.ERROR, "Blind human answers disagree with the "
         "eval labels more often than audits.disagreement.max_disagreement allows.",
         noun=Noun("human disagreement rate over the limit",
                   "human disagreement rates over the limit"), new_when="rate"),
    Rule("disagreement-sample-too-small", AUDIT, Severity.WARNING, "Too few annotated answers "
         "for the 95% interval of the disagreement rate to exclude the threshold.",
         noun=Noun("annotation sample too small to decide",
                   "annotation samples too small to decide"),
         new_when="absent", compare_with=("disagreement-rate",)),
    Rule("label-disagreement", AUDIT, Severity.NOTICE,
         "An annotator's blind answer differs from the row's label.",
         noun=Noun("label an annotator disagrees with", "labels annotators disagree with"),
         new_when="count-per-row"),
    Rule("annotation-unknown-row", AUDIT, Severity.WARNING, "An annotation sheet row names a "
         "row id that is not in the dataset.",
         noun=Noun("annotation of an unknown row", "annotations of unknown rows")),
    Rule("annotation-duplicate", AUDIT, Severity.WARNING,
         "An annotator has the same row id twice.",
         noun=Noun("duplicate annotation", "duplicate annotations")),
    Rule("annotation-empty", AUDIT, Severity.NOTICE,
         "Annotation sheet rows with an empty answer (skipped).",
         noun=Noun("empty annotation", "empty annotations"), new_when="count-in-file"),
    Rule("annotation-stale", AUDIT, Severity.WARNING, "The dataset row changed since the sheet "
         "was sampled, so the answer is not compared.",
         noun=Noun("stale annotation", "stale annotations")),
    Rule("annotation-no-label", AUDIT, Severity.WARNING,
         "An annotated row has no label to compare with.",
         noun=Noun("annotated row with no label", "annotated rows with no label")),
)


@dataclass(frozen=True, slots=True)
class Compared:
    annotation: Annotation
    row: Row
    agrees: bool


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def audit(inputs: Inputs, cfg: DisagreementConfig) -> AuditResult:
    """The eval rows' labels against the configured sheets' blind answers."""
    if not cfg.annotations or inputs.annotations is None:
        return AuditResult(AUDIT, "Disagreement", skipped="no annotation sheets configured "
                           "(audits.disagreement.annotations)")
    return check(inputs.rows("eval"), inputs.annotations, cfg)


def check(rows: Sequence[Row], annotations: Sequence[Annotation], cfg: DisagreementConfig
          ) -> AuditResult:
    """Compare every annotation with its row's label; ``rows`` are the eval rows."""
    by_id: dict[tuple[str, str], Row] = {(r.dataset, r.row_id): r for r in rows}
    labels_of: dict[str, list[str | None]] = defaultdict(list)
    for r in rows:
        labels_of[r.dataset].append(r.label)
    matchers: dict[str, Matcher] = {
        name: make_matcher(cfg.matcher, labels, tolerance=cfg.tolerance,
                           fuzzy_threshold=cfg.fuzzy_threshold)
        for name, labels in labels_of.items()}

    findings, compared, skipped, empty_by_sheet = _compare(annotations, by_id, matchers)
    for path, empties in empty_by_sheet.items():
        first = empties[0]
        findings.append(Finding(
            AUDIT, "annotation-empty", Severity.NOTICE,
            f"{len(empties)} empty answer{'' if len(empties) == 1 else 's'} skipped (first at "
            f"line {first.line}, row '{first.row_id}')", path=path, line=first.line,
            row_id=first.row_id, count=len(empties)))

    findings.extend(_row_findings(compared, matchers))
    stats, verdict, gate = _gate(compared, cfg, skipped, matchers)
    findings.extend(gate)
    return AuditResult(AUDIT, "Disagreement", findings, stats, verdict)


def _compare(annotations: Sequence[Annotation], by_id: dict[tuple[str, str], Row],
             matchers: dict[str, Matcher]
             ) -> tuple[list[Finding], list[Compared], Counter[str], dict[str, list[Annotation]]]:
    """Each annotation compared with its row's label, or skipped: (findings about the sheets'
    lines, the comparisons, how many were skipped and why, the empty answers by sheet)."""
    findings: list[Finding] = []
    compared: list[Compared] = []
    skipped: Counter[str] = Counter()
    empty_by_sheet: dict[str, list[Annotation]] = defaultdict(list)
    seen: dict[tuple[str, str | None, str], Annotation] = {}
    for a in annotations:
        row = by_id.get((a.dataset, a.row_id)) if a.dataset else None
        if row is None:
            skipped["unknown"] += 1
            findings.append(_sheet_finding(
                "annotation-unknown-row", Severity.WARNING,
                f"row id '{a.row_id}' is not in dataset '{a.dataset}' (removed or renamed "
                "since sampling?); not compared", a))
            continue
        key = (a.annotator, a.dataset, a.row_id)
        if key in seen:
            skipped["duplicate"] += 1
            findings.append(_sheet_finding(
                "annotation-duplicate", Severity.WARNING,
                f"annotator '{a.annotator}' has row '{a.row_id}' twice (first at "
                f"{seen[key].location}); this one is ignored", a))
            continue
        seen[key] = a
        if a.answer is None:
            skipped["empty"] += 1
            empty_by_sheet[a.path].append(a)
            continue
        if a.sha is not None and a.sha != row_sha(row):
            skipped["stale"] += 1
            findings.append(_sheet_finding(
                "annotation-stale", Severity.WARNING,
                f"row '{a.row_id}' changed since the sheet was sampled (content hash {a.sha}, "
                f"now {row_sha(row)} at {row.location}); not compared: re-annotate it", a))
            continue
        if row.label is None:
            skipped["no label"] += 1
            findings.append(_sheet_finding(
                "annotation-no-label", Severity.WARNING,
                f"row '{a.row_id}' has no label to compare with ({row.location})", a))
            continue
        compared.append(Compared(a, row, matchers[row.dataset].same(a.answer, row.label)))
    return findings, compared, skipped, empty_by_sheet


def _sheet_finding(rule: str, severity: Severity, message: str, a: Annotation) -> Finding:
    # Fingerprinted by the sheet line's content (row, annotator, answer), not its row id alone:
    # a waiver of one line covers no other line about the same row.
    digest = content_hash("\x1f".join((a.row_id, a.annotator, a.answer or "")))
    return Finding(AUDIT, rule, severity, message, dataset=a.dataset, path=a.path, line=a.line,
                   row_id=a.row_id, digest=digest)


def _row_findings(compared: list[Compared], matchers: dict[str, Matcher]) -> list[Finding]:
    per_row: dict[tuple[str, str], list[Compared]] = defaultdict(list)
    for c in compared:
        per_row[(c.row.dataset, c.row.row_id)].append(c)
    out = []
    for items in per_row.values():
        wrong = [c for c in items if not c.agrees]
        if not wrong:
            continue
        row = items[0].row
        m = matchers[row.dataset]
        answers = "; ".join(f"{c.annotation.annotator} answered '{m.show(c.annotation.answer)}' "
                            f"({c.annotation.location})" for c in wrong)
        out.append(Finding.for_row(
            AUDIT, "label-disagreement", Severity.NOTICE,
            f"{len(wrong)} of {len(items)} annotator{'' if len(items) == 1 else 's'} "
            f"disagree{'s' if len(items) == 1 else ''} with the label '{m.show(row.label)}': "
            f"{answers}", row, count=len(wrong)))
    return out


def _gate(compared: list[Compared], cfg: DisagreementConfig, skipped: Counter[str],
          matchers: dict[str, Matcher]) -> tuple[list[Stat], str, list[Finding]]:
    n = len(compared)
    d = sum(1 for c in compared if not c.agrees)
    limit = cfg.max_disagreement
    annotators = sorted({c.annotation.annotator for c in compared})
    used = sorted({c.row.dataset for c in compared})
    stats = [Stat("matcher", ", ".join(f"{matchers[name].kind} ({name})" for name in used)
                  or "—"),
             Stat("annotated rows", len({(c.row.dataset, c.row.row_id) for c in compared})),
             Stat("annotators", len(annotators)),
             Stat("answers compared", n),
             Stat("disagreeing answers", d)]
    findings: list[Finding] = []
    if n == 0:
        stats += _skip_stats(skipped)
        verdict = "No annotation could be compared with a label."
        findings.append(Finding(AUDIT, "disagreement-sample-too-small", Severity.WARNING,
                                "no annotated answer could be compared with a label, so the "
                                "labels' agreement with humans is unknown"))
        return stats, verdict, findings
    gate = rate_gate(d, n, limit)
    rate, low, high = gate.rate, gate.low, gate.high
    stats += [Stat("disagreement rate", _pct(rate)),
              Stat("95% Wilson interval", f"{_pct(low)} – {_pct(high)}"),
              Stat("max_disagreement", _pct(limit))]
    for name in annotators:
        mine = [c for c in compared if c.annotation.annotator == name]
        wrong = sum(1 for c in mine if not c.agrees)
        stats.append(Stat(f"annotator {name}: disagreement",
                          f"{_pct(wrong / len(mine))} ({wrong} of {len(mine)})"))
    stats += _kappa_stats(compared, annotators, matchers)
    stats += _skip_stats(skipped)

    verdict, findings = _verdict(gate, d, n, limit)
    return stats, verdict, findings


def _verdict(gate: RateGate, d: int, n: int, limit: float) -> tuple[str, list[Finding]]:
    """The verdict on ``d`` disagreeing answers of ``n``, and the finding when it is not a pass."""
    rate, low, high = gate.rate, gate.low, gate.high
    findings: list[Finding] = []
    summary = f"{_pct(rate)} of {n} blind answers disagree with the labels (95% CI " \
              f"{_pct(low)}–{_pct(high)})"
    if gate.exceeded:
        verdict = f"Fail: {summary}, above the {_pct(limit)} limit."
        tail = "" if low > limit else "; the interval also includes the limit"
        findings.append(Finding(AUDIT, "disagreement-rate", Severity.ERROR,
                                f"disagreement rate {_pct(rate)} ({d} of {n} answers, 95% CI "
                                f"{_pct(low)}–{_pct(high)}) exceeds max_disagreement "
                                f"{_pct(limit)}{tail}", count=d, score=round(rate, 4)))
    elif gate.undecided:
        needed = answers_needed(rate, limit)
        more = (f"about {needed} answers at this rate would show it is below the limit"
                if needed else "no sample size at this rate would show it is below the limit")
        verdict = (f"Within the limit, but not shown: {summary}; the interval includes the "
                   f"{_pct(limit)} limit.")
        findings.append(Finding(AUDIT, "disagreement-sample-too-small", Severity.WARNING,
                                f"disagreement rate {_pct(rate)} ({d} of {n} answers) is within "
                                f"max_disagreement {_pct(limit)}, but its 95% interval "
                                f"{_pct(low)}–{_pct(high)} includes the limit: {more}",
                                count=n))
    else:
        verdict = f"Pass: {summary}, below the {_pct(limit)} limit."
    return verdict, findings


def _skip_stats(skipped: Counter[str]) -> list[Stat]:
    return [Stat(f"skipped: {why}", skipped[why])
            for why in ("empty", "unknown", "duplicate", "stale", "no label") if skipped[why]]


def _kappa(value: float) -> str:
    return "undefined (a single category)" if math.isnan(value) else f"{value:.3f}"


def _kappa_stats(compared: list[Compared], annotators: list[str],
                 matchers: dict[str, Matcher]) -> list[Stat]:
    if not all(m.categorical for m in matchers.values()):
        return [Stat("kappa", "not computed: the labels are not categories")]
    from sklearn.metrics import cohen_kappa_score  # slow to import: only here

    def key(c: Compared, text: str | None) -> str:
        return str(matchers[c.row.dataset].key(text))
    out = []
    for name in annotators:
        mine = [c for c in compared if c.annotation.annotator == name]
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")   # one category: kappa is undefined (nan)
            value = cohen_kappa_score([key(c, c.row.label) for c in mine],
                                      [key(c, c.annotation.answer) for c in mine])
        out.append(Stat(f"Cohen's kappa ({name} vs labels)", _kappa(float(value))))
    if len(annotators) > 1:
        per_row: dict[tuple[str, str], dict[str, Compared]] = defaultdict(dict)
        for c in compared:
            per_row[(c.row.dataset, c.row.row_id)][c.annotation.annotator] = c
        full = [items for items in per_row.values() if len(items) == len(annotators)]
        if full:
            data = [[key(items[a], items[a].annotation.answer) for a in annotators]
                    + [key(items[annotators[0]], items[annotators[0]].row.label)]
                    for items in full]
            value = fleiss_kappa(data)
            out.append(Stat(f"Fleiss' kappa ({len(annotators)} annotators + labels, "
                            f"{len(full)} rows)", _kappa(float(value))))
    return out
