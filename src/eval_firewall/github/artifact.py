"""The files one run leaves in the report directory, and reading them back in the trusted
``workflow_run`` step of the fork two-step.

What a fork's run wrote is untrusted: it is parsed as data, checked against what GitHub
itself says about the run, and every field the templates print unescaped is validated.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import UserError
from ..findings import Report
from ..report import load_report, render_json, render_sarif

REPORT_JSON = "report.json"
REPORT_SARIF = "report.sarif"
REPORT_MD = "report.md"
CONTEXT_JSON = "pull-request.json"

_SHA = r"^[0-9a-f]{40}$"
_TOKEN = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_TITLE = re.compile(r"^[A-Za-z0-9 ,.:()'/_-]{1,100}$")


class RunContext(BaseModel):
    """Which pull request and commit a report is about (written next to the report)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repository: str
    head_sha: str
    pull_request: int | None = None
    path_prefix: str = ""


def write_reports(directory: Path, report: Report, markdown: str, context: RunContext) -> Path:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / REPORT_JSON).write_text(render_json(report), encoding="utf-8")
        (directory / REPORT_SARIF).write_text(render_sarif(report), encoding="utf-8")
        (directory / REPORT_MD).write_text(markdown, encoding="utf-8")
        (directory / CONTEXT_JSON).write_text(context.model_dump_json(indent=2) + "\n",
                                              encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write the report: {exc}", path=str(directory),
                        field="report-dir") from None
    return directory / REPORT_JSON


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        raise UserError("no report here: download the artifact of the pull_request run "
                        "(actions/download-artifact with run-id: "
                        "${{ github.event.workflow_run.id }}) into the report-dir",
                        path=str(path), field="report-dir") from None


def read_context(directory: Path) -> RunContext:
    path = directory / CONTEXT_JSON
    try:
        context = RunContext.model_validate_json(_read(path))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UserError(f"invalid: {err['msg']}", path=str(path),
                        field=".".join(map(str, err["loc"]))) from None
    prefix = PurePosixPath(context.path_prefix)
    if context.path_prefix and (prefix.is_absolute() or ".." in prefix.parts):
        raise UserError("invalid path_prefix", path=str(path), field="path_prefix")
    if not re.match(_SHA, context.head_sha):
        raise UserError("invalid commit sha", path=str(path), field="head_sha")
    return context


def read_untrusted_report(directory: Path) -> Report:
    """Load a report another run wrote; refuse one whose printed-as-is fields look forged."""
    path = directory / REPORT_JSON
    report = load_report(_read(path), source=str(path))
    checks = [("fail_on", report.fail_on, _TOKEN), ("version", report.version or "0", _TOKEN)]
    for a in report.audits:
        checks += [("audits.audit", a.audit, _TOKEN), ("audits.title", a.title, _TITLE)]
    for d in report.datasets:
        checks.append(("datasets.role", d.role, _TOKEN))
    for f in report.findings:
        checks += [("findings.rule", f.rule, _TOKEN), ("findings.audit", f.audit, _TOKEN)]
    for field, value, pattern in checks:
        if not isinstance(value, str) or not pattern.match(value):
            raise UserError(f"unexpected value {str(value)[:40]!r}; not a report eval-firewall "
                            "wrote", path=str(path), field=field)
    typed = [("datasets.rows", d.rows, int) for d in report.datasets]
    typed += [("datasets.invalid_rows", d.invalid_rows, int) for d in report.datasets]
    typed += [("datasets.changed_rows", d.changed_rows, (int, type(None)))
                for d in report.datasets]
    for f in report.findings:
        typed += [("findings.line", f.line, (int, type(None))),
                    ("findings.score", f.score, (int, float, type(None))),
                    ("findings.count", f.count, (int, type(None))),
                    ("findings.new", f.new, bool)]
        if f.match is not None:
            typed += [("findings.match.line", f.match.line, int),
                        ("findings.match.path", f.match.path, str)]
        typed.append(("findings.path", f.path, (str, type(None))))
    for d in report.datasets:
        for changed in d.changed_files or []:
            typed.append(("datasets.changed_files", changed, str))
    for field, value, kind in typed:
        if isinstance(value, bool) and kind is int or not isinstance(value, kind):
            raise UserError(f"unexpected value {str(value)[:40]!r}; not a report eval-firewall "
                            "wrote", path=str(path), field=field)
    return report
