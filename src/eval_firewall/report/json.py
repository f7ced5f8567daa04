"""The JSON report: the findings dataclasses serialized, and read back (for the fork two-step)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ..errors import UserError
from ..findings import (AuditResult, DatasetSummary, Finding, Match, Report, Severity, Stat,
                        Waiver)

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
    return json.dumps(report_to_dict(report), indent=2, ensure_ascii=False) + "\n"


def load_report(text: str, *, source: str = "report") -> Report:
    """Rebuild a Report from its JSON (as written by ``render_json``)."""
    try:
        data = json.loads(text)
        by_audit: dict[str, list[Finding]] = {}
        for raw in data["findings"]:
            match = Match(**raw["match"]) if raw.get("match") else None
            waived = Waiver(**raw["waived"]) if raw.get("waived") else None
            fields = {k: v for k, v in raw.items() if k != "fingerprint"}   # derived
            finding = Finding(**{**fields, "severity": Severity(raw["severity"]), "match": match,
                                 "waived": waived})
            by_audit.setdefault(finding.audit, []).append(finding)
        audits = [AuditResult(a["audit"], a["title"], by_audit.pop(a["audit"], []),
                              [Stat(**s) for s in a["stats"]], a.get("verdict"),
                              a.get("skipped"))
                  for a in data["audits"]]
        return Report(status=data["status"], fail_on=data["fail_on"], audits=audits,
                      datasets=[DatasetSummary(**d) for d in data["datasets"]],
                      fail_on_existing=data["fail_on_existing"], base=data.get("base"),
                      version=data["tool"]["version"], config_path=data.get("config"))
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"not an eval-firewall JSON report: {exc}", path=source) from None
