"""The sticky pull-request comment: its hidden marker and its body.

The marker is defined here and nowhere else. It names the check (so two eval-firewall
workflows in one repository keep a comment each) and records how many findings the comment
showed, so that the next push can say "fixed" when they are all gone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from ..findings import Report
from ..report.markdown import render_markdown

# GitHub rejects a comment body over 65,536 characters; keep a margin.
COMMENT_MAX_CHARS = 65_000
_MARKER = "<!-- eval-firewall-comment: {name} findings={findings} -->"
_MARKER_RE = re.compile(r"<!-- eval-firewall-comment: (?P<name>\S+) findings=(?P<findings>\d+) -->")
_UNSAFE = re.compile(r"[^A-Za-z0-9._/-]+")


def marker(check_name: str, findings: int) -> str:
    return _MARKER.format(name=_UNSAFE.sub("-", check_name) or "-", findings=findings)


def previous_findings(body: str, check_name: str) -> int | None:
    """How many findings an earlier comment of this check showed; None if it is not ours.

    Ours *starts* with our marker (and, checked by the caller, is written by our identity): a
    comment that merely quotes the marker, even one by the same bot login from another
    workflow, is somebody else's and is never overwritten."""
    m = _MARKER_RE.match(body)
    if m and m["name"] == (_UNSAFE.sub("-", check_name) or "-"):
        return int(m["findings"])
    return None


@dataclass(frozen=True, slots=True)
class Target:
    """Where the audited files live on GitHub, to link findings to their lines."""

    server_url: str
    repository: str
    head_sha: str
    path_prefix: str = ""     # the config's directory, relative to the repository root

    def repo_path(self, path: str) -> str:
        return self.path_prefix + path

    def link(self, path: str, line: int | None) -> str:
        url = (f"{self.server_url}/{self.repository}/blob/{self.head_sha}/"
               f"{quote(self.repo_path(path), safe='/')}")
        if line and not path.lower().endswith((".parquet", ".pq")):
            url += f"#L{line}"
        return url

    def compare_url(self, base: str | None) -> str | None:
        """GitHub's compare view of a base commit and the head (a base that is not a commit
        SHA, say from a report file, gets no link)."""
        if base is None or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", base):
            return None
        return f"{self.server_url}/{self.repository}/compare/{base}...{self.head_sha}"


def summary_hint(run_url: str | None) -> str:
    where = f"the [job summary]({run_url})" if run_url else "the job summary of this run"
    return f"{where} has the full report"


def comment_body(report: Report, *, target: Target, check_name: str, run_url: str | None,
                 previous: int | None, max_chars: int = COMMENT_MAX_CHARS) -> str:
    findings = len(report.findings)
    return render_markdown(
        report, link=target.link, marker=marker(check_name, findings), max_chars=max_chars,
        omitted_hint=summary_hint(run_url), fixed=bool(previous) and findings == 0,
        commit=target.head_sha, compare_url=target.compare_url(report.base))


def should_comment(mode: str, report: Report, existing: bool) -> bool:
    """``always``; ``on-findings`` (or to update a comment already there); ``never``."""
    if mode == "never":
        return False
    return mode == "always" or existing or bool(report.findings)
