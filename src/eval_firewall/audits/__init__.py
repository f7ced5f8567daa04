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

from ..findings import AuditResult, Finding
from ..inputs import Input, Inputs
from ..rules import ENGINE_RULES, Rule, catalogue
from . import disagreement, distribution, invariance, overlap, provenance, schema

# Whether ``--base`` re-runs an audit on the base's inputs (docs/incremental.md: What counts
# as new); how each finding is then judged new is its rule's (``Rule.new_when``):
# - "rows": never re-run: its findings are judged by their rows' content (and their matches');
# - "rerun": re-run on the base's inputs, its findings compared with the base's.
Attribution = Literal["rows", "rerun"]


@dataclass(frozen=True, slots=True)
class Audit:
    """One registry entry: what the engine needs to know to run an audit.

    - ``section``: its config section, dotted (``audits.provenance``); its ``enabled`` key
      turns it off. None: no section, it always runs.
    - ``inputs``: what the engine's input layer must prepare (:data:`eval_firewall.inputs.Input`).
    - ``expensive``: under ``--base``, re-run at the base only when it has findings now and a
      dataset changed (otherwise the base's findings are taken to be this run's).
    - ``attribution``: whether ``--base`` re-runs it (see :data:`Attribution`).
    - ``requires``: another audit that must be enabled for this one to run.
    - ``figures_open``: the Markdown report shows its figures open in a local run (the human
      and model audits, whose figures are their result).

    Its rules (``RULES``) carry the rest: each one's noun in the verdict, pair label and how
    its findings are judged new (:class:`~eval_firewall.rules.Rule`).
    - ``stage``: the progress line shown while it runs, if any.
    - ``refine_new``: under ``--base``, once its findings are judged, the audit's own say given
      the head's and the base's inputs (the invariance audit splits ``missing-prediction``).
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
    refine_new: Callable[[Sequence[Finding], Inputs, Inputs], list[Finding]] | None = None


AUDITS: tuple[Audit, ...] = (
    Audit(schema.AUDIT, schema.audit, schema.RULES, section=None),
    Audit(overlap.AUDIT, overlap.audit, overlap.RULES, section="audits.overlap",
          inputs=frozenset({"datasets", "overlap"}), attribution="rows"),
    Audit(distribution.AUDIT, distribution.audit, distribution.RULES,
          section="audits.distribution", inputs=frozenset({"datasets", "embedder"}),
          expensive=True, requires=overlap.AUDIT,
          stage="same-generator check"),
    Audit(provenance.AUDIT, provenance.audit, provenance.RULES, section="audits.provenance"),
    Audit(disagreement.AUDIT, disagreement.audit, disagreement.RULES,
          section="audits.disagreement", inputs=frozenset({"datasets", "annotations"}),
          figures_open=True),
    Audit(invariance.AUDIT, invariance.audit, invariance.RULES, section="audits.invariance",
          inputs=frozenset({"datasets", "predictions"}), figures_open=True,
          refine_new=invariance.split_missing),
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
