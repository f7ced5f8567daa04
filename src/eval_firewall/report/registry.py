"""The rules and audits a report is rendered with: those of the registry that ran, else the default registry's.

A report made by :func:`eval_firewall.engine.run_audits` carries its registry's rules and the
audits whose figures open (:class:`~eval_firewall.findings.Report`); one read back from JSON,
or built by hand, is rendered with the default registry's (:data:`eval_firewall.audits.AUDITS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from ..findings import Report
from ..rules import OTHER, Noun, Rule


@lru_cache(maxsize=1)
def _default() -> tuple[Mapping[str, Rule], frozenset[str]]:
    from ..audits import AUDITS, RULES  # here: the audits load numpy

    return RULES, frozenset(a.name for a in AUDITS if a.figures_open)


def rules_of(report: Report) -> Mapping[str, Rule]:
    """Every rule the report's findings can name, by id."""
    return report.rules if report.rules is not None else _default()[0]


def open_figures(report: Report) -> frozenset[str]:
    """The audits whose figures the Markdown report shows open (in a local run)."""
    return report.open_figures if report.open_figures is not None else _default()[1]


def noun(rules: Mapping[str, Rule], rule: str) -> Noun:
    """How the verdict names findings of ``rule``: "other finding" for a rule with no noun,
    or one the registry does not know."""
    known = rules.get(rule)
    return known.noun if known is not None and known.noun is not None else OTHER
