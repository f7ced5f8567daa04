"""Every rule the audits can report, with its description: used by SARIF, docs and the config check."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    audit: str
    summary: str


_RULES = [
    Rule("invalid-row", "schema", "A row could not be read as configured (bad JSON, a missing "
         "or mistyped field)."),
    Rule("duplicate-id", "schema", "Two rows of a dataset share a row id."),
    Rule("exact-duplicate", "overlap", "An eval row has the same normalized text as a train row."),
    Rule("near-duplicate", "overlap", "An eval row is lexically close to a train row."),
    Rule("eval-duplicate", "overlap", "Two eval rows are the same question."),
    Rule("model-label", "provenance", "An eval label was written by a model, not a human."),
    Rule("unverified-label", "provenance", "An eval label was not verified by a human."),
    Rule("generated-eval-row", "provenance", "An eval row was produced by a generator model."),
    Rule("shared-generator", "provenance", "The same generator produced rows in train and eval."),
    Rule("machine-generated-card", "provenance",
         "An eval dataset card declares machine-generated annotations."),
    Rule("missing-provenance", "provenance", "Eval rows record no provenance."),
    Rule("stale-waiver", "waivers", "A waiver has expired or matches no finding: renew or "
         "remove it."),
]

RULES: dict[str, Rule] = {r.id: r for r in _RULES}


def known_rules() -> dict[str, Rule]:
    """Every rule, including those the audit modules register when they are imported."""
    import importlib
    import pkgutil

    from . import audits
    for module in pkgutil.iter_modules(audits.__path__):
        importlib.import_module(f"{audits.__name__}.{module.name}")
    return RULES


def register(*rules: Rule) -> None:
    """Add the rules of an audit module (called at import time by that module)."""
    for rule in rules:
        RULES[rule.id] = rule
