"""Rules: the kinds of finding an audit reports, each with its default severity.

Every audit module lists its own in ``RULES``; the registry in :mod:`eval_firewall.audits`
gathers them into the catalogue (:func:`catalogue`) that the config check, the engine's
severity resolution and the SARIF report read. Nothing registers itself on import.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .findings import Severity


@dataclass(frozen=True, slots=True)
class Rule:
    """A kind of finding: its id, the audit that reports it, its default severity, a summary.

    ``severity_key``: a config key (dotted, e.g. ``invalid_rows``) whose value replaces the
    default severity; the ``severity:`` mapping still overrides both.
    """

    id: str
    audit: str
    default_severity: Severity
    summary: str
    severity_key: str | None = None


# Reported by the engine itself (waivers.py), not by an audit.
STALE_WAIVER = Rule("stale-waiver", "waivers", Severity.WARNING,
                    "A waiver has expired or matches no finding: renew or remove it.")
# Reported by the policy gate (eval_firewall.policy): a pull request loosens the gate's policy
# (config or waiver file) and no one else has approved it yet.
POLICY_CHANGE = Rule("policy-change", "policy", Severity.ERROR,
                     "A change of the config or waiver file loosens the gate: it is not applied "
                     "until someone else approves the pull request's head commit.")
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
