"""Schema audit: unreadable rows become invalid-row findings; row ids must be unique."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import gsm8k, write_jsonl
from eval_firewall.audits.schema import check
from eval_firewall.config import parse_config
from eval_firewall.datasets import load_dataset
from eval_firewall.findings import Severity

ROWS = gsm8k("test", 6)


def load_all(root: Path, id_field: bool = True):
    id_line = "    id: id\n" if id_field else ""
    config = parse_config(
        "datasets:\n"
        f"  - name: train\n    role: train\n    paths: [train/*.jsonl]\n    text: question\n"
        f"{id_line}"
        f"  - name: eval\n    role: eval\n    paths: [eval/*.jsonl]\n    text: question\n"
        f"{id_line}",
        source=".eval-firewall.yml", root=root)
    return [load_dataset(config, d) for d in config.datasets]


def test_bad_rows_are_invalid_row_findings_with_file_line_and_field(tmp_path: Path):
    write_jsonl(tmp_path / "train/t.jsonl", [{**r, "id": f"t{i}"} for i, r in enumerate(ROWS[:2])])
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval/e.jsonl").write_text("\n".join([
        json.dumps({**ROWS[2], "id": "e0"}),
        "{not json",
        json.dumps({"id": "e2", "answer": "7"}),
        json.dumps({"id": "e3", "question": ["a", "list"]}),
    ]) + "\n", encoding="utf-8")
    result = check(load_all(tmp_path))
    assert [(f.rule, f.severity, f.dataset, f.path, f.line, f.row_id, f.message)
            for f in result.findings] == [
        ("invalid-row", Severity.ERROR, "eval", "eval/e.jsonl", 2, None,
         "invalid JSON: Expecting property name enclosed in double quotes (column 2)"),
        ("invalid-row", Severity.ERROR, "eval", "eval/e.jsonl", 3, None,
         "field 'question': text field is missing"),
        ("invalid-row", Severity.ERROR, "eval", "eval/e.jsonl", 4, None,
         "field 'question': text field must be a string, got list"),
    ]
    assert all(f.audit == "schema" for f in result.findings)
    assert [(s.label, s.value) for s in result.stats] == \
        [("rows read", 3), ("rows that could not be read", 3)]


def test_invalid_row_severity_is_configurable(tmp_path: Path):
    write_jsonl(tmp_path / "train/t.jsonl", [{"id": "t", "question": "q"}])
    write_jsonl(tmp_path / "eval/e.jsonl", [{"id": "e"}])
    [finding] = check(load_all(tmp_path), "warning").findings
    assert finding.severity is Severity.WARNING


def test_duplicate_ids_within_a_dataset_across_files(tmp_path: Path):
    write_jsonl(tmp_path / "train/t.jsonl", [{**ROWS[0], "id": "x"}])
    write_jsonl(tmp_path / "eval/a.jsonl", [{**ROWS[1], "id": "x"}, {**ROWS[2], "id": 7}])
    write_jsonl(tmp_path / "eval/b.jsonl", [{**ROWS[3], "id": "7"}, {**ROWS[4], "id": "x"}])
    result = check(load_all(tmp_path))
    assert [(f.rule, f.path, f.line, f.row_id, f.message) for f in result.findings] == [
        ("duplicate-id", "eval/b.jsonl", 1, "7", "row id '7' is also used at eval/a.jsonl:2"),
        ("duplicate-id", "eval/b.jsonl", 2, "x", "row id 'x' is also used at eval/a.jsonl:1"),
    ]
    # The same id in train and eval is not a duplicate: ids are per dataset.
    assert all(f.dataset == "eval" for f in result.findings)
    assert result.findings[0].text == ROWS[3]["question"]


def test_default_ids_are_locations_and_never_collide(tmp_path: Path):
    write_jsonl(tmp_path / "train/t.jsonl", [ROWS[0]])
    write_jsonl(tmp_path / "eval/e.jsonl", [ROWS[1], ROWS[1], ROWS[1]])
    assert check(load_all(tmp_path, id_field=False)).findings == ()


def test_each_unreadable_row_has_its_own_fingerprint_from_its_bytes(tmp_path: Path):
    """Issue #18 item 3: every invalid-row of a file had one fingerprint (it hashed no row
    content), so a waiver of one legacy broken line waived every row appended there."""
    write_jsonl(tmp_path / "train/t.jsonl", [{"id": "t", "question": "q"}])
    (tmp_path / "eval").mkdir()
    lines = ["{not json", json.dumps({"id": "a", "question": ["leaked train text one"]}),
             json.dumps({"id": "b", "question": ["leaked train text two"]}),
             "{not json", "x" * 50]
    (tmp_path / "eval/e.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    findings = check(load_all(tmp_path)).findings
    assert [f.line for f in findings] == [1, 2, 3, 4, 5]
    prints = [f.fingerprint for f in findings]
    assert prints[0] == prints[3]                   # the same bytes: the same row
    assert len({prints[0], prints[1], prints[2], prints[4]}) == 4
    # Moving a line keeps its fingerprint.
    (tmp_path / "eval/e.jsonl").write_text("\n".join([lines[2], lines[1]]) + "\n",
                                           encoding="utf-8")
    moved = check(load_all(tmp_path)).findings
    assert [f.fingerprint for f in moved] == [prints[2], prints[1]]


def test_csv_and_too_long_rows_are_fingerprinted_by_their_bytes(tmp_path: Path):
    from eval_firewall.config import LimitsConfig
    from eval_firewall.datasets.delimited import read_delimited
    from eval_firewall.datasets.jsonl import read_jsonl

    (tmp_path / "a.csv").write_text("question,answer\n1,2,3\n4,5,6\nok,1\n", encoding="utf-8")
    bad = [r for _, r in read_delimited(tmp_path / "a.csv", ",") if not isinstance(r, dict)]
    assert len(bad) == 2 and bad[0].digest and bad[0].digest != bad[1].digest
    limits = LimitsConfig(max_row_bytes=64)
    (tmp_path / "b.jsonl").write_text("a" * 100 + "\n" + "b" * 100 + "\n" + "a" * 100 + "\n",
                                      encoding="utf-8")
    long = [r for _, r in read_jsonl(tmp_path / "b.jsonl", limits)]
    assert [r.message.startswith("the line is longer") for r in long] == [True] * 3
    assert long[0].digest == long[2].digest != long[1].digest


def test_unreadable_rows_past_the_listed_ones_are_one_finding(tmp_path: Path):
    """Issue #18 item 2: ten million unreadable rows were ten million findings (and a
    MemoryError). Now a file lists MAX_LISTED_PROBLEMS, and one finding stands for the rest:
    it fails like them, counts them all, and no waiver of a listed row covers it."""
    from eval_firewall.datasets import MAX_LISTED_PROBLEMS

    write_jsonl(tmp_path / "train/t.jsonl", [{"id": "t", "question": "q"}])
    (tmp_path / "eval").mkdir()
    extra = 1_234
    (tmp_path / "eval/e.jsonl").write_text("1\n" * (MAX_LISTED_PROBLEMS + extra),
                                           encoding="utf-8")
    result = check(load_all(tmp_path))
    findings = result.findings
    assert len(findings) == MAX_LISTED_PROBLEMS + 1
    last = findings[-1]
    assert (last.rule, last.severity, last.line, last.count) == \
        ("invalid-row", Severity.ERROR, MAX_LISTED_PROBLEMS + 1, extra)
    assert last.message.startswith("1,234 more unreadable rows in eval/e.jsonl")
    assert last.fingerprint not in {f.fingerprint for f in findings[:-1]}
    assert dict((s.label, s.value) for s in result.stats)["rows that could not be read"] == \
        MAX_LISTED_PROBLEMS + extra
    # One more broken row past the listed ones changes the summary's fingerprint.
    with open(tmp_path / "eval/e.jsonl", "a", encoding="utf-8") as fh:
        fh.write("2\n")
    assert check(load_all(tmp_path)).findings[-1].fingerprint != last.fingerprint
