"""The report model is immutable, its status is derived, and the Markdown templates escape
every printed value unless a filter says otherwise (issue #12, "An immutable report")."""

from __future__ import annotations

import dataclasses
import json
import re

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from eval_firewall.errors import UserError
from eval_firewall.findings import AuditResult, DatasetSummary, Severity, Stat
from eval_firewall.report import load_report, render_json, render_markdown
from eval_firewall.report.escape import escape_md
from eval_firewall.report.markdown import environment
from eval_firewall.report.text import _environment as text_environment
from sample_reports import EVAL_PATH, clean_report, failing_report, make_report, near_duplicates, row_finding

HOSTILE_MESSAGE = ("see [the docs](http://x) ![p](http://x/p.png) <img src=x onerror=alert(1)> "
                   "<b>bold</b> @user and #12 `code` *em*")


def html_of(markdown: str) -> str:
    """What GitHub's renderer makes of it, raw HTML kept (so smuggled tags show)."""
    return cmarkgfm.markdown_to_html_with_extensions(
        markdown, options=Options.CMARK_OPT_UNSAFE, extensions=["table", "autolink"])


# --- immutable -------------------------------------------------------------------------------

def test_a_report_cannot_be_changed_after_the_fact():
    report = failing_report()
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.status = "pass"                                   # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.fail_on = "never"                                 # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.audits[0].findings = ()                           # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.datasets[0].rows = 0                              # type: ignore[misc]
    with pytest.raises(AttributeError):                          # stored as tuples
        report.audits[1].findings.append(report.findings[0])     # type: ignore[attr-defined]
    assert report.status == "fail"


def test_the_lists_a_report_is_built_from_are_copied():
    findings = near_duplicates(3)
    stats = [Stat("eval rows checked", 3)]
    files = [EVAL_PATH]
    audits = [AuditResult("overlap", "Overlap", findings, stats)]
    report = make_report(audits, datasets=[DatasetSummary("eval", "eval", files, 3)])
    before = render_json(report)
    findings.clear()
    stats.append(Stat("forged", 1))
    files.append("data/other.jsonl")
    audits.clear()
    assert render_json(report) == before
    assert len(report.findings) == 3 and report.status == "fail"
    assert isinstance(report.audits, tuple) and isinstance(report.audits[0].findings, tuple)
    assert report.datasets[0].files == (EVAL_PATH,)


# --- status derived; with_fail_on ---------------------------------------------------------

def test_status_follows_the_findings_and_the_fail_level():
    report = failing_report()                                    # errors, all new
    assert report.status == "fail" and report.failing()
    relaxed = report.with_fail_on("never")
    assert relaxed.status == "pass" and relaxed.failing() == []
    assert relaxed.fail_on == "never" and relaxed.findings == report.findings
    assert report.status == "fail" and report.fail_on == "error"   # the original is as it was
    assert json.loads(render_json(relaxed))["status"] == "pass"
    assert clean_report().with_fail_on("notice").status == "pass"


def test_with_fail_on_existing_counts_findings_already_at_the_base():
    old = [dataclasses.replace(f, new=False) for f in near_duplicates(2)]
    report = dataclasses.replace(make_report([AuditResult("overlap", "Overlap", old)]),
                                 base="0" * 40)
    assert report.status == "pass"                               # existing ones do not fail
    strict = report.with_fail_on("error", fail_on_existing=True)
    assert strict.status == "fail" and len(strict.failing()) == 2
    assert strict.with_fail_on("warning").fail_on_existing      # kept when not given
    assert strict.with_fail_on("error", False).status == "pass"


def test_a_report_file_cannot_claim_a_status_its_findings_contradict():
    data = json.loads(render_json(failing_report()))
    assert data["status"] == "fail"
    data["status"] = "pass"
    loaded = load_report(json.dumps(data))
    assert loaded.status == "fail"
    assert loaded == failing_report()


