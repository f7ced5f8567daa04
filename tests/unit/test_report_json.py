"""JSON report: the fields the issue promises, and a lossless round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import BASIC_CONFIG, gsm8k
from eval_firewall import load_config, run_audits
from eval_firewall.errors import UserError
from eval_firewall.report import load_report, render_json, report_to_dict
from sample_reports import clean_report, failing_report, hostile_report, warnings_report

ROW_FIELDS = ("audit", "rule", "severity", "dataset", "path", "line", "row_id", "message")
OVERLAP_RULES = {"exact-duplicate", "near-duplicate", "eval-duplicate"}


def check_finding_fields(f: dict) -> None:
    for key in ROW_FIELDS:
        assert key in f, key
    assert f["severity"] in ("error", "warning", "notice")
    assert isinstance(f["message"], str) and f["message"]
    assert f["line"] is None or (isinstance(f["line"], int) and f["line"] >= 1)
    if f["rule"] in OVERLAP_RULES:
        assert isinstance(f["score"], float) and 0.0 <= f["score"] <= 1.0
        match = f["match"]
        assert set(match) >= {"dataset", "path", "line", "row_id"}
        assert isinstance(match["line"], int) and match["line"] >= 1


def test_promised_fields_from_a_real_run(repo):
    train = gsm8k("train", 30)
    evals = gsm8k("test", 10)
    evals[3] = {**evals[3], "question": train[5]["question"]}                    # exact copy
    evals[6] = {**evals[6], "question": train[8]["question"].replace("2", "3")}  # near copy
    evals[8] = dict(evals[1])                                                     # eval dup
    root = repo(train, evals)
    report = run_audits(load_config(root / ".eval-firewall.yml"))
    data = json.loads(render_json(report))
    assert data["status"] == "fail"
    by_rule = {f["rule"]: f for f in data["findings"]}
    assert {"exact-duplicate", "near-duplicate", "eval-duplicate", "missing-provenance"} <= \
        set(by_rule)
    for f in data["findings"]:
        check_finding_fields(f)
    exact = by_rule["exact-duplicate"]
    assert (exact["audit"], exact["severity"], exact["dataset"], exact["path"], exact["line"],
            exact["row_id"], exact["score"]) == \
        ("overlap", "error", "eval", "data/eval/eval.jsonl", 4, "data/eval/eval.jsonl:4", 1.0)
    assert {k: exact["match"][k] for k in ("dataset", "path", "line", "row_id")} == \
        {"dataset": "train", "path": "data/train/train.jsonl", "line": 6,
         "row_id": "data/train/train.jsonl:6"}
    near = by_rule["near-duplicate"]
    assert near["line"] == 7 and near["match"]["line"] == 9 and 0.8 <= near["score"] < 1.0
    dup = by_rule["eval-duplicate"]
    assert (dup["line"], dup["match"]["dataset"], dup["match"]["line"]) == (9, "eval", 2)
    assert data["summary"]["findings"] == len(data["findings"])
    assert data["summary"]["error"] == sum(f["severity"] == "error" for f in data["findings"])


def test_clean_run_passes(repo):
    config = BASIC_CONFIG + "  provenance: {missing: off}\n"
    root = repo(gsm8k("train", 20), gsm8k("test", 10), config)
    data = report_to_dict(run_audits(load_config(root / ".eval-firewall.yml")))
    assert data["status"] == "pass"
    assert data["summary"]["failing"] == 0
    assert [d["rows"] for d in data["datasets"]] == [20, 10]


def test_sample_report_serializes_every_field():
    data = report_to_dict(failing_report())
    assert data["status"] == "fail" and data["fail_on"] == "error"
    assert data["tool"] == {"name": "eval-firewall", "version": "0.1.0"}
    assert data["summary"] == {"findings": 8, "new_findings": 8, "failing": 6, "error": 6,
                               "warning": 2, "notice": 0}
    assert [a["audit"] for a in data["audits"]] == ["schema", "overlap", "provenance"]
    assert data["audits"][1]["counts"] == {"error": 2, "warning": 1, "notice": 0}
    for f in data["findings"]:
        check_finding_fields(f)
    card = next(f for f in data["findings"] if f["rule"] == "machine-generated-card")
    assert (card["row_id"], card["score"], card["match"]) == (None, None, None)
    aggregate = next(f for f in data["findings"] if f["rule"] == "missing-provenance")
    assert aggregate["count"] == 3


def test_warnings_only_report_passes():
    assert report_to_dict(warnings_report())["status"] == "pass"


@pytest.mark.parametrize("make", [failing_report, clean_report, warnings_report, hostile_report])
def test_round_trip_through_load_report(make):
    report = make()
    text = render_json(report)
    again = load_report(text)
    assert again == report
    assert render_json(again) == text


def test_json_keeps_unicode_text_as_is():
    text = render_json(hostile_report())
    assert "<script>alert('xss')</script>" in text  # JSON is data, not Markdown: unescaped
    assert json.loads(text)["findings"][0]["text"].startswith("<script>")


@pytest.mark.parametrize("bad", ["not json", "{}", '{"findings": [{"rule": "x"}]}', "[]"])
def test_load_report_rejects_what_is_not_a_report(bad: str):
    with pytest.raises(UserError) as info:
        load_report(bad, source="report.json")
    assert str(info.value).startswith("report.json: not an eval-firewall JSON report: ")


def test_load_report_of_a_file_written_by_the_cli(tmp_path: Path, repo):
    root = repo(gsm8k("train", 10), gsm8k("test", 5))
    report = run_audits(load_config(root / ".eval-firewall.yml"))
    out = tmp_path / "report.json"
    out.write_text(render_json(report), encoding="utf-8")
    assert load_report(out.read_text(encoding="utf-8")) == report


def test_schema_version_2_carries_the_digest_and_version_1_still_loads():
    from eval_firewall.findings import Finding, Severity
    from eval_firewall.report.json import SCHEMA_VERSION

    data = json.loads(render_json(failing_report()))
    assert data["schema_version"] == SCHEMA_VERSION == 2
    assert all("digest" in f for f in data["findings"])
    old = dict(data, schema_version=1)
    for f in old["findings"]:
        del f["digest"]
    assert load_report(json.dumps(old)).findings == failing_report().findings
    broken = Finding("schema", "invalid-row", Severity.ERROR, "invalid JSON", dataset="eval",
                     path="e.jsonl", line=3, digest="ab" * 16)
    assert broken.fingerprint != Finding("schema", "invalid-row", Severity.ERROR,
                                         "invalid JSON", dataset="eval", path="e.jsonl",
                                         line=3, digest="cd" * 16).fingerprint


def test_a_newer_schema_version_is_one_clear_line():
    data = json.loads(render_json(failing_report()))
    data["schema_version"] = 99
    data["findings"][0]["a_field_of_the_future"] = 1
    with pytest.raises(UserError) as err:
        load_report(json.dumps(data, indent=2), source="eval-firewall-report/report.json")
    message = str(err.value)
    assert "\n" not in message
    assert "schema_version 99" in message and "reads versions 1, 2" in message
