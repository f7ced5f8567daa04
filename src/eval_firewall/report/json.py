"""The JSON report: the findings dataclasses serialized, and read back (for the fork two-step)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, GetPydanticSchema, TypeAdapter, ValidationError, with_config
from pydantic_core import core_schema
from typing_extensions import NotRequired, TypedDict

from ..errors import UserError
from ..findings import (
    AuditResult,
    DatasetSummary,
    Evidence,
    Finding,
    Match,
    PolicyChange,
    Report,
    Severity,
    Span,
    Stat,
    Waiver,
)
from .escape import escape_json

# 2: overlap findings carry `evidence` and `leak`, matches their `span`, unreadable rows their
# `digest` (the hash of the row's bytes, in its fingerprint); the report carries `policy`,
# `new_policy` and waivers' `reviewer` (the gate's policy)
SCHEMA_VERSION = 2
# The versions this code reads back (the workflow_run side); a newer one is refused.
READABLE_VERSIONS = (1, 2)


def finding_to_dict(f: Finding) -> dict[str, Any]:
    """A finding as the JSON report lists it: its fields and its fingerprint."""
    out = dataclasses.asdict(f)
    out["severity"] = f.severity.value
    out["fingerprint"] = f.fingerprint
    return out


def report_to_dict(report: Report) -> dict[str, Any]:
    """The JSON report as a dict (``render_json`` writes it)."""
    counts = report.counts
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "eval-firewall", "version": report.version},
        "status": report.status,
        "fail_on": report.fail_on,
        "fail_on_existing": report.fail_on_existing,
        "base": report.base,
        "config": report.config_path,
        "summary": {
            "findings": counts.findings,
            "new_findings": counts.new,
            "failing": counts.failing,
            **counts.by_severity,
        },
        "datasets": [dataclasses.asdict(d) for d in report.datasets],
        "audits": [
            {"audit": a.audit, "title": a.title, "verdict": a.verdict, "skipped": a.skipped,
             "counts": a.counts(), "stats": [dataclasses.asdict(s) for s in a.stats]}
            for a in report.audits
        ],
        "findings": [finding_to_dict(f) for f in report.findings],
        "new_policy": report.new_policy,
        "policy": [dataclasses.asdict(c) for c in report.policy],
    }


def render_json(report: Report) -> str:
    """The JSON report: indented, Unicode kept, bidi and C1 controls escaped."""
    return escape_json(json.dumps(report_to_dict(report), indent=2, ensure_ascii=False)) + "\n"


# --- reading a report back: a strict schema, since the report may come from a fork -----------
#
# The wire types below are the JSON report's shape: the findings dataclasses serialized, plus
# the derived fields (summary, counts, fingerprint). One strict TypeAdapter validates a whole
# report: types are exact (no "3" for 3, no 1 for true), unknown keys are refused, severities,
# roles, statuses and fail levels are enums, and every string and list has a bound. Each wire
# type that is a dataclass of findings.py is built into it as it validates (``_loaded``);
# derived fields are checked for shape and otherwise ignored (status, too: a loaded report's
# status is derived from its findings, like any report's).

MAX_NAME = 200          # dataset names, row ids, a base revision
MAX_PATH = 4096
MAX_MESSAGE = 10_000    # finding messages, verdicts, skip reasons, waiver reasons
MAX_ROW_TEXT = 1_000_000
MAX_FILES = 100_000     # files of one dataset
MAX_DATASETS = 1_000
MAX_AUDITS = 64
MAX_STATS = 500
MAX_FINDINGS = 1_000_000

_STRICT = ConfigDict(strict=True, extra="forbid")


def _relative(path: str) -> str:
    parts = PurePosixPath(path).parts
    if not path or path.startswith(("/", "\\")) or ".." in parts:
        raise ValueError("must be a relative path inside the repository")
    return path


def _loaded(wire: type, build: Callable[[Any], object]) -> GetPydanticSchema:
    """Validate against the ``wire`` type's schema, then ``build`` the value from it: the
    static type is the built one (``Annotated[Match, _loaded(_MatchJSON, ...)]``)."""
    return GetPydanticSchema(lambda _type, handler: core_schema.no_info_after_validator_function(
        build, handler(wire)))


# Names the code itself gives (audit and rule ids): lowercase words and hyphens, nothing that
# can form a link, a code span or a new line ("$" matches only at the very end here).
_Id = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
_Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
_RowId = Annotated[str, Field(max_length=MAX_NAME)]
_Message = Annotated[str, Field(max_length=MAX_MESSAGE)]
_RowText = Annotated[str, Field(max_length=MAX_ROW_TEXT)]
_Path = Annotated[str, Field(max_length=MAX_PATH), AfterValidator(_relative)]
_Paths = Annotated[list[_Path], Field(max_length=MAX_FILES)]
_Fingerprint = Annotated[str, Field(pattern=r"^[0-9a-f]{8,64}$")]
_Count = Annotated[int, Field(ge=0)]
_Line = Annotated[int, Field(ge=1)]
_Offset = Annotated[int, Field(ge=0)]
_Float = Annotated[float, Field(allow_inf_nan=False)]
_SeverityName = Literal["error", "warning", "notice"]


@with_config(_STRICT)
class _ToolJSON(TypedDict):
    name: Literal["eval-firewall"]
    version: Annotated[str, Field(max_length=64)]


@with_config(_STRICT)
class _DatasetJSON(TypedDict):
    name: _Name
    role: Literal["train", "eval"]
    files: _Paths
    rows: _Count
    invalid_rows: NotRequired[_Count]
    changed_files: NotRequired[_Paths | None]
    changed_rows: NotRequired[_Count | None]


@with_config(_STRICT)
class _StatJSON(TypedDict):
    label: Annotated[str, Field(max_length=500)]
    value: _Message | bool | int | _Float | None


@with_config(_STRICT)
class _SpanJSON(TypedDict):
    start: _Offset
    end: _Offset
    field: NotRequired[Annotated[str, Field(max_length=MAX_NAME)] | None]
    coverage: NotRequired[Annotated[float, Field(ge=0.0, le=1.0)] | None]
    window: NotRequired[bool]


@with_config(_STRICT)
class _MatchJSON(TypedDict):
    dataset: _Name
    path: _Path
    line: _Line
    row_id: _RowId
    text: NotRequired[_RowText | None]
    span: NotRequired[_LoadedSpan | None]


@with_config(_STRICT)
class _WaiverJSON(TypedDict):
    fingerprint: _Fingerprint
    reason: _Message
    approved_by: _RowId
    expires: NotRequired[Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")] | None]
    new: NotRequired[bool]
    reviewer: NotRequired[_RowId | None]


@with_config(_STRICT)
class _PolicyChangeJSON(TypedDict):
    key: _Message
    before: _Message
    after: _Message
    direction: Literal["loosen", "tighten"]
    path: _Path
    line: NotRequired[_Line | None]
    status: Literal["pending", "approved", "applied", "trusted"]
    reviewer: NotRequired[_RowId | None]


@with_config(_STRICT)
class _EvidenceJSON(TypedDict):
    stage: Literal["exact", "near-duplicate", "contained", "paraphrase"]
    similarity: _Float
    threshold: NotRequired[_Float | None]
    probability: NotRequired[_Float | None]
    min_probability: NotRequired[_Float | None]
    features: NotRequired[Annotated[dict[_Id, _Float], Field(max_length=32)] | None]
    not_flagged: NotRequired[_Message | None]


_LoadedEvidence = Annotated[Evidence, _loaded(_EvidenceJSON, lambda d: Evidence(**d))]
_LoadedDataset = Annotated[DatasetSummary, _loaded(_DatasetJSON, lambda d: DatasetSummary(**d))]
_LoadedStat = Annotated[Stat, _loaded(_StatJSON, lambda d: Stat(**d))]
_LoadedSpan = Annotated[Span, _loaded(_SpanJSON, lambda d: Span(**d))]
_LoadedMatch = Annotated[Match, _loaded(_MatchJSON, lambda d: Match(**d))]
_LoadedWaiver = Annotated[Waiver, _loaded(_WaiverJSON, lambda d: Waiver(**d))]
_LoadedPolicyChange = Annotated[PolicyChange,
                                _loaded(_PolicyChangeJSON, lambda d: PolicyChange(**d))]


@with_config(_STRICT)
class _AuditJSON(TypedDict):
    audit: _Id
    title: Annotated[str, Field(min_length=1, max_length=100)]
    verdict: NotRequired[_Message | None]
    skipped: NotRequired[_Message | None]
    counts: dict[_SeverityName, _Count]                                      # derived
    stats: Annotated[list[_LoadedStat], Field(max_length=MAX_STATS)]


@with_config(_STRICT)
class _FindingJSON(TypedDict):
    audit: _Id
    rule: _Id
    severity: Severity
    message: _Message
    dataset: NotRequired[_Name | None]
    path: NotRequired[_Path | None]
    line: NotRequired[_Line | None]
    row_id: NotRequired[_RowId | None]
    text: NotRequired[_RowText | None]
    score: NotRequired[_Float | None]
    match: NotRequired[_LoadedMatch | None]
    count: NotRequired[_Count | None]
    new: NotRequired[bool]
    waived: NotRequired[_LoadedWaiver | None]
    evidence: NotRequired[_LoadedEvidence | None]
    leak: NotRequired[Literal["input", "input+label"] | None]
    digest: NotRequired[Annotated[str, Field(pattern=r"^[0-9a-f]{8,64}$")] | None]
    fingerprint: NotRequired[_Fingerprint | None]                            # derived


def _finding(data: _FindingJSON) -> Finding:
    fields: dict[str, Any] = {k: v for k, v in data.items() if k != "fingerprint"}
    return Finding(**fields)


_LoadedFinding = Annotated[Finding, _loaded(_FindingJSON, _finding)]


@with_config(_STRICT)
class _ReportJSON(TypedDict):
    schema_version: Literal[1, 2]
    tool: _ToolJSON
    status: Literal["pass", "fail"]                                          # derived
    fail_on: Literal["error", "warning", "notice", "never"]
    fail_on_existing: bool
    base: NotRequired[Annotated[str, Field(max_length=MAX_NAME)] | None]
    config: NotRequired[Annotated[str, Field(max_length=MAX_PATH)] | None]
    summary: Annotated[dict[Annotated[str, Field(max_length=64)], _Count],
                       Field(max_length=32)]                                 # derived
    datasets: Annotated[list[_LoadedDataset], Field(max_length=MAX_DATASETS)]
    audits: Annotated[list[_AuditJSON], Field(max_length=MAX_AUDITS)]
    findings: Annotated[list[_LoadedFinding], Field(max_length=MAX_FINDINGS)]
    new_policy: NotRequired[bool]
    policy: NotRequired[Annotated[list[_LoadedPolicyChange], Field(max_length=MAX_STATS)]]


_REPORT = TypeAdapter(_ReportJSON)


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part)[:40] for part in loc) or "(top level)"


_VERSION = re.compile(r'\s*\{\s*"schema_version"\s*:\s*([0-9]{1,9})\s*[,}]')


def _check_version(text: str, source: str) -> None:
    """A report of a schema version this code does not know is one clear line (a newer
    eval-firewall wrote it), not a validation error about some field of it."""
    found = _VERSION.match(text)        # render_json writes it first; no second parse
    if found is None:
        return                              # validation names what is wrong
    version = int(found.group(1))
    if version > max(READABLE_VERSIONS):
        raise UserError(f"the report has schema_version {version}; this eval-firewall reads "
                        f"versions {', '.join(map(str, READABLE_VERSIONS))}: use the same "
                        "eval-firewall version in both workflows", path=source)


def load_report(text: str, *, source: str = "report") -> Report:
    """Rebuild a Report from its JSON (as written by ``render_json``), validated against a
    strict schema first: a forged or damaged report is one :class:`UserError` naming the field."""
    _check_version(text, source)
    try:
        data = _REPORT.validate_json(text, strict=True)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        raise UserError(f"not an eval-firewall JSON report: {_where(err['loc'])}: "
                        f"{err['msg']}", path=source) from None
    audits = [a["audit"] for a in data["audits"]]
    if len(set(audits)) != len(audits):
        raise UserError("not an eval-firewall JSON report: audits: an audit is listed twice",
                        path=source)
    by_audit: dict[str, list[Finding]] = {a: [] for a in audits}
    for i, f in enumerate(data["findings"]):
        if f.audit not in by_audit:
            raise UserError(f"not an eval-firewall JSON report: findings.{i}.audit: "
                            f"'{f.audit}' is not among the report's audits", path=source)
        by_audit[f.audit].append(f)
    return Report(
        fail_on=data["fail_on"],
        audits=[AuditResult(a["audit"], a["title"], by_audit[a["audit"]], a["stats"],
                            a.get("verdict"), a.get("skipped")) for a in data["audits"]],
        datasets=data["datasets"], fail_on_existing=data["fail_on_existing"],
        base=data.get("base"), version=data["tool"]["version"], config_path=data.get("config"),
        policy=data.get("policy", []), new_policy=data.get("new_policy", False))
