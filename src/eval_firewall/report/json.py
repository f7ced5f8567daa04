"""The JSON report: the findings dataclasses serialized, and read back (for the fork two-step)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ..errors import UserError
from ..findings import (AuditResult, DatasetSummary, Finding, Match, Report, Severity, Stat,
                        Waiver)
from .escape import escape_json

SCHEMA_VERSION = 1


def finding_to_dict(f: Finding) -> dict[str, Any]:
    out = dataclasses.asdict(f)
    out["severity"] = f.severity.value
    out["fingerprint"] = f.fingerprint
    return out


def report_to_dict(report: Report) -> dict[str, Any]:
    findings = report.findings
    failing = {id(f) for f in report.failing()}
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "eval-firewall", "version": report.version},
        "status": report.status,
        "fail_on": report.fail_on,
        "fail_on_existing": report.fail_on_existing,
        "base": report.base,
        "config": report.config_path,
        "summary": {
            "findings": len(findings),
            "new_findings": sum(1 for f in findings if f.new),
            "failing": len(failing),
            **{s.value: sum(1 for f in findings if f.severity is s) for s in Severity},
        },
        "datasets": [dataclasses.asdict(d) for d in report.datasets],
        "audits": [
            {"audit": a.audit, "title": a.title, "verdict": a.verdict, "skipped": a.skipped,
             "counts": a.counts(), "stats": [dataclasses.asdict(s) for s in a.stats]}
            for a in report.audits
        ],
        "findings": [finding_to_dict(f) for f in findings],
    }


def render_json(report: Report) -> str:
    return escape_json(json.dumps(report_to_dict(report), indent=2, ensure_ascii=False)) + "\n"


# --- reading a report back: a strict schema, since the report may come from a fork -----------
#
# Types are exact (no "3" for 3, no 1 for true), unknown keys are refused, severities, roles,
# statuses and fail levels are enums, and every string and list has a bound. Derived fields
# (summary, counts, fingerprint) are checked for shape and otherwise ignored.

MAX_NAME = 200          # dataset names, row ids, a base revision
MAX_PATH = 4096
MAX_MESSAGE = 10_000    # finding messages, verdicts, skip reasons, waiver reasons
MAX_ROW_TEXT = 1_000_000
MAX_FILES = 100_000     # files of one dataset
MAX_DATASETS = 1_000
MAX_AUDITS = 64
MAX_STATS = 500
MAX_FINDINGS = 1_000_000

_Strict = ConfigDict(strict=True, extra="forbid", frozen=True)


def _text(max_length: int, min_length: int = 0):
    return Annotated[str, Field(min_length=min_length, max_length=max_length)]


# Names the code itself gives (audit and rule ids): lowercase words and hyphens, nothing that
# can form a link, a code span or a new line ("$" matches only at the very end here).
_Id = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
_Name = _text(MAX_NAME, 1)
_Count = Annotated[int, Field(ge=0)]
_Line = Annotated[int, Field(ge=1)]
_SeverityName = Literal["error", "warning", "notice"]


def _relative(path: str) -> str:
    parts = PurePosixPath(path).parts
    if not path or path.startswith(("/", "\\")) or ".." in parts:
        raise ValueError("must be a relative path inside the repository")
    return path


_Path = Annotated[str, Field(max_length=MAX_PATH), AfterValidator(_relative)]


class _Tool(BaseModel):
    model_config = _Strict
    name: Literal["eval-firewall"]
    version: _text(64)


class _Dataset(BaseModel):
    model_config = _Strict
    name: _Name
    role: Literal["train", "eval"]
    files: Annotated[list[_Path], Field(max_length=MAX_FILES)]
    rows: _Count
    invalid_rows: _Count = 0
    changed_files: Annotated[list[_Path], Field(max_length=MAX_FILES)] | None = None
    changed_rows: _Count | None = None


class _Stat(BaseModel):
    model_config = _Strict
    label: _text(500)
    value: _text(MAX_MESSAGE) | bool | int | Annotated[float, Field(allow_inf_nan=False)] | None


class _Audit(BaseModel):
    model_config = _Strict
    audit: _Id
    title: _text(100, 1)
    verdict: _text(MAX_MESSAGE) | None = None
    skipped: _text(MAX_MESSAGE) | None = None
    counts: dict[_SeverityName, _Count]
    stats: Annotated[list[_Stat], Field(max_length=MAX_STATS)]


class _Match(BaseModel):
    model_config = _Strict
    dataset: _Name
    path: _Path
    line: _Line
    row_id: _text(MAX_NAME)
    text: _text(MAX_ROW_TEXT) | None = None


class _Waiver(BaseModel):
    model_config = _Strict
    fingerprint: Annotated[str, Field(pattern=r"^[0-9a-f]{8,64}$")]
    reason: _text(MAX_MESSAGE)
    approved_by: _text(MAX_NAME)
    expires: Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")] | None = None
    new: bool = False


class _Finding(BaseModel):
    model_config = _Strict
    audit: _Id
    rule: _Id
    severity: _SeverityName
    message: _text(MAX_MESSAGE)
    dataset: _Name | None = None
    path: _Path | None = None
    line: _Line | None = None
    row_id: _text(MAX_NAME) | None = None
    text: _text(MAX_ROW_TEXT) | None = None
    score: Annotated[float, Field(allow_inf_nan=False)] | None = None
    match: _Match | None = None
    count: _Count | None = None
    new: bool = True
    waived: _Waiver | None = None
    fingerprint: Annotated[str, Field(pattern=r"^[0-9a-f]{8,64}$")] | None = None   # derived


class _Report(BaseModel):
    model_config = _Strict
    schema_version: Literal[1]
    tool: _Tool
    status: Literal["pass", "fail"]
    fail_on: Literal["error", "warning", "notice", "never"]
    fail_on_existing: bool
    base: _text(MAX_NAME) | None = None
    config: _text(MAX_PATH) | None = None
    summary: Annotated[dict[Annotated[str, Field(max_length=64)], _Count],
                       Field(max_length=32)]                                    # derived
    datasets: Annotated[list[_Dataset], Field(max_length=MAX_DATASETS)]
    audits: Annotated[list[_Audit], Field(max_length=MAX_AUDITS)]
    findings: Annotated[list[_Finding], Field(max_length=MAX_FINDINGS)]


def _where(loc: tuple) -> str:
    return ".".join(str(part)[:40] for part in loc) or "(top level)"


def load_report(text: str, *, source: str = "report") -> Report:
    """Rebuild a Report from its JSON (as written by ``render_json``), validated against a
    strict schema first: a forged or damaged report is one :class:`UserError` naming the field."""
    try:
        data = _Report.model_validate_json(text)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        raise UserError(f"not an eval-firewall JSON report: {_where(err['loc'])}: "
                        f"{err['msg']}", path=source) from None
    audits = [a.audit for a in data.audits]
    if len(set(audits)) != len(audits):
        raise UserError("not an eval-firewall JSON report: audits: an audit is listed twice",
                        path=source)
    by_audit: dict[str, list[Finding]] = {a: [] for a in audits}
    for i, f in enumerate(data.findings):
        if f.audit not in by_audit:
            raise UserError(f"not an eval-firewall JSON report: findings.{i}.audit: "
                            f"'{f.audit}' is not among the report's audits", path=source)
        match = Match(**f.match.model_dump()) if f.match else None
        waived = Waiver(**f.waived.model_dump()) if f.waived else None
        fields = f.model_dump(exclude={"fingerprint", "match", "waived", "severity"})
        by_audit[f.audit].append(Finding(**fields, severity=Severity(f.severity), match=match,
                                         waived=waived))
    return Report(
        status=data.status, fail_on=data.fail_on,
        audits=[AuditResult(a.audit, a.title, by_audit[a.audit],
                            [Stat(s.label, s.value) for s in a.stats], a.verdict, a.skipped)
                for a in data.audits],
        datasets=[DatasetSummary(**d.model_dump()) for d in data.datasets],
        fail_on_existing=data.fail_on_existing, base=data.base, version=data.tool.version,
        config_path=data.config)
