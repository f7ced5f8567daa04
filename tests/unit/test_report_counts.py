"""A report's derived counts: one definition of new, existing, waived and failing, read by the
verdict, the Markdown, text and JSON reports and the action outputs alike."""

from __future__ import annotations

import dataclasses
import json

from eval_firewall.findings import AuditResult, Finding, Severity, Waiver
from eval_firewall.report import render_json, render_markdown, render_text
from sample_reports import TEST, make_report, row_finding


def finding(line: int, severity: Severity, *, new: bool, waived: Waiver | None = None) -> Finding:
    return row_finding("overlap", "eval-duplicate", severity, "twice", line, TEST[line],
                       new=new, waived=waived)


OLD_WAIVER = Waiver("0" * 32, "kept on purpose", "alice")
NEW_WAIVER = dataclasses.replace(OLD_WAIVER, new=True)
FINDINGS = [
    finding(1, Severity.ERROR, new=True),                         # fails
    finding(2, Severity.ERROR, new=True, waived=NEW_WAIVER),      # new, waived by this change
    finding(3, Severity.WARNING, new=True),                       # new, below the fail level
    finding(4, Severity.ERROR, new=False),                        # already present
    finding(5, Severity.NOTICE, new=False, waived=OLD_WAIVER),    # already present and waived
]
REPORT = dataclasses.replace(make_report([AuditResult("overlap", "Overlap", FINDINGS)]),
                             base="0123456789abcdef0123456789abcdef01234567")


def lines(found: list[Finding]) -> list[int | None]:
    return [f.line for f in found]


def test_new_means_introduced_by_the_change_waived_or_not():
    assert lines(REPORT.new_findings) == [1, 2, 3]
    assert lines(REPORT.existing_findings) == [4, 5]
    assert lines(REPORT.waived_findings) == [2, 5]
    assert lines(REPORT.waived_here) == [2]
    assert lines(REPORT.failing()) == [1]
    assert lines(REPORT.not_blocking) == [3, 4]
    assert REPORT.counts_by_severity == {"error": 3, "warning": 1, "notice": 1}
    counts = REPORT.counts
    assert (counts.findings, counts.new, counts.existing, counts.failing) == (5, 3, 2, 1)
    assert (counts.waived, counts.waived_here) == (2, 1)
    assert (counts.new_unwaived, counts.existing_unwaived) == (2, 1)
    # With fail-on-existing the old error fails too, and is no longer "not blocking".
    strict = REPORT.with_fail_on("error", fail_on_existing=True)
    assert lines(strict.failing()) == [1, 4] and lines(strict.not_blocking) == [3]


def test_every_renderer_reads_the_same_counts():
    summary = json.loads(render_json(REPORT))["summary"]
    assert summary == {"findings": 5, "new_findings": 3, "failing": 1, "error": 3, "warning": 1,
                       "notice": 1}
    assert "Compared with 0123456789abcdef0123456789abcdef01234567: 3 new, 2 already present." \
        in render_text(REPORT)
    markdown = render_markdown(REPORT)
    # The Markdown summary splits the same findings three ways: new and not waived, already
    # present and not waived, waived.
    assert "2 new findings, 1 already present, 2 waived" in markdown
    assert "This pull request waives 1 finding." in markdown
