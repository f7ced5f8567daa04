"""Rules: the kinds of finding an audit reports, and what every part of the tool knows of one.

A :class:`Rule` holds its default severity, how the verdict names its findings (:class:`Noun`),
the label of a pair finding, and how ``--base`` judges whether a finding of it is new
(:data:`NewWhen`). Every audit module lists its own in ``RULES``; the registry in
:mod:`eval_firewall.audits` gathers them into the catalogue (:func:`catalogue`) that the config
check, the engine, the attribution, the reports and SARIF read. Nothing registers itself on
import, and nothing else keeps a table keyed by rule id.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"

    @property
    def rank(self) -> int:
        """3 for errors, 2 for warnings, 1 for notices."""
        return {"error": 3, "warning": 2, "notice": 1}[self.value]

    def at_least(self, level: "Severity") -> bool:
        """Whether this severity is ``level`` or above."""
        return self.rank >= level.rank


@dataclass(frozen=True, slots=True)
class Noun:
    """How the verdict names findings of a rule: singular, plural and, for a rule that is one
    flavour of a wider kind (the leaks), the flavour's singular and plural."""

    one: str
    many: str
    flavour: tuple[str, str] | None = None
    # A finding that stands for ``count`` rows ("10,000 more unreadable rows") counts as many.
    by_count: bool = False


OTHER = Noun("other finding", "other findings")      # a rule with no noun, or an unknown one


@dataclass(frozen=True, slots=True)
class Pair:
    """How the Markdown table names a finding that pairs an eval row with another row: the
    problem ("Paraphrase of a train row"), shown with both texts side by side instead of the
    message, and the word after its similarity ("similar"; None: no similarity is shown, an
    exact copy being 100% by definition)."""

    problem: str
    measure: str | None = "similar"

# How ``--base`` judges whether a finding of a rule is new (docs/incremental.md, "What counts
# as new"); :mod:`eval_firewall.incremental.attribution` dispatches on it:
# - "row": its row, or its match, is new or changed (by content);
# - "rerun": the base run had no such finding (same rule and fingerprint, counted: a third copy
#   of one the base had twice is new), or its row is new; "problem": the same, a finding being
#   the same only with the same message (the same row, broken the same way);
# - "count": the base had none in the dataset, or the count grew; "count-in-file": the same,
#   in the same file; "count-per-row": the same, for the same row, or the row is new;
# - "share": a count of rows whose share of the dataset grew (a finding per row: by its row);
# - "rate": the base had none, or the rate rose by more than the margin;
# - "auc": the base had none, or the AUC fell by more than the margin of the result's sample
#   size (:attr:`eval_firewall.findings.AuditResult.sample_size`);
# - "generator": the generator was not shared at the base, or made more rows now;
# - "absent": the base had no finding of this rule, nor of ``compare_with``'s.
NewWhen = Literal["row", "rerun", "problem", "count", "count-in-file", "count-per-row", "share", "rate",
                  "auc", "generator", "absent"]


@dataclass(frozen=True, slots=True)
class Rule:
    """A kind of finding: its id, the audit that reports it, its default severity, a summary.

    ``severity_key``: a config key (dotted, e.g. ``invalid_rows``) whose value replaces the
    default severity; the ``severity:`` mapping still overrides both. ``noun``: how the
    verdict names its findings (None: "other finding"). ``pair``: for a finding that pairs an
    eval row with another row, how the Markdown table names it (:class:`Pair`).
    ``new_when``: how ``--base`` judges a finding new (:data:`NewWhen`); ``compare_with``: the
    other rules whose finding at the base stands for this one's ("absent").
    """

    id: str
    audit: str
    default_severity: Severity
    summary: str
    severity_key: str | None = None
    noun: Noun | None = None
    pair: Pair | None = None
    new_when: NewWhen = "rerun"
    compare_with: tuple[str, ...] = ()


# Reported by the engine itself (waivers.py), not by an audit.
STALE_WAIVER = Rule("stale-waiver", "waivers", Severity.WARNING,
                    "A waiver has expired or matches no finding: renew or remove it.",
                    noun=Noun("stale waiver", "stale waivers"))
# Reported by the policy gate (eval_firewall.policy): a pull request loosens the gate's policy
# (config or waiver file) and no one else has approved it yet.
POLICY_CHANGE = Rule("policy-change", "policy", Severity.ERROR,
                     "A change of the config or waiver file loosens the gate: it is not applied "
                     "until someone else approves the pull request's head commit.",
                     noun=Noun("pending change to the gate's policy",
                               "pending changes to the gate's policy"))
ENGINE_RULES: tuple[Rule, ...] = (STALE_WAIVER, POLICY_CHANGE)


def catalogue(rules: Iterable[Rule]) -> dict[str, Rule]:
    """The rules by id; an id listed twice is a programming error."""
    out: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in out:
            raise ValueError(f"rule '{rule.id}' is listed twice ({out[rule.id].audit}, "
                             f"{rule.audit})")
        out[rule.id] = rule
    return out
