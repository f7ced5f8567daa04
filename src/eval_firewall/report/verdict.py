"""The one-line verdict that opens every report: "is my pull request OK?".

Used by the Markdown report (comment, job summary, check summary) and as the check run's
title. It is built only from counts and the fixed phrases below, never from dataset text or
rule names a report file carries, so it is safe as Markdown and as plain text.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..findings import Finding, Report


@dataclass(frozen=True, slots=True)
class Kind:
    """How the verdict names findings of a rule: a noun (singular, plural) and, for rules
    that are one flavour of a wider kind (leaks), the flavour."""

    one: str
    many: str
    flavour: tuple[str, str] | None = None
    # A finding that stands for ``count`` rows ("10,000 more unreadable rows") counts as many.
    by_count: bool = False


_LEAK = ("leaked eval row", "leaked eval rows")

# Every rule of the catalogue (eval_firewall.audits.RULES); unknown rules are "other".
KINDS: dict[str, Kind] = {
    "exact-duplicate": Kind(*_LEAK, ("exact copy", "exact copies")),
    "near-duplicate": Kind(*_LEAK, ("near-duplicate", "near-duplicates")),
    "contained": Kind(*_LEAK, ("copy inside a train document", "copies inside train documents")),
    "paraphrase": Kind(*_LEAK, ("paraphrase", "paraphrases")),
    "invalid-row": Kind("unreadable row", "unreadable rows", by_count=True),
    "empty-text": Kind("row with empty text", "rows with empty text", by_count=True),
    "duplicate-id": Kind("duplicate row id", "duplicate row ids"),
    "disguised-text": Kind("eval row with hidden or look-alike characters",
                           "eval rows with hidden or look-alike characters"),
    "eval-duplicate": Kind("eval row duplicated in the eval set",
                           "eval rows duplicated in the eval set"),
    "model-label": Kind("eval label written by a model", "eval labels written by a model"),
    "unverified-label": Kind("unverified eval label", "unverified eval labels"),
    "generated-eval-row": Kind("eval row made by a generator model",
                               "eval rows made by a generator model"),
    "shared-generator": Kind("generator shared by train and eval",
                             "generators shared by train and eval"),
    "machine-generated-card": Kind("machine-generated dataset card",
                                   "machine-generated dataset cards"),
    "missing-provenance": Kind("gap in provenance", "gaps in provenance"),
    "disagreement-rate": Kind("human disagreement rate over the limit",
                              "human disagreement rates over the limit"),
    "disagreement-sample-too-small": Kind("annotation sample too small to decide",
                                          "annotation samples too small to decide"),
    "label-disagreement": Kind("label an annotator disagrees with",
                               "labels annotators disagree with"),
    "annotation-unknown-row": Kind("annotation of an unknown row",
                                   "annotations of unknown rows"),
    "annotation-duplicate": Kind("duplicate annotation", "duplicate annotations"),
    "annotation-empty": Kind("empty annotation", "empty annotations"),
    "annotation-stale": Kind("stale annotation", "stale annotations"),
    "annotation-no-label": Kind("annotated row with no label", "annotated rows with no label"),
    "same-generator": Kind("eval set indistinguishable from train",
                           "eval sets indistinguishable from train"),
    "invariance-flip-rate": Kind("answer flip rate over the limit",
                                 "answer flip rates over the limit"),
    "answer-flip": Kind("answer that flips under a harmless rewrite",
                        "answers that flip under a harmless rewrite"),
    "missing-prediction": Kind("missing prediction", "missing predictions"),
    "unknown-prediction": Kind("prediction for an unknown prompt",
                               "predictions for unknown prompts"),
    "stale-prediction": Kind("stale prediction", "stale predictions"),
    "stale-waiver": Kind("stale waiver", "stale waivers"),
    "policy-change": Kind("pending change to the gate's policy",
                          "pending changes to the gate's policy"),
}
_OTHER = Kind("other finding", "other findings")


def kind(rule: str) -> Kind:
    """How the verdict names findings of ``rule``; "other finding" for an unknown rule."""
    return KINDS.get(rule, _OTHER)


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _weight(f: Finding) -> int:
    """How many things a finding counts as in the verdict: its ``count`` for a rule counted
    by rows, else one."""
    return f.count or 1 if kind(f.rule).by_count else 1


def describe(findings: list[Finding]) -> str:
    """Findings grouped by kind, the most severe and most frequent kind first: for example
    "2 leaked eval rows (1 exact copy, 1 paraphrase) and 1 eval label written by a model"."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        k = kind(f.rule)
        groups.setdefault((k.one, k.many), []).append(f)
    ordered = sorted(groups.items(),
                     key=lambda kv: (-max(f.severity.rank for f in kv[1]), -len(kv[1])))
    parts = []
    for (one, many), group in ordered:
        text = _count(sum(_weight(f) for f in group), one, many)
        flavours = Counter(fl for f in group if (fl := kind(f.rule).flavour) is not None)
        if len(flavours) == 1:
            (fl, n), = flavours.items()
            text += f" ({fl[0] if n == 1 else fl[1]})"
        elif flavours:
            text += " (" + ", ".join(_count(n, *fl) for fl, n in sorted(
                flavours.items(), key=lambda kv: (-kv[1], kv[0]))) + ")"
        parts.append(text)
    return _join(parts)


