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
