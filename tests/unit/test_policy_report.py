"""The policy diff in the reports: the Markdown block at the top (snapshot, inert however
hostile a dataset name or value is), the JSON fields and their round trip."""

from __future__ import annotations

from dataclasses import replace

from markdown_checks import assert_inert, assert_snapshot

from eval_firewall.findings import PolicyChange
from eval_firewall.policy.effective import decide, result
from eval_firewall.report.json import SCHEMA_VERSION, load_report, render_json
from eval_firewall.report.markdown import render_markdown
from sample_reports import clean_report

HOSTILE = "x](https://evil.example)<img src=x> @everyone"
CHANGES = [
    PolicyChange("fail_on", "error", "never", "loosen", ".eval-firewall.yml", 18),
    PolicyChange(f"datasets[{HOSTILE}].role", "eval", "train", "loosen", ".eval-firewall.yml",
                 9),
    PolicyChange("waivers[3b50c234]", "none", "waived (no expiry)", "loosen",
                 ".eval-firewall-waivers.yml", 2),
    PolicyChange("severity.stale-waiver", "warning", "error", "tighten", ".eval-firewall.yml",
                 20),
]


def policy_report():
    decided = decide(CHANGES, None)
    decided[2] = replace(decided[2], status="approved", reviewer="maintainer")
    base = replace(clean_report(), base="a" * 40)
    return replace(base, audits=[*base.audits, result(decided)], policy=decided)


def test_the_policy_block_opens_the_report_and_is_inert():
    report = policy_report()
    text = render_markdown(report)
    assert_snapshot("policy", text)
    assert_inert(text)
    top = text.split("<details>")[0]
    assert top.index("relaxes the gate** (not applied") < top.index("relaxes the gate** (applied)")
    assert "approved by maintainer" in top and "tightens the gate" in top
    assert report.status == "fail" and len(report.failing()) == 2


def test_policy_fields_round_trip_through_the_json_report():
    report = replace(policy_report(), new_policy=False)
    again = load_report(render_json(report))
    assert SCHEMA_VERSION == 2
    assert list(again.policy) == list(report.policy) and again.status == "fail"
    assert "\"reviewer\": \"maintainer\"" in render_json(report)


def test_new_policy_is_said():
    report = replace(clean_report(), base="a" * 40, new_policy=True)
    text = render_markdown(report)
    assert "New policy:" in text.split("<details>")[0]
    assert load_report(render_json(report)).new_policy is True
