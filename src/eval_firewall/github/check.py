"""The check run: conclusion, title, summary and one annotation per violating row."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any

from ..findings import Finding, Report, Severity
from ..report.escape import escape_md, escape_plain
from ..report.markdown import render_markdown
from ..report.verdict import verdict_line
from .api import Forbidden
from .comment import Target, summary_hint
from .outputs import command, log

if TYPE_CHECKING:
    from .api import GitHub

OUTPUT_MAX_CHARS = 65_000          # GitHub: output.summary and output.text <= 65,535
MAX_ANNOTATIONS = 1_000            # 20 requests of 50; the rest are in the summary
TITLE_MAX_CHARS = 250              # the verdict line; longer ones end in "…"
LEVELS = {Severity.ERROR: "failure", Severity.WARNING: "warning", Severity.NOTICE: "notice"}
STATES = {"success": "success", "neutral": "success", "failure": "failure"}


def conclusion(report: Report) -> str:
    """``failure`` at or above the fail level, ``neutral`` for findings below it, else
    ``success``. Branch protection accepts success and neutral."""
    if report.status == "fail":
        return "failure"
    return "neutral" if report.findings else "success"


def title(report: Report) -> str:
    """The verdict line that opens the report (and the comment), as the check's title."""
    return escape_plain(verdict_line(report), TITLE_MAX_CHARS)


def summary(report: Report, target: Target, run_url: str | None) -> str:
    """The report in Markdown, as the check run's summary."""
    return render_markdown(report, link=target.link, max_chars=OUTPUT_MAX_CHARS,
                           omitted_hint=summary_hint(run_url), commit=target.head_sha,
                           compare_url=target.compare_url(report.base))


MAX_PATH_CHARS = 1_000


def annotation_path(path: str) -> str | None:
    """``path`` as the Checks API takes it (a file of the repository, relative, with "/"), or
    None when it is no such plain path: a control, format (bidi) or separator character, a
    backslash, "." or ".." parts, an absolute path. Git lets a commit name a file with a
    newline, ESC or RLO in it; such a finding is left to the summary, which escapes it."""
    if not path or len(path) > MAX_PATH_CHARS or path.startswith("/") or "\\" in path:
        return None
    if any(unicodedata.category(c)[0] in "CZ" and c != " " for c in path):
        return None
    if any(part in ("", ".", "..") for part in path.split("/")):
        return None
    return path


def _annotation(f: Finding, target: Target, report: Report) -> dict[str, Any] | None:
    path = f.path or ""
    shown = annotation_path(target.repo_path(path))
    if shown is None:
        return None
    text_file = not path.lower().endswith((".parquet", ".pq"))
    line = f.line if f.line and text_file else 1
    message = escape_plain(f.message, 500)
    if f.line and not text_file:
        message += f" (row {f.line})"
    if f.text:
        message += f"\nRow text: {escape_plain(f.text, 300)}"
    if f.match:
        message += (f"\nMatches {escape_plain(f.match.dataset, 100)} "
                    f"{escape_plain(target.repo_path(f.match.path), 200)}:{f.match.line}")
        if f.match.text:
            message += f": {escape_plain(f.match.text, 300)}"
    rule = f.rule + (" (new)" if report.base is not None and f.new else "")
    return {"path": shown, "start_line": line, "end_line": line,
            "annotation_level": LEVELS[f.severity], "title": escape_plain(rule, 200),
            "message": message}


def line_annotations(report: Report, target: Target,
                     limit: int = MAX_ANNOTATIONS) -> list[dict[str, Any]]:
    """New findings first, most severe first; only findings that point at a file."""
    located = [f for f in report.findings if f.path]
    located.sort(key=lambda f: (not f.new, -f.severity.rank, f.path or "", f.line or 0))
    notes = (_annotation(f, target, report) for f in located)
    return [note for note in notes if note is not None][:limit]


def error_summary(message: str, run_url: str | None) -> str:
    """The summary of a check whose run stopped on bad input (the message may quote the PR)."""
    where = f"[the run's log]({run_url})" if run_url else "the run's log"
    return f"**Error:** {escape_md(message, 2000)}\n\nSee {where}.\n"


def post(gh: GitHub, report: Report, target: Target, *, name: str,
         run_url: str | None) -> str | None:
    """The check run on the target's commit; its URL. A token that cannot write check runs
    sets a commit status instead (no URL)."""
    state, title_ = conclusion(report), title(report)
    notes = line_annotations(report, target)
    try:
        url = gh.create_check_run(name=name, head_sha=target.head_sha, conclusion=state,
                                  title=title_, summary=summary(report, target, run_url),
                                  annotations=notes, details_url=run_url)
    except Forbidden as exc:
        command("warning", f"{exc}. Falling back to a commit status '{name}' (no line "
                "annotations).")
        gh.create_status(sha=target.head_sha, state=STATES[state], context=name,
                         description=title_, target_url=run_url)
        log(f"commit status '{name}': {STATES[state]}")
        return None
    log(f"check run '{name}': {state}, {len(notes)} annotation(s)")
    return url


def post_error(gh: GitHub, message: str, *, name: str, head_sha: str,
               run_url: str | None) -> None:
    """A failed check run for a run that could not audit, so a required check does not wait
    forever."""
    gh.create_check_run(name=name, head_sha=head_sha, conclusion="failure",
                        title="eval-firewall could not run",
                        summary=error_summary(message, run_url), annotations=[],
                        details_url=run_url)
