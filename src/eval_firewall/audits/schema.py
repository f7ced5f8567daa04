"""Rows that could not be read as configured, and row ids that are not unique."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..findings import AuditResult, Finding, Severity, Stat, content_hash
from ..inputs import Inputs
from ..rows import EMPTY_TEXT, row_ids
from ..rules import Noun, Rule

if TYPE_CHECKING:
    from ..datasets import LoadedDataset

AUDIT = "schema"

RULES = (
    Rule("invalid-row", AUDIT, Severity.ERROR, "A row could not be read as configured (bad "
         "JSON, a missing or mistyped field).", severity_key="invalid_rows",
         noun=Noun("unreadable row", "unreadable rows", by_count=True), new_when="problem"),
    Rule("empty-text", AUDIT, Severity.ERROR, "A row's text field is empty or only "
         "whitespace (read fine, but there is nothing to audit).", severity_key="invalid_rows",
         noun=Noun("row with empty text", "rows with empty text", by_count=True)),
    Rule("duplicate-id", AUDIT, Severity.ERROR, "Two rows of a dataset share a row id.",
         noun=Noun("duplicate row id", "duplicate row ids")),
)


def audit(inputs: Inputs, cfg: None = None) -> AuditResult:
    """Every dataset's unreadable rows and repeated row ids (the schema has no config)."""
    return check(inputs.datasets)


def check(datasets: Sequence[LoadedDataset], invalid_rows: str = "error") -> AuditResult:
    """The schema findings of ``datasets``; ``invalid_rows`` is the unreadable rows' severity."""
    findings: list[Finding] = []
    for d in datasets:
        for p in d.problems:
            field = f"field '{p.field}': " if p.field else ""
            # The digest of the row's bytes: a waiver of one broken row covers no other.
            digest = p.digest or content_hash(f"{p.path}:{p.line}:{p.message}")
            rule = "empty-text" if p.message == EMPTY_TEXT else "invalid-row"
            findings.append(Finding(AUDIT, rule, Severity(invalid_rows),
                                    f"{field}{p.message}", dataset=d.name, path=p.path,
                                    line=p.line, digest=digest,
                                    count=p.count if p.count > 1 else None))
        ids = row_ids(d.rows) if d.config.id else []
        if len(set(ids)) < len(ids):       # the common case, all unique, is one set away
            first: dict[str, int] = {}
            for i, row in enumerate(d.rows):
                j = first.setdefault(row.row_id, i)
                if j != i:
                    findings.append(Finding.for_row(
                        AUDIT, "duplicate-id", Severity.ERROR,
                        f"row id '{row.row_id}' is also used at {d.rows[j].location}", row))
    rows = sum(len(d.rows) for d in datasets)
    problems = sum(p.count for d in datasets for p in d.problems)
    return AuditResult(AUDIT, "Schema", findings,
                       [Stat("rows read", rows), Stat("rows that could not be read", problems)])
