"""Unreadable rows under a waiver and in bulk (issue #18, items 2 and 3), judged as a pull
request (`--base`) in a real git repository."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import BASIC_CONFIG, git_commit, git_init, gsm8k, write_jsonl
from eval_firewall.config import load_config
from eval_firewall.engine import run_audits
from eval_firewall.policy.waivers import entry_text
from eval_firewall.report.verdict import verdict_line

TRAIN = gsm8k("train", 60)
EVAL = gsm8k("test", 10)
LEGACY = '{"question": "a legacy row broken long ago", "answer": 1'


def repo_with_a_waived_broken_line(tmp_path: Path) -> tuple[Path, str]:
    root = git_init(tmp_path)
    write_jsonl(root / "data/train/train.jsonl", TRAIN)
    write_jsonl(root / "data/eval/eval.jsonl", EVAL)
    with open(root / "data/eval/eval.jsonl", "a", encoding="utf-8") as fh:
        fh.write(LEGACY + "\n")
    (root / ".eval-firewall.yml").write_text(BASIC_CONFIG + "  provenance: {enabled: false}\n",
                                             encoding="utf-8")
    report = run_audits(load_config(root / ".eval-firewall.yml"))
    [broken] = [f for f in report.findings if f.rule == "invalid-row"]
    (root / ".eval-firewall-waivers.yml").write_text(
        entry_text(broken.fingerprint, "legacy line, kept for history", "maintainer"),
        encoding="utf-8")
    return root, git_commit(root, "base: one waived broken line")


def test_a_waiver_of_one_broken_line_covers_no_row_a_pull_request_appends(tmp_path: Path):
    root, base = repo_with_a_waived_broken_line(tmp_path)
    with open(root / "data/eval/eval.jsonl", "a", encoding="utf-8") as fh:
        for row in TRAIN[:50]:         # train text smuggled in as unreadable rows
            fh.write(json.dumps({"question": [row["question"]], "answer": row["answer"]}) + "\n")
    report = run_audits(load_config(root / ".eval-firewall.yml"), base=base)
    invalid = [f for f in report.findings if f.rule == "invalid-row"]
    assert len(invalid) == 51
    assert [f.line for f in invalid if f.waived is not None] == [len(EVAL) + 1]
    assert sum(1 for f in invalid if f.waived is None and f.new) == 50
    assert report.status == "fail"
    assert verdict_line(report).startswith("❌ This pull request adds 50 unreadable rows.")


def test_the_waived_line_alone_still_passes(tmp_path: Path):
    root, base = repo_with_a_waived_broken_line(tmp_path)
    write_jsonl(root / "data/train/train.jsonl", TRAIN[:-1])         # an unrelated change
    report = run_audits(load_config(root / ".eval-firewall.yml"), base=base)
    assert report.status == "pass"
    [waived] = [f for f in report.findings if f.rule == "invalid-row"]
    assert waived.waived is not None


def test_many_unreadable_rows_are_bounded_and_the_rest_fail_unwaivable(tmp_path: Path):
    from eval_firewall.datasets import MAX_LISTED_PROBLEMS

    root, base = repo_with_a_waived_broken_line(tmp_path)
    more = 2 * MAX_LISTED_PROBLEMS
    with open(root / "data/eval/eval.jsonl", "a", encoding="utf-8") as fh:
        fh.write("1\n" * more)
    report = run_audits(load_config(root / ".eval-firewall.yml"), base=base)
    invalid = [f for f in report.findings if f.rule == "invalid-row"]
    assert len(invalid) == MAX_LISTED_PROBLEMS + 1
    rest = invalid[-1]
    assert rest.count == more + 1 - MAX_LISTED_PROBLEMS and rest.waived is None and rest.new
    assert report.status == "fail"
    assert "adds 2,000 unreadable rows" in verdict_line(report)
