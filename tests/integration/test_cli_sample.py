"""``eval-firewall sample``: blind sheets in CSV and JSONL, deterministic, stratified,
reproducible from the sheet alone, never holding a label, never overwriting answers."""

from __future__ import annotations

import csv
import io
import json
import shlex
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ID_DATASETS, gsm8k, write_jsonl
from eval_firewall.cli import main
from eval_firewall.config import load_config
from eval_firewall.datasets import load_dataset
from eval_firewall.inputs.annotations import read_sheet, row_sha

CONFIG = ID_DATASETS
TOPICS = ["money"] * 60 + ["time"] * 30 + ["shapes"] * 10


@pytest.fixture
def root(tmp_path: Path) -> Path:
    rows = [{"id": f"g{i:03d}", "topic": topic, **r}
            for i, (topic, r) in enumerate(zip(TOPICS, gsm8k("test", 100)))]
    rows[7]["meta"] = {"topic": "nested"}
    write_jsonl(tmp_path / "data/eval.jsonl", rows)
    write_jsonl(tmp_path / "data/train.jsonl", gsm8k("train", 3))
    (tmp_path / ".eval-firewall.yml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


def run(root: Path, *args: str):
    return CliRunner().invoke(main, ["sample", *args, "--config",
                                     str(root / ".eval-firewall.yml")], catch_exceptions=False)


def body(path: Path) -> list[list[str]]:
    text = "".join(l for l in path.read_text(encoding="utf-8").splitlines(keepends=True)
                   if not l.startswith("#"))
    return list(csv.reader(io.StringIO(text)))


def eval_rows(root: Path):
    config = load_config(root / ".eval-firewall.yml")
    return load_dataset(config, config.dataset("eval")).rows


def test_csv_sheet_is_blind_and_complete(root: Path):
    out = root / "annotations/sheet.csv"
    result = run(root, "--dataset", "eval", "--n", "12", "--seed", "5", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert result.stderr == f"wrote 12 of 100 rows of eval to {out} (seed 5)\n"
    text = out.read_text(encoding="utf-8")
    head = [l for l in text.splitlines() if l.startswith("#")]
    assert head[:5] == ["# eval-firewall annotation sheet (format 1)", "# dataset: eval",
                        "# seed: 5", "# n: 12", "# population: 100"]
    assert any("without looking at the dataset's answers" in l for l in head)
    records = body(out)
    assert records[0] == ["row_id", "sha", "annotator", "text", "answer"]
    by_id = {r.row_id: r for r in eval_rows(root)}
    ids = [r[0] for r in records[1:]]
    assert len(ids) == len(set(ids)) == 12
    assert ids == sorted(ids)                                   # dataset order
    for rid, sha, annotator, question, answer in records[1:]:
        assert question == by_id[rid].text and sha == row_sha(by_id[rid])
        assert annotator == "" and answer == ""
    for r in by_id.values():                                   # no label anywhere
        assert r.label not in text
        assert "#### " not in text


def test_jsonl_sheet(root: Path):
    out = root / "sheet.jsonl"
    assert run(root, "--dataset", "eval", "--n", "4", "--output", str(out)).exit_code == 0
    lines = [json.loads(l) for l in out.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["eval_firewall_sheet"] == 1
    assert (lines[0]["dataset"], lines[0]["seed"], lines[0]["n"], lines[0]["stratify"]) == (
        "eval", 0, 4, None)
    assert "without looking at the dataset's answers" in lines[0]["instructions"]
    assert [set(l) for l in lines[1:]] == [{"row_id", "sha", "annotator", "text", "answer"}] * 4
    sheet = read_sheet(out, "sheet.jsonl")
    assert sheet.meta.dataset == "eval" and sheet.meta.n == 4
    assert [a.line for a in sheet.annotations] == [2, 3, 4, 5]
    assert all(a.answer is None and a.annotator == "sheet" for a in sheet.annotations)


def test_deterministic_for_a_seed(root: Path):
    for name, seed in (("a.csv", "3"), ("b.csv", "3"), ("c.csv", "4")):
        assert run(root, "--dataset", "eval", "--n", "10", "--seed", seed, "--output",
                   str(root / name)).exit_code == 0
    a, b, c = (body(root / n) for n in ("a.csv", "b.csv", "c.csv"))
    assert a == b and a != c


def test_reproducible_from_the_committed_sheet_alone(root: Path):
    first = root / "annotations/ana.csv"
    assert run(root, "--dataset", "eval", "--n", "15", "--seed", "9", "--stratify", "topic",
               "--output", str(first)).exit_code == 0
    [command] = [l.split(": ", 1)[1] for l in first.read_text(encoding="utf-8").splitlines()
                 if l.startswith("# reproduce: ")]
    args = shlex.split(command)
    assert args[:2] == ["eval-firewall", "sample"]
    again = root / "again.csv"
    args[args.index("--output") + 1] = str(again)
    assert run(root, *args[2:]).exit_code == 0
    assert body(again) == body(first)


def test_stratified_shares_are_proportional(root: Path):
    out = root / "s.csv"
    result = run(root, "--dataset", "eval", "--n", "20", "--stratify", "topic", "--output",
                 str(out))
    assert result.exit_code == 0
    assert "stratified by topic" in result.stderr
    topic = {f"g{i:03d}": t for i, t in enumerate(TOPICS)}
    assert Counter(topic[r[0]] for r in body(out)[1:]) == {"money": 12, "time": 6, "shapes": 2}
    assert "# stratify: topic" in out.read_text(encoding="utf-8")


def test_stratify_by_a_nested_field_with_missing_values(root: Path):
    out = root / "s.csv"
    assert run(root, "--dataset", "eval", "--n", "100", "--stratify", "meta.topic", "--output",
               str(out)).exit_code == 0
    assert len(body(out)) == 101


@pytest.mark.parametrize("args, message", [
    (["--n", "101"], "field 'n': cannot sample 101 rows from a dataset of 100 rows"),
    (["--n", "0"], "field 'n': --n must be at least 1"),
    (["--stratify", "nope"], "field 'stratify': no row has the field 'nope'"),
])
def test_bad_requests_are_one_line_errors(root: Path, args, message):
    result = run(root, "--dataset", "eval", *args, "--output", str(root / "s.csv"))
    assert result.exit_code == 2
    assert result.stderr == f"eval-firewall: error: {message}\n"
    assert not (root / "s.csv").exists()


def test_refuses_to_overwrite_a_sheet_unless_forced(root: Path):
    out = root / "ana.csv"
    out.write_text("row_id,answer\ng001,42\n", encoding="utf-8")
    result = run(root, "--dataset", "eval", "--n", "3", "--output", str(out))
    assert result.exit_code == 2
    assert result.stderr == (f"eval-firewall: error: {out}: the output file exists (it may hold "
                             "answers); pass --force to overwrite it\n")
    assert out.read_text(encoding="utf-8") == "row_id,answer\ng001,42\n"
    assert run(root, "--dataset", "eval", "--n", "3", "--output", str(out),
               "--force").exit_code == 0
    assert len(body(out)) == 4


@pytest.mark.parametrize("args, message", [
    (["--dataset", "train", "--output", "x.csv"],
     "field 'dataset': 'train' is a train dataset; sample an eval dataset"),
    (["--dataset", "nope", "--output", "x.csv"],
     ".eval-firewall.yml: no dataset named 'nope' (datasets: train, eval)"),
    (["--dataset", "eval", "--output", "x.txt"],
     "x.txt: an annotation sheet must end in .csv or .jsonl"),
])
def test_wrong_dataset_or_format(root: Path, args, message, monkeypatch):
    monkeypatch.chdir(root)
    result = run(root, *args)
    assert result.exit_code == 2
    assert result.stderr == f"eval-firewall: error: {message}\n"


def test_help_names_every_option():
    result = CliRunner().invoke(main, ["sample", "--help"])
    for option in ("--dataset", "--n", "--seed", "--stratify", "--output", "--force",
                   "--config"):
        assert option in result.output


def test_unreadable_rows_are_named_not_silently_dropped(root: Path):
    path = root / "data/eval.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = '{"id": "broken", '
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = root / "s.csv"
    result = run(root, "--dataset", "eval", "--n", "5", "--output", str(out))
    assert result.exit_code == 0
    assert result.stderr.splitlines()[0].startswith(
        "eval-firewall: 1 unreadable rows were not sampled (first at data/eval.jsonl:3: "
        "invalid JSON")
    assert "# population: 99" in out.read_text(encoding="utf-8")


def test_instructions_fit_any_dataset_and_list_a_few_label_values(tmp_path: Path):
    reviews = [{"id": f"r{i}", "question": f"Review {i}: the blender {w} after a week.",
                "answer": label}
               for i, (w, label) in enumerate([("broke", "negative"), ("still works", "positive"),
                                               ("is fine", "neutral")] * 10)]
    write_jsonl(tmp_path / "data/eval.jsonl", reviews)
    write_jsonl(tmp_path / "data/train.jsonl", gsm8k("train", 3))
    (tmp_path / ".eval-firewall.yml").write_text(CONFIG, encoding="utf-8")
    out = tmp_path / "sheet.csv"
    assert run(tmp_path, "--dataset", "eval", "--n", "6", "--output", str(out)).exit_code == 0
    head = "\n".join(l for l in out.read_text(encoding="utf-8").splitlines()
                     if l.startswith("#")).replace(str(tmp_path), "")   # its path may hold a 42
    assert '"answer" column: one of "negative", "neutral", "positive".' in head
    assert "42" not in head and "question" not in head.lower().split("reproduce")[0]
    out = tmp_path / "sheet.jsonl"
    assert run(tmp_path, "--dataset", "eval", "--n", "6", "--output", str(out)).exit_code == 0
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert 'one of "negative", "neutral", "positive".' in first["instructions"]


def test_many_or_unique_label_values_are_not_listed(root: Path):
    # GSM8K: a number per question, mostly distinct: listing them would give answers away.
    out = root / "sheet.csv"
    assert run(root, "--dataset", "eval", "--n", "5", "--output", str(out)).exit_code == 0
    head = [l.replace(str(root), "") for l in out.read_text(encoding="utf-8").splitlines()
            if l.startswith("#")]                 # the sheet's path may hold a 42 (pytest-342)
    assert '#   Write only your answer in the "answer" column, as short as the question ' \
           'allows.' in head
    assert not any("one of" in l or "42" in l for l in head)


def test_a_label_field_no_row_has_is_a_config_error(root: Path):
    (root / ".eval-firewall.yml").write_text(CONFIG.replace("label: answer", "label: gold"),
                                             encoding="utf-8")
    result = run(root, "--dataset", "eval", "--n", "3", "--output", str(root / "s.csv"))
    assert result.exit_code == 2
    assert result.stderr.startswith("eval-firewall: error: .eval-firewall.yml:10: field "
                                     "'datasets[1].label': no row of dataset 'eval' has a field "
                                     "'gold' (fields: id, topic, question, answer")
    assert not (root / "s.csv").exists()
