"""A toy audit, registered by tests/integration/test_registry.py: what adding an audit takes.

It flags eval rows whose text shouts ``TOY``. One module (this one: ``RULES``, ``audit``) plus
one registration line (``register_audit(toy_audit.ENTRY)``) is all it needs: its rule says how
the verdict names its findings and how ``--base`` judges them, its entry that its figures open.
"""

from __future__ import annotations

from eval_firewall.audits import Audit
from eval_firewall.findings import AuditResult, Finding, Severity, Stat
from eval_firewall.inputs import Inputs
from eval_firewall.rules import Noun, Rule

AUDIT = "toy"

RULES = (Rule("toy-row", AUDIT, Severity.NOTICE, "An eval row shouts TOY.",
              noun=Noun("eval row that shouts TOY", "eval rows that shout TOY"), new_when="row"),)


def audit(inputs: Inputs, cfg: None) -> AuditResult:
    """Every eval row whose text contains ``TOY``."""
    rows = [r for r in inputs.rows("eval") if "TOY" in r.text]
    findings = [Finding.for_row(AUDIT, "toy-row", Severity.NOTICE, "the row shouts TOY", r)
                for r in rows]
    return AuditResult(AUDIT, "Toy", findings, [Stat("eval rows shouting TOY", len(rows))])


ENTRY = Audit(AUDIT, audit, RULES, section=None, figures_open=True)
