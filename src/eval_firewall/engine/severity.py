"""An audit's place in the config: its section, whether it is on, and its findings at their
configured severity.

The one place a finding's severity is decided (:func:`apply_severity`), for the head's run, the
base's re-runs and the waivers' own findings alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..audits import AUDITS, Audit
from ..config import Config
from ..findings import AuditResult
from ..inputs import Inputs
from ..progress import Progress
from ..rules import Rule


def section_of(config: Config, audit: Audit) -> Any:
    """The audit's config section (None when it has none)."""
    value: Any = config
    for part in (audit.section or "").split(".") if audit.section else ():
        value = getattr(value, part)
    return value if audit.section else None


def enabled_in(config: Config, audit: Audit, audits: Sequence[Audit] = AUDITS) -> bool:
    """Whether the config turns the audit on (and the audit it requires, if any)."""
    if not getattr(section_of(config, audit), "enabled", True):
        return False
    required = next((a for a in audits if a.name == audit.requires), None)
    return required is None or enabled_in(config, required, audits)


def apply_severity(config: Config, result: AuditResult, rules: Mapping[str, Rule]
                   ) -> AuditResult:
    """Each finding at its rule's severity (:meth:`Config.severity_for`), the one place it is
    decided; findings of rules turned 'off' are dropped."""
    kept = []
    for finding in result.findings:
        rule = rules.get(finding.rule)
        level = (config.severity_for(rule) if rule is not None
                 else config.severity_of(finding.rule, finding.severity))
        if level is not None:
            kept.append(finding if level == finding.severity else replace(finding, severity=level))
    return replace(result, findings=kept)


def _run(config: Config, audit: Audit, inputs: Inputs, rules: Mapping[str, Rule],
         progress: Progress | None = None) -> AuditResult:
    """One audit on these inputs, its findings at their configured severity."""
    cfg = section_of(config, audit)
    if audit.stage and progress is not None:
        with progress.stage(audit.stage):
            return apply_severity(config, audit.run(inputs, cfg), rules)
    return apply_severity(config, audit.run(inputs, cfg), rules)
