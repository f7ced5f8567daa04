"""Markdown report: snapshots of the templates' output, the size cap, and escaping.

Snapshots live in tests/snapshots/*.md; regenerate them with ``UPDATE_SNAPSHOTS=1`` and read
the diff before committing.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from markdown_checks import assert_inert, assert_snapshot, parse_html, table_rows, to_html

from eval_firewall.findings import AuditResult, DatasetSummary, Severity
from eval_firewall.report import render_markdown
from eval_firewall.report.escape import ZWSP, escape_md
from eval_firewall.report.markdown import INLINE_ROWS, MAX_CHARS, SNIPPET_CHARS
from sample_reports import (
    EVAL_PATH,
    HOSTILE,
    TEST,
    clean_report,
    failing_report,
    hostile_report,
    long_list_report,
    make_report,
    near_duplicates,
    overlap_stats,
    warnings_report,
)

# --- snapshots ---------------------------------------------------------------------------

def test_failing_report_snapshot():
    report = failing_report()
    text = render_markdown(report)
    assert_snapshot("failing", text)
    # The first line answers "is it OK?", grouping the failing findings by kind.
    assert text.startswith("**❌ Found 2 leaked eval rows (1 exact copy, 1 near-duplicate), "
                           "1 unreadable row, 1 eval label written by a model, ")
    assert "Not blocking: 1 eval row duplicated in the eval set and 1 gap in provenance " \
           "below the fail level (error)." in text.splitlines()[0]
    rows = {cells[0]: cells for cells in table_rows(text)}
    # Each violation: path:line, the problem with its short id, the eval text beside its match.
    where, problem, pair = rows[f"{EVAL_PATH}:3"]
    assert problem.startswith("Near-duplicate of a train row, 93% similar · `")
    assert pair.startswith("Weng earns \\$15 an hour")
    assert " ↔ data/train/train.jsonl:2 Weng earns \\$12 an hour" in pair
    # No score on an exact copy, and its text is not repeated.
    assert rows[f"{EVAL_PATH}:2"][1].startswith("Exact copy of a train row · `")
    assert rows[f"{EVAL_PATH}:2"][2].endswith("↔ data/train/train.jsonl:1 (same text)")
    # A match in the same file says only its line.
    assert rows[f"{EVAL_PATH}:9"][2].endswith("↔ line 4 (same text)")
    assert "(warning)" in rows[f"{EVAL_PATH}:9"][1]
    # Never an empty cell; every finding shows its short id.
    assert len(rows) == len(report.findings)
    assert all(all(cells) and len(cells) == 3 for cells in rows.values())
    assert rows[f"{EVAL_PATH}:7"][2] == "— (no row text)"
    assert rows[f"{EVAL_PATH}:10"][2] == "— (3 rows)"
    for f in report.findings:
        assert f"`{f.short_id}`" in text
    # Every snippet is about 100 characters.
    for cells in rows.values():
        text_part, _, match_part = cells[2].replace("\\", "").partition(" ↔ ")
        assert len(text_part) <= SNIPPET_CHARS
        assert len(match_part.split(" ", 1)[-1]) <= SNIPPET_CHARS
    # One summary table row per audit, inside the closed health section.
    health = text.split("<details><summary>Repository health: 2 datasets, 3 audits</summary>")[1]
    assert "| Schema | 1 | 0 | 0 | ❌ fail |" in health
    assert "| Overlap | 2 | 1 | 0 | ❌ fail |" in health
    assert "| Provenance | 3 | 1 | 0 | ❌ fail |" in health
    assert_inert(text)


def test_clean_report_snapshot():
    text = render_markdown(clean_report())
    assert_snapshot("clean", text)
    assert text.startswith("**✅ No problems found.**\n\n<details><summary>Repository health")
    assert "| Where |" not in text             # no empty findings table
    assert "####" not in text.split("| Audit |")[0]


def test_warnings_only_report_passes_and_lists_them():
    text = render_markdown(warnings_report())
    assert_snapshot("warnings-pass", text)
    assert text.startswith("**✅ No blocking problems: 1 eval row duplicated in the eval set and "
                           "1 gap in provenance, below the fail level (error).**\n")
    assert len(table_rows(text)) == 2
    assert "| Overlap | 0 | 1 | 0 | ⚠️ warning |" in text
    assert "| Provenance | 0 | 0 | 1 | ✅ pass |" in text


def test_long_lists_go_into_collapsible_details():
    text = render_markdown(long_list_report(14))
    assert_snapshot("long-list", text)
    visible, collapsed = text.split("<details><summary>4 more findings</summary>")
    assert len(table_rows(visible)) == INLINE_ROWS
    collapsed = collapsed.split("</details>")[0]
    assert table_rows(collapsed)[0][0] == f"{EVAL_PATH}:11"
    assert len(table_rows(collapsed)) == 4
    html = to_html(text)
    # the rest of the list, the health section and its figures
    assert html.count("<details>") == html.count("</details>") == 3


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
    listed = text.count("Near-duplicate of a train row")
    assert 0 < listed < 3000
    note = re.search(r"> \*\*Note:\*\* this report lists (\d+) of (\d+) findings to stay within "
                     r"65,000 characters; run with --format json for the full list\.", text)
    assert note and int(note.group(1)) == listed and note.group(2) == "3000"
    hidden = re.search(r"\n([\d,]+) more findings not listed here\.\n", text)
    assert hidden and int(hidden.group(1).replace(",", "")) == 3000 - listed
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
    def severity(problem: str) -> Severity:
        return next((s for s in Severity if f"({s.value}) · `" in problem), Severity.ERROR)
    severities = [severity(cells[1]) for cells in table_rows(text)]
    assert severities == sorted(severities, key=lambda s: -s.rank)
    assert severities[-1] is Severity.WARNING


# --- pull-request mode ---------------------------------------------------------------------

BASE = "0123456789abcdef0123456789abcdef01234567"


def pr_report(new: int, existing: int, text_len: int | None = None):
    findings = near_duplicates(new + existing, text_len)
    findings = [dataclasses.replace(f, new=i < new) for i, f in enumerate(findings)]
    report = make_report([AuditResult("overlap", "Overlap", findings,
                                      overlap_stats(0, len(findings), 0))],
                         eval_rows=len(findings))
    return dataclasses.replace(report, base=BASE)


def test_the_cap_is_spent_on_new_findings_first():
    report = pr_report(40, 3000, 200)
    text = render_markdown(report)
    assert len(text) <= MAX_CHARS
    new_part, health = text.split("<details><summary>Repository health: ")
    assert len(table_rows(new_part)) == 40              # every new finding listed
    listed_old = len(table_rows(health))
    assert 0 <= listed_old < 3000
    assert f"{3000 - listed_old:,} more findings of this audit not listed here." in health
    # With more new findings than fit, the old ones go first, then the new list is cut.
    report = pr_report(3000, 3000, 200)
    text = render_markdown(report)
    new_part, health = text.split("<details><summary>Repository health: ")
    assert table_rows(health) == [] and "3,000 more findings of this audit" in health
    shown = len(table_rows(new_part))
    assert 0 < shown < 3000 and f"{3000 - shown:,} more new findings not listed here." in text


def test_existing_findings_only_read_pre_existing_and_stay_folded():
    text = render_markdown(pr_report(0, 3))
    assert text.startswith("**✅ No new problems. 3 findings already present (not blocking).**")
    assert "### New in this pull request" not in text
    assert "| Overlap | 3 | 0 | 0 | pre-existing |" in text
    assert "❌" not in text
    html = to_html(text)
    assert "<details open" not in html
    assert html.index("<details><summary>Repository health") < html.index("<table>")


def test_base_is_a_short_sha_linked_to_the_compare_view_or_the_rev_as_given():
    url = f"https://github.com/o/r/compare/{BASE}...feed"
    text = render_markdown(pr_report(1, 1), compare_url=url)
    assert f"Compared with the base [`{BASE[:7]}`]({url}): 1 new finding, 1 already present." \
        in text
    assert f"Compared with the base `{BASE[:7]}`:" in render_markdown(pr_report(1, 1))
    report = pr_report(1, 1)
    report = dataclasses.replace(report, base="main")
    assert "Compared with the base **main**: " in render_markdown(report, compare_url=url)
    report = dataclasses.replace(report, base="`x` <img src=x> [a](https://evil.example)")  # from a report file
    assert_inert(render_markdown(report, compare_url=url).replace(f"]({url})", "]"))


def test_header_lines_are_paragraphs_and_details_are_closed_by_a_blank_line():
    text = render_markdown(pr_report(14, 3), changed_files=[EVAL_PATH], fixed=False)
    paragraphs = re.findall(r"<p>(.*?)</p>", to_html(text), flags=re.S)
    assert paragraphs[0].startswith("<strong>❌ This pull request adds 14 leaked eval rows")
    assert paragraphs[1].startswith("Compared with the base")
    assert paragraphs[2].startswith("<strong>What changed:</strong>")
    assert re.findall(r"</details>\n(?!\n)", text) == []
    assert "_" not in "".join(parse_html(to_html(text)).text)


def test_pair_findings_are_named_by_their_rules_pair():
    """Each overlap rule's ``pair`` names its table row: an exact copy shows no percent, a
    quoted item the share of it found in the train row, the others their similarity."""
    from sample_reports import row_finding, train_match

    findings = [row_finding("overlap", rule, Severity.ERROR, f"{rule} message", i + 1, TEST[i],
                            score=score, match=train_match(i + 1))
                for i, (rule, score) in enumerate([("exact-duplicate", 1.0), ("contained", 0.8),
                                                   ("paraphrase", 0.91)])]
    text = render_markdown(make_report([AuditResult("overlap", "Overlap", findings)]))
    assert re.search(r"\| Exact copy of a train row · `", text)
    assert "| Quoted inside a train row, 80% of it shared · `" in text
    assert "| Paraphrase of a train row, 91% similar · `" in text
    assert "message" not in text.split("Overlap figures")[0]     # the pair, not the message
