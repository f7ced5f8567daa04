"""``--base`` attribution: which findings a change introduced, with audits re-run at the base.

Each audit's registry entry says whether it is re-run on the base revision's inputs
(``attribution``, ``expensive``) or its findings are judged by their rows' content alone; each
rule says how its findings are then judged (:mod:`.judge`). The engine hands over what
re-running needs as a :class:`BaseSide`, so nothing here imports the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..audits import Audit
from ..config import MAX_CONFIG_BYTES, Config
from ..datasets import LoadedDataset
from ..errors import UserError
from ..findings import AuditResult, Finding
from ..inputs import Input, Inputs, Predicted
from ..inputs.annotations import load_annotations
from ..inputs.predictions import read_predictions
from ..policy import waivers
from ..records import Annotation, Variant
from ..rules import Rule
from .changes import Changes, inputs_at, scratch_dir
from .judge import mark_new


@dataclass(frozen=True, slots=True)
class BaseSide:
    """What attribution takes from the engine: the config, what changed since the base, the
    head's datasets and prepared inputs (:data:`~eval_firewall.inputs.Input` -> value), how to
    run an audit (at its configured severity) and how to make the invariance prompts of some
    datasets (the same way at the base as at the head; a :class:`UserError` when they have no
    eval set to perturb)."""

    config: Config
    changes: Changes
    head: dict[str, LoadedDataset]
    prepared: Mapping[Input, Any]
    run: Callable[[Audit, Inputs], AuditResult]
    variants: Callable[[Mapping[str, LoadedDataset]], list[Variant]]


@dataclass(frozen=True, slots=True)
class _AtBase:
    """One audit at the base: its findings (None: it could not run there, e.g. its input did
    not exist yet) and the inputs it ran on (None when it was not run again)."""

    findings: list[Finding] | None
    inputs: Inputs | None = None


def attribute(results: Sequence[AuditResult], audits: Sequence[Audit],
              rules: Mapping[str, Rule], side: BaseSide) -> list[AuditResult]:
    """``results`` with each finding's ``new`` flag set by comparing with the base revision.

    Audits attributed by "rerun" are re-run on the base (its datasets, annotation sheets and
    predictions file); an expensive one only when it fails now and some dataset changed.
    Those attributed by "rows" are never re-run: their findings are judged by their rows'
    content. How each finding is then judged is its rule's (:func:`.judge.mark_new`).
    """
    by_name = {a.name: a for a in audits}
    with scratch_dir() as scratch:
        at_base = {r.audit: _run_at_base(by_name[r.audit], r, side, Path(scratch))
                   for r in results if _reruns(by_name.get(r.audit), r)}
    found = {name: b.findings for name, b in at_base.items()}
    sizes = {r.audit: r.sample_size for r in results if r.sample_size is not None}
    out = []
    for result in results:
        findings = mark_new(list(result.findings), side.changes, side.head, found, rules, sizes)
        audit, base = by_name.get(result.audit), at_base.get(result.audit)
        if audit is not None and audit.refine_new is not None and base is not None \
                and base.inputs is not None:
            findings = audit.refine_new(findings, _head_inputs(side), base.inputs)
        out.append(replace(result, findings=findings))
    return out


def _head_inputs(side: BaseSide) -> Inputs:
    """The head's inputs, as the engine prepared them."""
    return Inputs(list(side.head.values()), annotations=side.prepared.get("annotations"),
                  predicted=side.prepared.get("predictions"),
                  embedder=side.prepared.get("embedder"))


def _reruns(audit: Audit | None, result: AuditResult) -> bool:
    """Whether the audit is run again at the base: it ran now, is not judged by its rows
    alone, and (an expensive one) has findings to compare."""
    return (audit is not None and audit.attribution != "rows" and result.skipped is None
            and not (audit.expensive and not result.findings))


def _run_at_base(audit: Audit, result: AuditResult, side: BaseSide, scratch: Path) -> _AtBase:
    """The audit's findings at the base: re-run on the base's inputs."""
    if audit.expensive and not any(side.changes.changed_files.values()):
        return _AtBase(list(result.findings))    # nothing changed: the base figure is this one
    inputs = base_inputs(audit, side, scratch)
    if inputs is None:
        return _AtBase(None)
    return _AtBase(list(side.run(audit, inputs).findings), inputs)


def base_inputs(audit: Audit, side: BaseSide, scratch: Path) -> Inputs | None:
    """The audit's inputs as they were at the base; None if one could not be had there (so
    the audit could not run at the base)."""
    if "overlap" in audit.inputs:
        return None
    annotations: list[Annotation] | None = None
    predicted: Predicted | None = None
    if "annotations" in audit.inputs:
        annotations = _base_annotations(side.config, side.changes, scratch)
        if annotations is None:
            return None
    if "predictions" in audit.inputs:
        predicted = _base_predicted(side, scratch)
        if predicted is None:
            return None
    # The embedder as at the head, so the figures are comparable.
    embedder = side.prepared.get("embedder") if "embedder" in audit.inputs else None
    return Inputs(list(side.changes.base_datasets.values()), annotations=annotations,
                  predicted=predicted, embedder=embedder)


def _base_annotations(config: Config, changes: Changes, scratch: Path) -> list[Annotation] | None:
    """The annotation sheets at the base; None if there are none (or unreadable ones)."""
    cfg = config.audits.disagreement
    names = [d.name for d in changes.base_datasets.values() if d.role == "eval"]
    try:
        return load_annotations(inputs_at(config, changes.base_sha, list(cfg.annotations),
                                          scratch / "annotations"), names)
    except UserError:            # no sheets (or unreadable ones) at the base
        return None


def _base_predicted(side: BaseSide, scratch: Path) -> Predicted | None:
    """The base rows' prompts, with the base's predictions file (or, when this run used the
    prediction command, this run's predictions); None if they could not be had at the base."""
    predicted = side.prepared.get("predictions")
    if not isinstance(predicted, Predicted):   # none configured, or not allowed now
        return None
    cfg = side.config.audits.invariance
    try:
        variants = side.variants(side.changes.base_datasets)
    except UserError:
        return None
    found, source = predicted.predictions, predicted.source
    if cfg.predictions and source == cfg.predictions:
        at_base = inputs_at(side.config, side.changes.base_sha, [cfg.predictions],
                            scratch / "predictions")
        try:
            found = read_predictions(at_base.root / cfg.predictions, cfg.predictions)
        except UserError:        # no (or an unreadable) predictions file at the base
            return None
    return Predicted(variants, found, source)


def waivers_at_base(config: Config, changes: Changes, names: Sequence[str]) -> set[str]:
    """The fingerprints waived at the base by the files ``names`` (the waiver file and the
    config, relative to the config's root), to tell the waivers this change adds."""
    names = [n for n in names if not Path(n).is_absolute()]
    found: set[str] = set()
    with scratch_dir() as scratch:
        at_base = inputs_at(config, changes.base_sha, list(names), Path(scratch))
        for name in names:
            path = at_base.root / name
            if path.is_file():
                with open(path, "rb") as fh:      # the base's file: compared, never enforced
                    raw = fh.read(MAX_CONFIG_BYTES + 1)[:MAX_CONFIG_BYTES]
                found |= waivers.written_fingerprints(raw.decode("utf-8", "replace"))
    return found
