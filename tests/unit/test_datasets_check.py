"""The config checked against the data: a configured field no row has is one config error."""

from __future__ import annotations

import json

import pytest
from cli_harness import CLEAN_CONFIG, EVAL, TRAIN, one_error_line, run

from conftest import BASIC_CONFIG, write_jsonl

FIELDS = "id, question, answer"


def with_ids(rows: list[dict], prefix: str) -> list[dict]:
    return [{"id": f"{prefix}{i}", **r} for i, r in enumerate(rows)]


PROVENANCE = CLEAN_CONFIG.replace(
    "    label: answer\naudits:",
    "    label: answer\n    id: id\n    provenance:\n      label_source: meta.label_source\n"
    "      verified_by: meta.verified_by\naudits:")


def with_meta(rows: list[dict]) -> list[dict]:
    return [{**r, "meta": {"label_source": "human", "verified_by": None}} for r in rows]


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.replace("label: answer\n    id: id", "label: answr\n    id: id"),
     ".eval-firewall.yml:11: field 'datasets[1].label': no row of dataset 'eval' has a field "
     "'answr' (fields: id, question, answer, meta.label_source, meta.verified_by) "
     "(did you mean 'answer'?)"),
    (lambda c: c.replace("    text: [question]\n    label: answer\n    id",
                         "    text: [Question]\n    label: answer\n    id"),
     ".eval-firewall.yml:10: field 'datasets[1].text': no row of dataset 'eval' has a field "
     "'Question' (fields: id, question, answer, meta.label_source, meta.verified_by) "
     "(did you mean 'question'?)"),
    (lambda c: c.replace("id: id", "id: row_id"),
     ".eval-firewall.yml:12: field 'datasets[1].id': no row of dataset 'eval' has a field "
     "'row_id' (fields: id, question, answer, meta.label_source, meta.verified_by)"),
])
def test_a_field_no_row_has_is_one_config_error(repo, edit, message: str):
    root = repo(TRAIN, with_meta(with_ids(EVAL, "e")), edit(PROVENANCE))
    one_error_line(run(root, "-q"), message)


def test_a_provenance_field_no_row_has_is_a_warning_with_the_did_you_mean(repo):
    """Issue #18 item 8: provenance fields are optional per row, so a path no row has is a
    warning (the audit runs), never the config error it became."""
    root = repo(TRAIN, with_meta(with_ids(EVAL, "e")),
                PROVENANCE.replace("meta.label_source", "meta.labelsource"))
    result = run(root, "-q", "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    assert result.stderr == (
        "eval-firewall: warning: .eval-firewall.yml:14: field "
        "'datasets[1].provenance.label_source': no row of dataset 'eval' has a field "
        "'meta.labelsource' (fields: id, question, answer, meta.label_source, "
        "meta.verified_by) (did you mean 'meta.label_source'?)\n")
    assert json.loads(result.stdout)["status"] in ("pass", "fail")


def test_a_model_labelled_train_set_with_no_verified_by_audits(repo):
    """The newcomer's config from the issue: nobody verified the model's train labels, so no
    train row has `info.checker`; the run used to stop on it."""
    config = CLEAN_CONFIG.replace(
        "  - name: train\n    role: train",
        "  - name: synth-train\n    role: train").replace(
        "    label: answer\n  - name: eval",
        "    label: answer\n    provenance: {label_source: info.source, verified_by: info.checker,"
        " generator: info.generator}\n  - name: eval")
    assert "info.checker" in config
    train = [{**r, "info": {"source": "gpt-4o", "generator": "gpt-4o"}} for r in TRAIN]
    result = run(repo(train, EVAL, config), "-q", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert "no row of dataset 'synth-train' has a field 'info.checker'" in result.stderr
    assert result.stderr.startswith("eval-firewall: warning: ")


def test_the_config_error_wins_over_an_invalid_row_per_row(repo):
    root = repo(TRAIN, EVAL, BASIC_CONFIG.replace("[question]", "[prompt]", 1))
    result = run(root, "-q", "--format", "json")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(
        "eval-firewall: error: .eval-firewall.yml:5: field 'datasets[0].text': no row of "
        "dataset 'train' has a field 'prompt' (fields: question, answer)")
    assert result.stderr.count("\n") == 1


def test_fields_present_but_empty_or_missing_from_some_rows_are_not_config_errors(repo):
    # Every label is null: the field exists, the labels are just empty (not a config mistake).
    evals = [{**r, "answer": None} for r in with_meta(with_ids(EVAL, "e"))]
    evals[3] = {"id": "e3", "answer": "1"}          # one row without the text field
    root = repo(TRAIN, evals, PROVENANCE)
    result = run(root, "-q", "--format", "json")
    assert result.exit_code == 1, result.stderr
    findings = json.loads(result.stdout)["findings"]
    # verified_by is null everywhere too: each row is unverified, which is a true finding.
    assert {(f["rule"], f["line"]) for f in findings} == {
        ("invalid-row", 4), *(("unverified-label", n) for n in range(1, 13) if n != 4)}


def test_a_csv_column_no_header_has_is_named_with_the_columns(repo, tmp_path):
    (tmp_path / "data/hard").mkdir(parents=True)
    (tmp_path / "data/hard/hard.csv").write_text(
        "question,gold\n" + "".join(f"q{i} is a question?,{i}\n" for i in range(5)),
        encoding="utf-8")
    config = BASIC_CONFIG.replace("audits:", "  - name: hard\n    role: eval\n"
                                  "    paths: [data/hard/*.csv]\n    text: question\n"
                                  "    label: answer\naudits:")
    root = repo(TRAIN, EVAL, config)
    one_error_line(run(root, "-q"),
                   ".eval-firewall.yml:16: field 'datasets[2].label': no row of dataset 'hard' "
                   "has a field 'answer' (fields: question, gold)")


def test_the_bundled_shape_of_nested_fields_is_listed(tmp_path, repo):
    rows = [{"q": {"text": r["question"]}, "answer": r["answer"]} for r in EVAL]
    write_jsonl(tmp_path / "nested.jsonl", rows)
    root = repo(TRAIN, rows, BASIC_CONFIG.replace("    text: [question]\n    label: answer\n"
                                                  "audits", "    text: [q.txt]\n"
                                                  "    label: answer\naudits"))
    one_error_line(run(root, "-q"),
                   ".eval-firewall.yml:10: field 'datasets[1].text': no row of dataset 'eval' "
                   "has a field 'q.txt' (fields: q.text, answer) (did you mean 'q.text'?)")
