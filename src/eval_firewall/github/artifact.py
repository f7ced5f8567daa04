"""The files one run leaves in the report directory, and reading them back in the trusted
``workflow_run`` step of the fork two-step.

What a fork's run wrote is untrusted: it is size-bounded, parsed against a strict schema,
checked against what GitHub itself says about the run, and rendered with the same escaping as
dataset text.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import UserError, validation_error
from ..findings import Report
from ..report.json import load_report, render_json
from ..report.sarif import render_sarif
from ..safeio.paths import refuse_linked, write_text

REPORT_JSON = "report.json"
REPORT_SARIF = "report.sarif"
REPORT_MD = "report.md"
CONTEXT_JSON = "pull-request.json"

# About 200,000 findings with their row texts; a forged one cannot exhaust memory.
MAX_REPORT_BYTES = 128 * 1024 * 1024
MAX_CONTEXT_BYTES = 64 * 1024


class RunContext(BaseModel):
    """Which pull request and commit a report is about (written next to the report)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    repository: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")]
    head_sha: Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")]
    pull_request: Annotated[int, Field(ge=1)] | None = None
    path_prefix: Annotated[str, Field(max_length=4096, pattern=r"^[^\x00-\x1f\x7f]*$")] = ""


def write_reports(directory: Path, report: Report, markdown: str, context: RunContext) -> Path:
    """Write the JSON, SARIF and Markdown reports and the run context; the JSON's path."""
    # The folder and its files may be links a pull request committed: each is refused
    # before anything is written (paths.write_text).
    files = {REPORT_JSON: render_json(report), REPORT_SARIF: render_sarif(report),
             REPORT_MD: markdown, CONTEXT_JSON: context.model_dump_json(indent=2) + "\n"}
    try:
        refuse_linked(directory, what="the report", field="report-dir")
        for name in files:
            refuse_linked(directory / name, what="the report", field="report-dir")
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            write_text(directory / name, text, what="the report", field="report-dir")
    except OSError as exc:
        raise UserError(f"cannot write the report: {exc}", path=str(directory),
                        field="report-dir") from None
    return directory / REPORT_JSON


def _read(path: Path, limit: int = MAX_REPORT_BYTES) -> str:
    try:
        if path.stat().st_size > limit:
            raise UserError(f"larger than {limit:,} bytes; not a report eval-firewall wrote",
                            path=str(path))
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError("not UTF-8 text; not a report eval-firewall wrote",
                        path=str(path)) from None
    except OSError:
        raise UserError("no report here: download the artifact of the pull_request run "
                        "(actions/download-artifact with run-id: "
                        "${{ github.event.workflow_run.id }}) into the report-dir",
                        path=str(path), field="report-dir") from None


def read_context(directory: Path) -> RunContext:
    """The run context written next to a report, validated (it may come from a fork)."""
    path = directory / CONTEXT_JSON
    try:
        context = RunContext.model_validate_json(_read(path, MAX_CONTEXT_BYTES))
    except ValidationError as exc:
        raise validation_error(exc, path=str(path), prefix="invalid: ") from None
    prefix = PurePosixPath(context.path_prefix)
    if context.path_prefix and (prefix.is_absolute() or ".." in prefix.parts):
        raise UserError("invalid path_prefix", path=str(path), field="path_prefix")
    return context


def read_untrusted_report(directory: Path) -> Report:
    """Load a report another run wrote. ``load_report`` validates it against the strict
    schema (types, enums, bounded strings and lists); the renderers escape every string in
    it like dataset text, so nothing in it can become a link, a mention or a command."""
    path = directory / REPORT_JSON
    return load_report(_read(path), source=str(path))
