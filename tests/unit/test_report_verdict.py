"""The verdict line: the first line of every report and comment, and the check run's title."""

from __future__ import annotations

import dataclasses
import re

from eval_firewall.audits import RULES
from eval_firewall.findings import AuditResult, Finding, Report, Severity, Waiver
from eval_firewall.report.registry import noun
from eval_firewall.report.verdict import describe, verdict_line
from sample_reports import (
    EVAL_PATH,
    TEST,
    TRAIN,
    failing_report,
    make_report,
    near_duplicates,
    row_finding,
    train_match,
)


def leak(rule: str, line: int, *, new: bool = True, score: float = 1.0) -> Finding:
    return row_finding("overlap", rule, Severity.ERROR, f"{rule} of a train row", line,
                       TEST[line % len(TEST)], score=score, match=train_match(line % 20 + 1),
                       new=new)


def pr_report(findings: list[Finding], *, fail_on: str = "error",
              fail_on_existing: bool = False) -> Report:
    report = make_report([AuditResult("overlap", "Overlap", findings)], fail_on=fail_on)
    return dataclasses.replace(report, base="0123456789abcdef0123456789abcdef01234567",
                               fail_on_existing=fail_on_existing)


def existing(n: int) -> list[Finding]:
    return [dataclasses.replace(f, new=False) for f in near_duplicates(n)]


def test_the_examples_of_the_issue():
    leaking = pr_report([leak("exact-duplicate", 1), leak("paraphrase", 2, score=0.91),
                         *existing(189)])
    assert verdict_line(leaking) == (
        "❌ This pull request adds 2 leaked eval rows (1 exact copy, 1 paraphrase). "
        "189 findings already present are not blocking.")
    clean = pr_report(existing(20))
    assert verdict_line(clean) == "✅ No new problems. 20 findings already present (not blocking)."
    assert verdict_line(pr_report([])) == "✅ No new problems."


def test_kinds_are_grouped_most_severe_first():
    findings = [leak("near-duplicate", 1), leak("near-duplicate", 2),
                row_finding("provenance", "model-label", Severity.ERROR, "label by a model", 3,
                            TEST[3]),
                row_finding("overlap", "eval-duplicate", Severity.WARNING, "twice", 4, TEST[4])]
    assert describe(findings, RULES) == ("2 leaked eval rows (near-duplicates), 1 eval label written "
                                  "by a model and 1 eval row duplicated in the eval set")
    assert verdict_line(pr_report(findings)) == (
        "❌ This pull request adds 2 leaked eval rows (near-duplicates) and 1 eval label "
        "written by a model. Not blocking: 1 eval row duplicated in the eval set below the fail "
        "level (error).")


def test_new_findings_below_the_fail_level_pass():
    dup = row_finding("overlap", "eval-duplicate", Severity.WARNING, "twice", 4, TEST[4])
    assert verdict_line(pr_report([dup, *existing(3)])) == (
        "✅ No blocking problems: 1 eval row duplicated in the eval set added by this pull "
        "request, below the fail level (error). 3 findings already present (not blocking).")
    assert verdict_line(pr_report([leak("exact-duplicate", 1)], fail_on="never")) == (
        "✅ Passes (fail-on: never), with 1 leaked eval row (exact copy) added by this pull "
        "request.")


def test_fail_on_existing_names_the_old_findings_that_fail():
    report = pr_report(existing(2), fail_on_existing=True)
    assert report.status == "fail"
    assert verdict_line(report) == ("❌ 2 leaked eval rows (near-duplicates) already present "
                                    "fail the check (fail-on-existing).")


def test_waived_findings_do_not_fail_and_new_waivers_are_named():
    new_waiver = Waiver("x", "kept on purpose", "alice", new=True)
    old_waiver = Waiver("y", "known", "bob")
    findings = [dataclasses.replace(leak("exact-duplicate", 1), waived=new_waiver),
                dataclasses.replace(leak("exact-duplicate", 2, new=False), waived=new_waiver),
                dataclasses.replace(leak("exact-duplicate", 3, new=False), waived=old_waiver),
                *existing(4)]
    report = pr_report(findings)
    assert report.status == "pass"
    assert verdict_line(report) == ("✅ No new problems. 4 findings already present (not "
                                    "blocking). This pull request waives 2 findings.")


def test_without_a_base_it_speaks_of_the_eval_set():
    report = failing_report()
    line = verdict_line(report)
    assert line.startswith("❌ Found 2 leaked eval rows (1 exact copy, 1 near-duplicate), ")
    assert "pull request" not in line
    clean = make_report([AuditResult("overlap", "Overlap", [])])
    assert verdict_line(clean) == "✅ No problems found."


def test_every_rule_has_a_name_and_the_verdict_stays_plain_text():
    rules = RULES
    assert all(r.noun is not None for r in rules.values()), [
        r.id for r in rules.values() if r.noun is None]
    findings = [Finding(r.audit, r.id, Severity.ERROR, "m", path=EVAL_PATH, line=i + 1,
                        text=TRAIN[i % 20]) for i, r in enumerate(rules.values())]
    line = verdict_line(pr_report(findings))
    assert "other finding" not in line
    # No Markdown, no HTML, no mention: the same line is a heading, a title and a status.
    assert not re.search(r"[*_`\[\]<>|#@\\]", line)


def test_a_rule_no_one_knows_is_an_other_finding():
    odd = Finding("x", "<img src=x>@octocat", Severity.ERROR, "m")
    assert noun(RULES, odd.rule).many == "other findings"
    assert verdict_line(pr_report([odd])) == "❌ This pull request adds 1 other finding."
