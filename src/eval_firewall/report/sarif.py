"""SARIF 2.1.0, for GitHub code scanning and any SARIF viewer."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ..findings import Finding, Report, Severity
from ..rules import Rule
from .escape import escape_json
from .registry import rules_of

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/eval-firewall/eval-firewall"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTICE: "note"}


def _location(path: str, line: int | None, *, parquet: bool = False) -> dict[str, Any]:
    # A URI reference: spaces, '#', brackets and non-ASCII letters in a file name are escaped.
    uri = quote(path, safe="/")
    physical: dict[str, Any] = {"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"}}
    if line and not parquet:
        physical["region"] = {"startLine": line}
    return {"physicalLocation": physical}


def _is_text(path: str) -> bool:
    return not path.lower().endswith((".parquet", ".pq"))


def _result(f: Finding, rule_index: dict[str, int], fallback_path: str) -> dict[str, Any]:
    path = f.path or fallback_path
    line = f.line if f.path else 1
    result: dict[str, Any] = {
        "ruleId": f.rule,
        "ruleIndex": rule_index[f.rule],
        "level": LEVELS[f.severity],
        "message": {"text": f.message if _is_text(path) or not f.line
                    else f"{f.message} (row {f.line})"},
        "locations": [_location(path, line, parquet=not _is_text(path))],
        "partialFingerprints": {"evalFirewallFinding/v2": f.fingerprint},
        "properties": {k: v for k, v in {
            "audit": f.audit, "dataset": f.dataset, "rowId": f.row_id, "score": f.score,
            "count": f.count, "new": f.new}.items() if v is not None},
    }
    if f.waived is not None:    # a waiver accepted it: viewers hide it as suppressed
        result["suppressions"] = [{
            "kind": "external", "status": "accepted", "justification": f.waived.reason,
            "properties": {k: v for k, v in {
                "approvedBy": f.waived.approved_by, "expires": f.waived.expires,
                "fingerprint": f.waived.fingerprint}.items() if v is not None}}]
    if f.match:
        related = _location(f.match.path, f.match.line, parquet=not _is_text(f.match.path))
        related["id"] = 1
        related["message"] = {"text": f"matching row {f.match.row_id} of {f.match.dataset}"}
        result["relatedLocations"] = [related]
    return result


def render_sarif(report: Report, rules: Mapping[str, Rule] | None = None) -> str:
    """The report as a SARIF log; ``rules``: the rule catalogue (default: the report's, that
    of the registry that ran, :func:`.registry.rules_of`)."""
    if rules is None:
        rules = rules_of(report)
    findings = report.findings
    used = sorted({f.rule for f in findings} | set())
    rule_index = {rule: i for i, rule in enumerate(used)}
    described = []
    for rule_id in used:
        rule = rules.get(rule_id)
        summary = rule.summary if rule else rule_id
        described.append({"id": rule_id, "name": rule_id,
                      "shortDescription": {"text": summary},
                      "fullDescription": {"text": summary},
                      "properties": {"audit": rule.audit if rule else "unknown"}})
    fallback = report.config_path or ".eval-firewall.yml"
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "eval-firewall", "version": report.version or "0",
                                "informationUri": INFO_URI, "rules": described}},
            "automationDetails": {"id": "eval-firewall/"},
            "results": [_result(f, rule_index, fallback) for f in findings],
            "properties": {"status": report.status, "failOn": report.fail_on},
        }],
    }
    return escape_json(json.dumps(doc, indent=2, ensure_ascii=False)) + "\n"
