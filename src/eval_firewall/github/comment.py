"""The sticky pull-request comment: its hidden marker and its body.

The marker is defined here and nowhere else. It names the check (so two eval-firewall
workflows in one repository keep a comment each) and records how many findings the comment
showed, so that the next push can say "fixed" when they are all gone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from ..findings import Report
from ..report.markdown import render_markdown
from .outputs import log

if TYPE_CHECKING:
    from .api import GitHub

# GitHub rejects a comment body over 65,536 characters; keep a margin.
COMMENT_MAX_CHARS = 65_000
_MARKER = "<!-- eval-firewall-comment: {name} findings={findings} -->"
_MARKER_RE = re.compile(r"<!-- eval-firewall-comment: (?P<name>\S+) findings=(?P<findings>\d+) -->")
_UNSAFE = re.compile(r"[^A-Za-z0-9._/-]+")


def marker(check_name: str, findings: int) -> str:
    """The hidden first line of our comment."""
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
        """A path of the config's directory, relative to the repository root."""
        return self.path_prefix + path

    def link(self, path: str, line: int | None) -> str | None:
        """The file (and line) at the head commit on GitHub; None for a remote train file
        (links point only at the repository's files)."""
        from ..datasets.remote import is_url

        if is_url(path):
            return None
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
    """Where the full report is when the comment is cut short."""
    where = f"the [job summary]({run_url})" if run_url else "the job summary of this run"
    return f"{where} has the full report"


def comment_body(report: Report, *, target: Target, check_name: str, run_url: str | None,
                 previous: int | None, max_chars: int = COMMENT_MAX_CHARS) -> str:
    """The comment: our marker, then the report in Markdown (``fixed`` once all are gone)."""
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


def post(gh: GitHub, number: int, report: Report, *, target: Target, mode: str,
         check_name: str, run_url: str | None) -> str | None:
    """Create or update the sticky comment on pull request ``number``; its URL (None when
    ``mode`` says no comment). Ours is found by marker *and* author, and edited in place."""
    login = gh.my_login()
    existing = gh.find_comment(
        number, login, lambda body: previous_findings(body, check_name) is not None)
    if not should_comment(mode, report, existing is not None):
        log(f"no comment on #{number}: no findings (comment: {mode})")
        return None
    previous = previous_findings(existing.body, check_name) if existing else None
    body = comment_body(report, target=target, check_name=check_name, run_url=run_url,
                        previous=previous)
    if existing is not None:
        gh.update_comment(existing, body)
        log(f"updated the comment on #{number}")
        return existing.html_url
    created = gh.create_comment(number, body)
    log(f"commented on #{number}")
    return created.html_url
