"""Provenance: every eval label human-verified; no generator shared by train and eval.

Rules:
- ``model-label``: an eval row whose label source is not a human one.
- ``unverified-label``: an eval row with a ``verified_by`` field that is empty.
- ``generated-eval-row``: an eval row produced by a generator (unless allowed).
- ``shared-generator``: a generator that produced rows in both train and eval.
- ``machine-generated-card``: an eval dataset card declaring machine-generated annotations.
- ``missing-provenance``: eval rows that say nothing about where they came from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..config import ProvenanceConfig
from ..findings import AuditResult, Finding, Match, Severity, Stat
from ..inputs import Inputs
from ..rows import Row, rows_with_generator
from ..rules import Noun, Rule

if TYPE_CHECKING:
    from ..datasets import LoadedDataset

AUDIT = "provenance"
MACHINE_CARD_VALUES = {"machine-generated"}

RULES = (
    Rule("model-label", AUDIT, Severity.ERROR,
         "An eval label was written by a model, not a human.",
         noun=Noun("eval label written by a model", "eval labels written by a model"),
         new_when="row"),
    Rule("unverified-label", AUDIT, Severity.ERROR, "An eval label was not verified by a human.",
         noun=Noun("unverified eval label", "unverified eval labels"), new_when="row"),
    Rule("generated-eval-row", AUDIT, Severity.ERROR,
         "An eval row was produced by a generator model.",
         noun=Noun("eval row made by a generator model", "eval rows made by a generator model"),
         new_when="row"),
    Rule("shared-generator", AUDIT, Severity.ERROR,
         "The same generator produced rows in train and eval.",
         noun=Noun("generator shared by train and eval", "generators shared by train and eval"),
         new_when="generator"),
    Rule("machine-generated-card", AUDIT, Severity.ERROR,
         "An eval dataset card declares machine-generated annotations.",
         noun=Noun("machine-generated dataset card", "machine-generated dataset cards")),
    Rule("missing-provenance", AUDIT, Severity.WARNING, "Eval rows record no provenance.",
         severity_key="audits.provenance.missing",
         noun=Noun("gap in provenance", "gaps in provenance"), new_when="share"),
)


def _key(value: str) -> str:
    return " ".join(value.casefold().split())


def source_key(value: str) -> str:
    """A label source as matched: case-insensitive, with '-', '_' and spaces alike
    ("Human_Written" is "human-written")."""
    return _key(value.replace("-", " ").replace("_", " "))


def audit(inputs: Inputs, cfg: ProvenanceConfig) -> AuditResult:
    """Provenance findings of every eval dataset, and the generators train and eval share."""
    return check(inputs.datasets, cfg)


def check(datasets: Sequence[LoadedDataset], cfg: ProvenanceConfig) -> AuditResult:
    """The provenance findings of ``datasets`` (train and eval)."""
    human = {source_key(v) for v in cfg.human_label_sources}
    findings: list[Finding] = []
    counts = {"model-labelled": 0, "unverified": 0, "generated": 0, "no provenance": 0}

    for d in datasets:
        if d.role != "eval":
            continue
        missing: list[Row] = []
        for row in d.rows:
            findings.extend(_row_findings(row, d, cfg, human, counts, missing))
        if missing and cfg.missing != "off":
            counts["no provenance"] += len(missing)
            findings.extend(_missing_findings(d, missing, cfg))
        findings.extend(_card_findings(d))

    findings.extend(_shared_generators(datasets))
    stats = [Stat("eval rows with a model label", counts["model-labelled"]),
             Stat("eval rows with an unverified label", counts["unverified"]),
             Stat("eval rows made by a generator", counts["generated"]),
             Stat("eval rows with no provenance", counts["no provenance"]),
             Stat("generators shared by train and eval",
                  sum(1 for f in findings if f.rule == "shared-generator"))]
    return AuditResult(AUDIT, "Provenance", findings, stats)


def _row_findings(row: Row, d: LoadedDataset, cfg: ProvenanceConfig, human: set[str],
                  counts: dict[str, int], missing: list[Row]) -> list[Finding]:
    fields = d.config.provenance
    p = row.provenance
    if fields is None or p.is_empty:
        missing.append(row)
        return []
    out = []
    unverified = bool(fields.verified_by) and not p.verified_by
    if fields.label_source and p.label_source and source_key(p.label_source) not in human:
        counts["model-labelled"] += 1
        also = " and no human verified it" if unverified else ""
        out.append(Finding.for_row(
            AUDIT, "model-label", Severity.ERROR,
            f"label written by '{p.label_source}', not by a human{also}: model-written gold "
            "labels are circular validation (if it is a person, add it to "
            "audits.provenance.human_label_sources)", row))
    elif fields.label_source and not p.label_source:
        counts["unverified"] += 1
        out.append(Finding.for_row(AUDIT, "unverified-label", Severity.ERROR,
                                   "label source is not recorded, so the label cannot be "
                                   "shown to be human-written", row))
    elif unverified:
        counts["unverified"] += 1
        out.append(Finding.for_row(AUDIT, "unverified-label", Severity.ERROR,
                                   "label was not verified by a human (verified_by is empty)",
                                   row))
    if fields.generator and p.generator and not cfg.allow_generated_eval:
        counts["generated"] += 1
        out.append(Finding.for_row(
            AUDIT, "generated-eval-row", Severity.ERROR,
            f"eval row generated by '{p.generator}': synthetic rows belong on the training "
            "side (set audits.provenance.allow_generated_eval to allow human-verified ones)",
            row))
    return out


def _missing_findings(d: LoadedDataset, missing: list[Row], cfg: ProvenanceConfig
                      ) -> list[Finding]:
    severity = Severity(cfg.missing)
    if cfg.missing_per_row:
        return [Finding.for_row(AUDIT, "missing-provenance", severity,
                                "row records no provenance", row) for row in missing]
    first = missing[0]
    why = ("the dataset config maps no provenance fields" if d.config.provenance is None
           else "none of the provenance fields are set")
    return [Finding(AUDIT, "missing-provenance", severity,
                    f"{len(missing)} of {len(d.rows)} eval rows record no provenance ({why}); "
                    f"first at {first.location}",
                    dataset=d.name, path=first.path, line=first.line, count=len(missing))]


def _card_findings(d: LoadedDataset) -> list[Finding]:
    card = d.card
    if card is None:
        return []
    values = {_key(v) for v in card.values("annotations_creators")}
    if not values & MACHINE_CARD_VALUES:
        return []
    return [Finding(AUDIT, "machine-generated-card", Severity.ERROR,
                    "the dataset card declares 'annotations_creators: machine-generated' for "
                    "an eval dataset", dataset=d.name, path=card.path,
                    line=card.key_lines.get("annotations_creators"))]


def _shared_generators(datasets: Sequence[LoadedDataset]) -> list[Finding]:
    seen: dict[str, dict[str, list[Row]]] = defaultdict(lambda: {"train": [], "eval": []})
    for d in datasets:
        for row in rows_with_generator(d.rows):
            if row.provenance.generator:
                seen[_key(row.provenance.generator)][d.role].append(row)
    out = []
    for rows in seen.values():
        if rows["train"] and rows["eval"]:
            first_eval, first_train = rows["eval"][0], rows["train"][0]
            name = first_eval.provenance.generator
            out.append(Finding(
                AUDIT, "shared-generator", Severity.ERROR,
                f"generator '{name}' produced {len(rows['eval'])} eval rows and "
                f"{len(rows['train'])} train rows: the eval set then measures how well a model "
                "imitates that generator", dataset=first_eval.dataset, path=first_eval.path,
                line=first_eval.line, row_id=first_eval.row_id, text=first_eval.text,
                count=len(rows["eval"]),
                match=Match.of(first_train)))
    return out

