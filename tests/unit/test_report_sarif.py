"""SARIF 2.1.0: valid against the official schema, with rules, levels, locations, matches."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import jsonschema
import pytest

from conftest import gsm8k
from eval_firewall import load_config, run_audits
from eval_firewall.audits import RULES
from eval_firewall.findings import AuditResult, Finding, Severity
from eval_firewall.report import render_sarif
from sample_reports import clean_report, failing_report, hostile_report, make_report, warnings_report

SCHEMA = json.loads((Path(__file__).parents[1] / "data" / "sarif-schema-2.1.0.json")
                    .read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def sarif_of(report) -> dict:
    doc = json.loads(render_sarif(report))
    errors = sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    return doc


def test_the_schema_copy_is_the_official_one():
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    assert SCHEMA["id"].endswith("/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    # It does reject what is not SARIF.
    assert list(VALIDATOR.iter_errors({"version": "2.1.0", "runs": [{"results": []}]}))
    assert list(VALIDATOR.iter_errors({"version": "2.1.0", "runs": [{"tool": {"driver": {
        "name": "x"}}, "results": [{"message": {"text": "m"}, "level": "fatal"}]}]}))


@pytest.mark.parametrize("make", [failing_report, clean_report, warnings_report, hostile_report])
def test_every_sample_report_is_valid_sarif(make):
    doc = sarif_of(make())
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    assert run["tool"]["driver"]["name"] == "eval-firewall"
    assert len(run["results"]) == len(make().findings)


def test_results_carry_rule_level_location_and_match():
    doc = sarif_of(failing_report())
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted({f.rule for f in failing_report().findings})
    for rule in rules:
        assert rule["shortDescription"]["text"] == RULES[rule["id"]].summary
        assert rule["properties"]["audit"] == RULES[rule["id"]].audit
    by_rule = {r["ruleId"]: r for r in run["results"]}
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]

    near = by_rule["near-duplicate"]
    assert near["level"] == "error"
    assert near["message"]["text"] == "93% similar to train row data/train/train.jsonl:2"
    physical = near["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"] == {"uri": "data/eval/eval.jsonl",
                                            "uriBaseId": "%SRCROOT%"}
    assert physical["region"] == {"startLine": 3}
    related = near["relatedLocations"][0]
    assert related["physicalLocation"]["artifactLocation"]["uri"] == "data/train/train.jsonl"
    assert related["physicalLocation"]["region"] == {"startLine": 2}
    assert related["message"]["text"] == "matching row data/train/train.jsonl:2 of train"
    assert near["properties"] == {"audit": "overlap", "dataset": "eval",
                                  "rowId": "data/eval/eval.jsonl:3", "score": 0.9342,
                                  "new": True}

    assert by_rule["eval-duplicate"]["level"] == "warning"
    card = by_rule["machine-generated-card"]
    assert card["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "data/eval/README.md"
    assert run["properties"] == {"status": "fail", "failOn": "error"}


def test_notice_is_note_and_a_finding_without_a_file_points_at_the_config():
    report = make_report([AuditResult("provenance", "Provenance", [
        Finding("provenance", "missing-provenance", Severity.NOTICE, "12 rows", dataset="eval",
                count=12)])])
    [result] = sarif_of(report)["runs"][0]["results"]
    assert result["level"] == "note"
    assert result["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": ".eval-firewall.yml", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 1}}
    assert result["properties"]["count"] == 12


def test_parquet_rows_have_no_line_region_but_name_the_row():
    report = make_report([AuditResult("overlap", "Overlap", [
        Finding("overlap", "exact-duplicate", Severity.ERROR, "same text as train row x",
                dataset="eval", path="data/eval.parquet", line=1234, row_id="q-9", score=1.0)])])
    [result] = sarif_of(report)["runs"][0]["results"]
    assert "region" not in result["locations"][0]["physicalLocation"]
    assert result["message"]["text"] == "same text as train row x (row 1234)"


def test_paths_become_valid_uri_references():
    path = "data/my evals/données #1 [v2].jsonl"
    report = make_report([AuditResult("overlap", "Overlap", [
        Finding("overlap", "exact-duplicate", Severity.ERROR, "copy", dataset="eval", path=path,
                line=3, row_id=f"{path}:3", score=1.0)])])
    [result] = sarif_of(report)["runs"][0]["results"]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert unquote(uri) == path and " " not in uri


def test_fingerprints_are_stable_and_distinct():
    first = sarif_of(failing_report())["runs"][0]["results"]
    second = sarif_of(failing_report())["runs"][0]["results"]
    prints = [r["partialFingerprints"]["evalFirewallFinding/v2"] for r in first]
    assert prints == [r["partialFingerprints"]["evalFirewallFinding/v2"] for r in second]
    assert len(set(prints)) == len(prints)
    # the same fingerprint the JSON report and the waiver file use
    assert prints == [f.fingerprint for f in failing_report().findings]


def test_sarif_of_a_real_run(repo):
    train = gsm8k("train", 20)
    evals = gsm8k("test", 8)
    evals[2] = {**evals[2], "question": train[4]["question"]}
    root = repo(train, evals)
    report = run_audits(load_config(root / ".eval-firewall.yml"))
    results = sarif_of(report)["runs"][0]["results"]
    exact = next(r for r in results if r["ruleId"] == "exact-duplicate")
    assert exact["locations"][0]["physicalLocation"]["region"] == {"startLine": 3}
    assert exact["relatedLocations"][0]["physicalLocation"]["region"] == {"startLine": 5}
