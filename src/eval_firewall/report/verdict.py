"""The one-line verdict that opens every report: "is my pull request OK?".

Used by the Markdown report (comment, job summary, check summary) and as the check run's
title. It is built only from counts and the rules' nouns (:attr:`eval_firewall.rules.Rule.noun`, of
the registry that ran), never from dataset text or rule names a report file carries, so it is
safe as Markdown and as plain text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from ..findings import Finding, Report
from ..rules import Rule
from .registry import noun, rules_of


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _weight(f: Finding, rules: Mapping[str, Rule]) -> int:
    """How many things a finding counts as in the verdict: its ``count`` for a rule counted
    by rows, else one."""
    return f.count or 1 if noun(rules, f.rule).by_count else 1


def describe(findings: list[Finding], rules: Mapping[str, Rule]) -> str:
    """Findings grouped by their rules' nouns, the most severe and most frequent first: for
    example "2 leaked eval rows (1 exact copy, 1 paraphrase) and 1 eval label written by a
    model"."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        k = noun(rules, f.rule)
        groups.setdefault((k.one, k.many), []).append(f)
    ordered = sorted(groups.items(),
                     key=lambda kv: (-max(f.severity.rank for f in kv[1]), -len(kv[1])))
    parts = []
    for (one, many), group in ordered:
        text = _count(sum(_weight(f, rules) for f in group), one, many)
        flavours = Counter(fl for f in group if (fl := noun(rules, f.rule).flavour) is not None)
        if len(flavours) == 1:
            (fl, n), = flavours.items()
            text += f" ({fl[0] if n == 1 else fl[1]})"
        elif flavours:
            text += " (" + ", ".join(_count(n, *fl) for fl, n in sorted(
                flavours.items(), key=lambda kv: (-kv[1], kv[0]))) + ")"
        parts.append(text)
    return _join(parts)


def verdict_line(report: Report) -> str:
    """One sentence (or a few short ones): ✅/❌, what the change adds, what is not blocking.

    With a base revision it speaks of "this pull request"; without one, of the eval set.
    """
    pr = report.base is not None
    rules = rules_of(report)
    failing, rest = report.failing(), report.not_blocking
    new = [f for f in rest if f.new]              # new, not waived, below the fail level
    existing = [f for f in rest if not f.new]     # already at the base, not waived, not failing
    sentences = []
    if report.status == "fail":
        new_failing = [f for f in failing if f.new]
        old_failing = [f for f in failing if not f.new]
        head = "❌ "
        if new_failing:
            head += (f"This pull request adds {describe(new_failing, rules)}." if pr
                     else f"Found {describe(new_failing, rules)}.")
        if old_failing:
            head += (" " if new_failing else "") + (
                f"{describe(old_failing, rules)} already present "
                f"{'fail' if len(old_failing) != 1 else 'fails'} the check (fail-on-existing).")
        sentences.append(head)
        if new:
            sentences.append(f"Not blocking: {describe(new, rules)} below the fail level "
                             f"({report.fail_on}).")
        if existing:
            sentences.append(f"{_count(len(existing), 'finding', 'findings')} already "
                             f"present {'is' if len(existing) == 1 else 'are'} not blocking.")
    else:
        if not new:
            sentences.append("✅ No new problems." if pr else "✅ No problems found.")
        elif report.fail_on == "never":
            sentences.append(f"✅ Passes (fail-on: never), with {describe(new, rules)}"
                             f"{' added by this pull request' if pr else ''}.")
        else:
            sentences.append(f"✅ No blocking problems: {describe(new, rules)}"
                             f"{' added by this pull request' if pr else ''}, below the fail "
                             f"level ({report.fail_on}).")
        if existing:
            sentences.append(f"{_count(len(existing), 'finding', 'findings')} already "
                             "present (not blocking).")
    if report.waived_here:
        sentences.append(f"This pull request waives "
                         f"{_count(len(report.waived_here), 'finding', 'findings')}.")
    return " ".join(sentences)
