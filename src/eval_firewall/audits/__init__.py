"""The audits, and the registry the engine iterates.

Each audit module holds pure functions from rows to findings (none reads files or talks to
git), its ``RULES`` and one ``audit(inputs, cfg) -> AuditResult``. :data:`AUDITS` lists them,
in report order; adding an audit is one new module plus one entry here (or, from outside the
package, :func:`register_audit`, which returns a new registry). What an audit reads beyond the
datasets (annotation sheets, predictions, the overlap search's result) the engine prepares
before it runs, as its entry's ``inputs`` say.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..findings import AuditResult
from ..inputs import Input, Inputs
from ..rules import ENGINE_RULES, Rule, catalogue
from . import disagreement, distribution, invariance, overlap, provenance, schema

# How ``--base`` decides whether a finding is new (docs/incremental.md: What counts as new):
# - "rows": by the content of the finding's row (and its match) alone; never re-run at the base;
# - "rerun": the audit is re-run on the base's inputs and the findings compared;
# - "figure": a dataset-level figure, compared with the base's figure (with a margin).
Attribution = Literal["rows", "rerun", "figure"]


@dataclass(frozen=True, slots=True)
class Audit:
    """One registry entry: what the engine needs to know to run an audit.

    - ``section``: its config section, dotted (``audits.provenance``); its ``enabled`` key
      turns it off. None: no section, it always runs.
    - ``inputs``: what the engine's input layer must prepare (:data:`eval_firewall.inputs.Input`).
    - ``expensive``: under ``--base``, re-run at the base only when it has findings now and a
      dataset changed (otherwise the base's findings are taken to be this run's).
    - ``attribution``: how its findings are judged new (see :data:`Attribution`).
    - ``requires``: another audit that must be enabled for this one to run.
    - ``figures_open``: the Markdown report shows its figures open in a local run (the human
      and model audits, whose figures are their result).
    - ``stage``: the progress line shown while it runs, if any.
    """

    name: str
    run: Callable[[Inputs, Any], AuditResult]
    rules: tuple[Rule, ...]
    section: str | None
    inputs: frozenset[Input] = frozenset({"datasets"})
    expensive: bool = False
    attribution: Attribution = "rerun"
    requires: str | None = None
    figures_open: bool = False
    stage: str | None = None


AUDITS: tuple[Audit, ...] = (
    Audit(schema.AUDIT, schema.audit, schema.RULES, section=None),
    Audit(overlap.AUDIT, overlap.audit, overlap.RULES, section="audits.overlap",
          inputs=frozenset({"datasets", "overlap"}), attribution="rows"),
    Audit(distribution.AUDIT, distribution.audit, distribution.RULES,
          section="audits.distribution", inputs=frozenset({"datasets", "embedder"}),
          expensive=True, attribution="figure", requires=overlap.AUDIT,
          stage="same-generator check"),
    Audit(provenance.AUDIT, provenance.audit, provenance.RULES, section="audits.provenance"),
    Audit(disagreement.AUDIT, disagreement.audit, disagreement.RULES,
          section="audits.disagreement", inputs=frozenset({"datasets", "annotations"}),
          figures_open=True),
    Audit(invariance.AUDIT, invariance.audit, invariance.RULES, section="audits.invariance",
          inputs=frozenset({"datasets", "predictions"}), figures_open=True),
)


def register_audit(audit: Audit, audits: Sequence[Audit] = AUDITS) -> tuple[Audit, ...]:
    """A new registry: ``audits`` and then ``audit`` (whose name and rule ids must be new)."""
    if any(a.name == audit.name for a in audits):
        raise ValueError(f"an audit named '{audit.name}' is already registered")
    registry = (*audits, audit)
    rule_catalogue(registry)        # raises on a rule id used twice
    return registry


def rule_catalogue(audits: Sequence[Audit] = AUDITS) -> dict[str, Rule]:
    """Every rule the audits of ``audits`` (and the engine itself) can report, by id."""
    return catalogue([r for a in audits for r in a.rules] + list(ENGINE_RULES))


RULES: dict[str, Rule] = rule_catalogue()
