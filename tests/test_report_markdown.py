"""Markdown report: snapshots of the templates' output, the size cap, and escaping.

Snapshots live in tests/snapshots/*.md; regenerate them with ``UPDATE_SNAPSHOTS=1`` and read
the diff before committing.
"""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from eval_firewall.findings import AuditResult, DatasetSummary, Severity
from eval_firewall.report import render_markdown
from eval_firewall.report.escape import ZWSP, escape_md
from eval_firewall.report.markdown import INLINE_ROWS, MAX_CHARS
from sample_reports import (EVAL_PATH, HOSTILE, TEST, clean_report, failing_report,
                            hostile_report, long_list_report, make_report, near_duplicates,
                            overlap_stats, warnings_report)

SNAPSHOTS = Path(__file__).parent / "snapshots"


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.md"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no snapshot {path.name}: run with UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8"), \
        f"{path.name} differs: run with UPDATE_SNAPSHOTS=1 and review the diff"


def to_html(markdown: str) -> str:
    """What GitHub's renderer (cmark-gfm) makes of the Markdown: GFM tables, autolinks and
    strikethrough, with raw HTML kept and without the tag filter, so that any tag a row
    smuggles in shows up."""
    return cmarkgfm.markdown_to_html_with_extensions(
        markdown, options=Options.CMARK_OPT_UNSAFE,
        extensions=["table", "autolink", "strikethrough", "tasklist"])


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple] = []
        self.text: list[str] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data):
        self.text.append(data)

    def handle_comment(self, data):
        self.comments.append(data)


def parse_html(html: str) -> _Html:
    parser = _Html()
    parser.feed(html)
    return parser


# The tags our own templates produce; anything else came from data.
OWN_TAGS = {"h2", "h3", "p", "table", "thead", "tbody", "tr", "th", "td", "details", "summary",
            "code", "strong", "em", "sub", "blockquote", "br"}
MENTION = re.compile(rf"(?<![\w{ZWSP}])[@#](?!{ZWSP})\w")


def assert_inert(markdown: str) -> _Html:
    """No tag, link, image, comment or mention that a row could have put there."""
    page = parse_html(to_html(markdown))
    assert set(page.tags) <= OWN_TAGS, set(page.tags) - OWN_TAGS
    assert page.attrs == [("align", "right")] * len(page.attrs)  # numeric table columns only
    assert page.comments == []
    text = "".join(page.text)
    assert not MENTION.search(text), MENTION.search(text)
    assert "://" not in text and "www." not in text
    return page


# --- snapshots ---------------------------------------------------------------------------

def test_failing_report_snapshot():
    text = render_markdown(failing_report())
    assert_snapshot("failing", text)
    assert text.startswith("## ❌ eval-firewall: failed\n")
    assert "**6 findings at or above the fail level (error)**: 6 errors, 2 warnings, 0 notices." \
        in text
    # Each violation: path:line, the eval text, and beside it the match with its location.
    near = next(line for line in text.splitlines() if "`near-duplicate`" in line)
    cells = [c.strip() for c in near.split(" | ")]
    assert cells[0] == f"| {EVAL_PATH}:3"
    assert cells[4].startswith("Weng earns \\$15 an hour")
    assert cells[5].startswith("data/train/train.jsonl:2 Weng earns \\$12 an hour")
    assert "(score 0.93)" in cells[3]
    # One summary table row per audit.
    assert "| Schema | 1 | 0 | 0 | ❌ fail |" in text
    assert "| Overlap | 2 | 1 | 0 | ❌ fail |" in text
    assert "| Provenance | 3 | 1 | 0 | ❌ fail |" in text
    assert_inert(text)


def test_clean_report_snapshot():
    text = render_markdown(clean_report())
    assert_snapshot("clean", text)
    assert text.startswith("## ✅ eval-firewall: passed\n\nNo findings: the eval set passes "
                           "every audit.\n")
    assert text.count("No findings.") == 3
    assert "| " not in text.split("### Schema")[1].split("<details>")[0]  # no findings table


def test_warnings_only_report_passes_and_lists_them():
    text = render_markdown(warnings_report())
    assert_snapshot("warnings-pass", text)
    assert "## ✅ eval-firewall: passed" in text
    assert "No finding at or above the fail level (error); 0 errors, 1 warning, 1 notice " \
           "listed below." in text
    assert "| Overlap | 0 | 1 | 0 | ⚠️ warning |" in text
    assert "| Provenance | 0 | 0 | 1 | ✅ pass |" in text