@dataclass(frozen=True, slots=True)
class Tally:
    """The findings of a report as the verdict sees them."""

    failing: list[Finding]        # make the check fail (new ones, or all with fail-on-existing)
    new: list[Finding]            # new, not waived, below the fail level
    existing: list[Finding]       # already at the base, not waived, not failing
    waived: list[Finding]
    waived_here: list[Finding]    # waived by a waiver this change adds

    @classmethod
    def of(cls, report: Report) -> "Tally":
        """The report's findings sorted into failing, new, existing and waived."""
        failing = report.failing()
        failing_ids = {id(f) for f in failing}
        rest = [f for f in report.findings if f.waived is None and id(f) not in failing_ids]
        waived = [f for f in report.findings if f.waived is not None]
        return cls(failing=failing, new=[f for f in rest if f.new],
                   existing=[f for f in rest if not f.new], waived=waived,
                   waived_here=[f for f in waived if f.waived is not None and f.waived.new])


def verdict_line(report: Report) -> str:
    """One sentence (or a few short ones): ✅/❌, what the change adds, what is not blocking.

    With a base revision it speaks of "this pull request"; without one, of the eval set.
    """
    t = Tally.of(report)
    pr = report.base is not None
    sentences = []
    if report.status == "fail":
        new_failing = [f for f in t.failing if f.new]
        old_failing = [f for f in t.failing if not f.new]
        head = "❌ "
        if new_failing:
            head += (f"This pull request adds {describe(new_failing)}." if pr
                     else f"Found {describe(new_failing)}.")
        if old_failing:
            head += (" " if new_failing else "") + (
                f"{describe(old_failing)} already present "
                f"{'fail' if len(old_failing) != 1 else 'fails'} the check (fail-on-existing).")
        sentences.append(head)
        if t.new:
            sentences.append(f"Not blocking: {describe(t.new)} below the fail level "
                             f"({report.fail_on}).")
        if t.existing:
            sentences.append(f"{_count(len(t.existing), 'finding', 'findings')} already "
                             f"present {'is' if len(t.existing) == 1 else 'are'} not blocking.")
    else:
        if not t.new:
            sentences.append("✅ No new problems." if pr else "✅ No problems found.")
        elif report.fail_on == "never":
            sentences.append(f"✅ Passes (fail-on: never), with {describe(t.new)}"
                             f"{' added by this pull request' if pr else ''}.")
        else:
            sentences.append(f"✅ No blocking problems: {describe(t.new)}"
                             f"{' added by this pull request' if pr else ''}, below the fail "
                             f"level ({report.fail_on}).")
        if t.existing:
            sentences.append(f"{_count(len(t.existing), 'finding', 'findings')} already "
                             "present (not blocking).")
    if t.waived_here:
        sentences.append(f"This pull request waives "
                         f"{_count(len(t.waived_here), 'finding', 'findings')}.")
    return " ".join(sentences)