def test_a_loaded_report_is_frozen_too():
    loaded = load_report(render_json(failing_report()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.base = "main"                                     # type: ignore[misc]
    assert isinstance(loaded.audits[0].stats, tuple)
    assert all(isinstance(f.severity, Severity) for f in loaded.findings)


@pytest.mark.parametrize("field,value,where", [
    ("score", "0.9", "findings.0.score"),
    ("score", float("inf"), "findings.0.score"),
    ("match", {"dataset": "train"}, "findings.0.match.path"),
    ("fingerprint", "not-hex", "findings.0.fingerprint"),
    ("count", -1, "findings.0.count"),
])
def test_the_strict_schema_names_the_field_it_refuses(field, value, where):
    data = json.loads(render_json(failing_report()))
    data["findings"][0][field] = value
    with pytest.raises(UserError) as info:
        load_report(json.dumps(data), source="report.json")
    assert str(info.value).startswith(f"report.json: not an eval-firewall JSON report: {where}")


# --- escaped by default -----------------------------------------------------------------------

def hostile_finding():
    return row_finding("overlap", "paraphrase", Severity.ERROR, HOSTILE_MESSAGE, 3,
                       "<script>x</script> @octocat www.evil.example", path="data/e](http://x).jsonl")


def test_a_template_that_forgets_escaping_still_escapes():
    f = hostile_finding()
    line = environment().from_string("| {{ f.path }}:{{ f.line }} | {{ f.message }} | {{ f.text }} |\n")
    text = line.render(f=f)
    assert text == f"| {escape_md(f.path)}:3 | {escape_md(f.message)} | {escape_md(f.text)} |\n"
    html = html_of(text)
    assert "<img" not in html and "<b>" not in html and "<script" not in html
    assert "<a " not in html and "href" not in html
    assert not re.search(r"(?<![\w\u200b])@\w", html)             # no live mention
    assert "@\u200buser" in text                                   # shown, not pinged


def test_macros_and_explicit_filters_are_not_escaped_twice():
    env = environment()
    tmpl = env.from_string(
        "{% macro cell(x) %}{{ x }}{% endmacro %}"
        "{{ cell(msg) }}|{{ msg | md(20) }}|{{ bold | raw }}|{{ n | figure }}|{{ bold }}")
    text = tmpl.render(msg="a_b <c>", n=-0.5, bold="**bold**")
    assert text == r"a\_b &lt;c&gt;|a\_b &lt;c&gt;|**bold**|-0.5|\*\*bold\*\*"


def test_the_real_templates_print_no_value_raw():
    """Every ``{{ ... }}`` in the Markdown templates is either escaped by ``finalize`` or goes
    through a filter (or macro) that returns Markup: no string is printed as it came."""
    report = dataclasses.replace(make_report([AuditResult("overlap", HOSTILE_MESSAGE,
                                                          [hostile_finding()],
                                                          [Stat(HOSTILE_MESSAGE, HOSTILE_MESSAGE)],
                                                          verdict=HOSTILE_MESSAGE)]),
                                 base=HOSTILE_MESSAGE, version=HOSTILE_MESSAGE)
    text = render_markdown(report)
    html = html_of(text)
    assert HOSTILE_MESSAGE not in text
    assert "<img" not in html and "<b>" not in html and "<script" not in html
    assert "href" not in html
    assert escape_md(HOSTILE_MESSAGE) in text


def test_the_text_templates_share_the_pattern():
    """The terminal's ``finalize``: a printed value cannot colour, retitle or command."""
    env = text_environment(False)
    value = "::error::x \x1b[31mred\x1b]0;title\x07"
    printed, clipped = env.from_string("{{ x }}\n{{ x | clip(40) }}").render(x=value).split("\n")
    for text in (printed, clipped):
        assert "\x1b" not in text and "\x07" not in text and "title" not in text
        assert not text.startswith("::") and "red" in text