def test_long_lists_go_into_collapsible_details():
    text = render_markdown(long_list_report(14))
    assert_snapshot("long-list", text)
    visible, collapsed = text.split("<details><summary>4 more findings</summary>")
    rows = [line for line in visible.splitlines() if "`near-duplicate`" in line]
    assert len(rows) == INLINE_ROWS
    assert [line for line in collapsed.splitlines() if "`near-duplicate`" in line][0] \
        .startswith(f"| {EVAL_PATH}:11 |")
    assert collapsed.count("`near-duplicate`") == 4
    html = to_html(text)
    assert html.count("<details>") == html.count("</details>") == 2  # figures + the rest


def test_exactly_ten_findings_need_no_details():
    text = render_markdown(long_list_report(INLINE_ROWS))
    assert "more finding" not in text


def test_hostile_rows_snapshot_is_inert():
    text = render_markdown(hostile_report())
    assert_snapshot("hostile", text)
    page = assert_inert(text)
    # The text is still there for a person to read.
    shown = "".join(page.text).replace(ZWSP, "")
    assert "<script>alert('xss')</script> How many apples?" in shown
    assert "[click here](https://evil.example/phish)" in shown
    assert "@octocat and @github/security-team" in shown
    assert "<b>@everyone</b> [x](https://evil.example)" in shown


# --- the md filter -----------------------------------------------------------------------

@pytest.mark.parametrize("text", HOSTILE + [
    "<a href='https://evil.example'>x</a>", "<https://evil.example>", "[x]: https://evil.example",
    "javascript:alert(1)", "&#x3C;script&#x3E;", "a\nb\r\nc\u2028d", "\\[x](http://e.example)",
    "https://user@evil.example", "![](data:image/png;base64,AAAA)", "> quote\n- item\n1. one",
    "<!-- eval-firewall -->", "WWW.EVIL.EXAMPLE", "HTTPS://EVIL.EXAMPLE",
])
def test_md_filter_makes_each_hostile_text_inert(text: str):
    escaped = escape_md(text)
    assert "\n" not in escaped and "<" not in escaped
    # Inside a table cell, as in the report.
    assert_inert(f"| a |\n|---|\n| {escaped} |\n")
    # And as a paragraph of its own.
    assert_inert(escaped + "\n")


def test_md_filter_keeps_ordinary_text_readable():
    question = TEST[0]
    page = parse_html(to_html(escape_md(question)))
    assert "".join(page.text).strip() == question
    assert escape_md(None) == ""
    assert escape_md(42) == "42"


def test_md_filter_limit_counts_the_raw_text():
    assert escape_md("abcdefghij", 5) == "abcd…"
    assert escape_md("<<<<<<", 3) == "&lt;&lt;…"
    assert escape_md("a  \n\t b") == "a b"


# --- the size cap ------------------------------------------------------------------------

def test_report_stays_under_the_cap_and_says_what_was_left_out():
    report = make_report([AuditResult("overlap", "Overlap", near_duplicates(3000, 200),
                                      overlap_stats(0, 3000, 0))], eval_rows=3000)
    text = render_markdown(report)
    assert len(text) <= MAX_CHARS == 65_000
    listed = text.count("`near-duplicate`")
    assert 0 < listed < 3000
    note = re.search(r"> \*\*Note:\*\* this report lists (\d+) of (\d+) findings to stay within "
                     r"65,000 characters; run with --format json for the full list\.", text)
    assert note and int(note.group(1)) == listed and note.group(2) == "3000"
    hidden = re.search(r"_(\d+) more findings of this audit not listed here\._", text)
    assert hidden and int(hidden.group(1)) == 3000 - listed
    assert to_html(text).count("<details>") == to_html(text).count("</details>")


def test_a_report_that_fits_has_no_note():
    text = render_markdown(long_list_report(40))
    assert "Note:" not in text and "not listed here" not in text


def test_the_cap_holds_even_when_nothing_but_the_dataset_table_is_left():
    datasets = [DatasetSummary(f"eval-shard-{i:04d}", "eval", [f"data/s{i}.jsonl"], 10)
                for i in range(400)]
    report = make_report([AuditResult("overlap", "Overlap", near_duplicates(5),
                                      overlap_stats(0, 5, 0))], datasets=datasets)
    text = render_markdown(report, max_chars=8_000)
    assert len(text) <= 8_000
    assert text.endswith("\n\n> **Note:** report cut at 8,000 characters; run with --format "
                         "json for the full list.\n")


def test_severity_order_within_an_audit():
    text = render_markdown(failing_report())
    provenance = text.split("### Provenance")[1]
    severities = [line.split(" | ")[2] for line in provenance.splitlines()
                  if line.startswith("| data/")]
    assert severities == sorted(severities, key=lambda s: -Severity(s).rank)
