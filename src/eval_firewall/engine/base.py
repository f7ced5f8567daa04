"""``--base`` attribution: whether each finding is new, by re-running audits on the base
revision's inputs or by their rows' content, as each audit's registry entry says."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..audits import Audit, invariance
from ..config import Config
from ..datasets import LoadedDataset
from ..embeddings import Models
from ..errors import UserError
from ..findings import AuditResult, Finding
from ..incremental.changes import Changes, auc_margin, inputs_at, mark_new, scratch_dir
from ..inputs import Input, Inputs, Predicted
from ..inputs.annotations import load_annotations
from ..inputs.predictions import read_predictions
from ..records import Annotation, Variant
from ..rules import Rule
from .prepare import _distribution_embedder, _eval_dataset, _inputs, _variants
from .severity import _run


def _mark_new(config: Config, audits: Sequence[Audit], results: list[AuditResult],
              rules: Mapping[str, Rule], changes: Changes, loaded: dict[str, LoadedDataset],
              models: Models, predicted: Predicted | str | None) -> list[AuditResult]:
    """Set each finding's ``new`` flag by comparing with the base revision, as each audit's
    registry entry says (``attribution``, ``expensive``).

    Audits attributed by "rerun" are re-run on the base (its datasets, annotation sheets and
    predictions file); an expensive one only when it fails now and some dataset changed.
    Those attributed by "rows" are never re-run: their findings are judged by their rows'
    content (see :func:`mark_new`).
    """
    by_name = {a.name: a for a in audits}
    base_results: dict[str, AuditResult | None] = {}
    margin = 0.0
    base_predicted: Predicted | None = None
    with scratch_dir() as scratch:
        for result in results:
            audit = by_name.get(result.audit)
            if audit is None or audit.attribution == "rows" or result.skipped is not None:
                continue
            if audit.attribution == "figure" and result.findings:
                rows = next((s.value for s in result.stats
                             if s.label.startswith("rows compared")), 0)
                margin = auc_margin(int(rows))
            if audit.expensive and not result.findings:
                continue
            if audit.expensive and not any(changes.changed_files.values()):
                # nothing changed: the base figure is this one
                base_results[audit.name] = AuditResult(audit.name, "", list(result.findings))
                continue
            inputs = _base_inputs(config, audit, changes, Path(scratch), models, predicted)
            if inputs is not None and "predictions" in audit.inputs:
                base_predicted = (inputs.predicted if isinstance(inputs.predicted, Predicted)
                                  else None)
            base_results[audit.name] = (None if inputs is None
                                        else _run(config, audit, inputs, rules))
    found = {audit: (list(r.findings) if r is not None else None) for audit, r in base_results.items()}
    by_rows = {a.name for a in audits if a.attribution == "rows"}
    out = []
    for result in results:
        findings = mark_new(list(result.findings), changes, loaded, found, margin, by_rows=by_rows)
        if result.audit == invariance.AUDIT and isinstance(predicted, Predicted) and \
                found.get(invariance.AUDIT) is not None and base_predicted is not None:
            missing_at_base = {(v.id, v.sha) for v in _missing(base_predicted)}
            findings = _split_missing(findings, predicted, missing_at_base)
        out.append(replace(result, findings=findings))
    return out


def _base_inputs(config: Config, audit: Audit, changes: Changes, scratch: Path, models: Models,
                 predicted: Predicted | str | None) -> Inputs | None:
    """The audit's inputs as they were at the base; None if one could not be had there (so
    the audit could not run at the base)."""
    datasets = list(changes.base_datasets.values())
    prepared: dict[Input, Any] = {}
    if "annotations" in audit.inputs:
        prepared["annotations"] = _base_annotations(config, changes, scratch)
        if prepared["annotations"] is None:
            return None
    if "predictions" in audit.inputs:
        if not isinstance(predicted, Predicted):
            return None
        prepared["predictions"] = _base_predicted(config, changes, scratch, predicted)
        if prepared["predictions"] is None:
            return None
    if "embedder" in audit.inputs:        # as at the head: the figures are comparable
        prepared["embedder"] = _distribution_embedder(config, models)
    if "overlap" in audit.inputs:
        return None
    return _inputs(datasets, prepared)


def _base_annotations(config: Config, changes: Changes, scratch: Path) -> list[Annotation] | None:
    """The annotation sheets at the base; None if there are none (or unreadable ones)."""
    cfg = config.audits.disagreement
    names = [d.name for d in changes.base_datasets.values() if d.role == "eval"]
    try:
        return load_annotations(inputs_at(config, changes.base_sha, list(cfg.annotations),
                                          scratch / "annotations"), names)
    except UserError:            # no sheets (or unreadable ones) at the base
        return None


def _missing(predicted: Predicted) -> list[Variant]:
    return [v for v in predicted.variants if v.id not in predicted.predictions]


def _base_predicted(config: Config, changes: Changes, scratch: Path, predicted: Predicted
                    ) -> Predicted | None:
    """The base rows' prompts, with the base's predictions file (or, when this run used the
    prediction command, this run's predictions); None if they could not be had at the base."""
    cfg = config.audits.invariance
    try:
        rows = _eval_dataset(config, changes.base_datasets, "invariance").rows
    except UserError:
        return None
    variants = _variants(config, rows)
    found, source = predicted.predictions, predicted.source
    if cfg.predictions and source == cfg.predictions:
        at_base = inputs_at(config, changes.base_sha, [cfg.predictions], scratch / "predictions")
        try:
            found = read_predictions(at_base.root / cfg.predictions, cfg.predictions)
        except UserError:        # no (or an unreadable) predictions file at the base
            return None
    return Predicted(variants, found, source)


def _split_missing(findings: list[Finding], predicted: Predicted,
                   missing_at_base: set[tuple[str, str]]) -> list[Finding]:
    """Split ``missing-prediction`` in two: prompts already without a prediction at the base
    (existing), and the others (rows this change added or edited, or predictions it removed),
    so the new finding points at this change's own row."""
    old = [f for f in findings if f.rule == "missing-prediction"]
    if not old:
        return findings
    variants, source = predicted.variants, predicted.source
    missing = _missing(predicted)
    before = [v for v in missing if (v.id, v.sha) in missing_at_base]
    now = [v for v in missing if (v.id, v.sha) not in missing_at_base]
    split = []
    for group, which, new in ((before, " (missing at the base too)", False),
                              (now, " for rows this change added or edited", True)):
        if group:
            f = invariance.missing_prediction(group, len(variants), source, which)
            split.append(replace(f, severity=old[0].severity, new=new))
    return [f for f in findings if f.rule != "missing-prediction"] + split

