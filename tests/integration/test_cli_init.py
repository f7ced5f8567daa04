"""`eval-firewall init`: a commented config guessed from the dataset files, audited unedited."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from conftest import git, git_init, gsm8k, write_jsonl
from eval_firewall.cli import main
from eval_firewall.config import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gsm8k"


def invoke(cwd: Path, *args: str):
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def fields(ds) -> tuple:
    prov = ds.provenance.model_dump() if ds.provenance else {}
    return (ds.role, ds.paths, ds.text, ds.label, ds.id, {k: v for k, v in prov.items() if v})


def test_init_on_the_bundled_example_guesses_its_config_and_audits_unedited(tmp_path,
                                                                              static_cache):
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLE / "data", root / "data")
    shutil.copytree(EXAMPLE / "annotations", root / "annotations")
    shutil.copy(EXAMPLE / "predictions.jsonl", root)
    git_init(root)
    git(root, "add", "-A")
    result = invoke(root, "init")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "Found 7 dataset files; guessed 3 datasets:"
    assert "  skipped predictions.jsonl: no train, eval, test or dev in its path" in result.stdout
    assert result.stdout.splitlines()[-1] == \
        "Wrote .eval-firewall.yml. Check the guesses, then run: eval-firewall audit"
    written = (root / ".eval-firewall.yml").read_text(encoding="utf-8")
    assert written.startswith("# yaml-language-server: $schema=")     # editors check it
    assert written.splitlines()[1].startswith(
        "# eval-firewall configuration, guessed by `eval-firewall init`")
    assert "# label: " not in written    # every dataset got a label

    guessed = load_config(root / ".eval-firewall.yml")
    expected = load_config(EXAMPLE / ".eval-firewall.yml")
    assert sorted(fields(d) for d in guessed.datasets) == \
        sorted(fields(d) for d in expected.datasets)

    cache = tmp_path / "cache"
    shutil.copytree(static_cache / "static", cache / "static")   # no distillation here
    audit = invoke(root, "audit", "-q", "--format", "json", "--cache-dir", str(cache))
    assert audit.exit_code in (0, 1), audit.stderr
    report = json.loads(audit.stdout)
    assert {d["name"]: d["rows"] for d in report["datasets"]} == \
        {"train": 2150, "gsm8k-test": 317, "gsm8k-hard": 20}
    assert {f["rule"] for f in report["findings"]} >= {"exact-duplicate", "model-label"}


def test_init_refuses_to_overwrite_without_force(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", gsm8k("train", 5))
    write_jsonl(tmp_path / "test.jsonl", gsm8k("test", 5))
    (tmp_path / ".eval-firewall.yml").write_text("# mine\n", encoding="utf-8")
    result = invoke(tmp_path, "init")
    assert result.exit_code == 2
    assert result.stderr == ("eval-firewall: error: .eval-firewall.yml: the config file exists; "
                             "pass --force to overwrite it\n")
    assert (tmp_path / ".eval-firewall.yml").read_text(encoding="utf-8") == "# mine\n"
    result = invoke(tmp_path, "init", "--force")
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / ".eval-firewall.yml")
    assert [(d.name, d.role, d.paths, d.text, d.label) for d in config.datasets] == [
        ("train", "train", ["train.jsonl"], ["question"], "answer"),
        ("test", "eval", ["test.jsonl"], ["question"], "answer")]


def test_init_sniffs_every_format_and_skips_what_it_cannot_place(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = gsm8k("train", 6)
    pq.write_table(pa.Table.from_pylist([{"prompt": r["question"], "target": r["answer"],
                                          "model": "gpt-4o"} for r in rows]),
                   tmp_path / "train-00000.parquet")
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "dev.tsv").write_text(
        "sentence\tlabel\n" + "".join(f"review {i} was fine\tpositive\n" for i in range(4)),
        encoding="utf-8")
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "reviews.json").write_text(json.dumps(
        [{"uid": i, "review": f"great product number {i}", "sentiment": "pos"} for i in range(3)]),
        encoding="utf-8")
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    write_jsonl(tmp_path / ".venv" / "lib" / "test.jsonl", rows)     # never looked at
    write_jsonl(tmp_path / "notes.jsonl", rows)                      # no role in its name
    result = invoke(tmp_path, "init")
    assert result.exit_code == 0, result.output
    assert "  skipped notes.jsonl: no train, eval, test or dev in its path" in result.stdout
    config = load_config(tmp_path / ".eval-firewall.yml")
    got = {d.paths[0]: (d.role, d.format, d.text, d.label, d.id,
                        d.provenance.generator if d.provenance else None)
           for d in config.datasets}
    assert got == {
        "*.parquet": ("train", None, ["prompt"], "target", None, "model"),
        "dev/*.tsv": ("eval", None, ["sentence"], "label", None, None),
        "eval/*.json": ("eval", None, ["review"], "sentiment", "uid", None)}
    raw = yaml.safe_load((tmp_path / ".eval-firewall.yml").read_text(encoding="utf-8"))
    assert raw["fail_on"] == "error"


def test_hostile_field_names_cannot_add_config_keys(tmp_path):
    rows = [{"question": "What is 2 + 2?", "x\nfail_on: never\n#": 1}]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "test.jsonl", rows)
    assert invoke(tmp_path, "init").exit_code == 0
    config = load_config(tmp_path / ".eval-firewall.yml")
    assert config.fail_on == "error"


def test_no_eval_dataset_is_an_error(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", gsm8k("train", 3))
    result = invoke(tmp_path, "init")
    assert result.exit_code == 2
    assert result.stderr.startswith("eval-firewall: error: no eval dataset found among 1 "
                                    "dataset files in ")
    assert not (tmp_path / ".eval-firewall.yml").exists()


def codealpaca(n: int, empty_every: int = 2) -> list[dict]:
    """CodeAlpaca-shaped rows: `input` is empty in about half of them."""
    return [{"instruction": f"Write a function number {i} that reverses a list.",
             "input": "" if i % empty_every else f"[{i}, {i + 1}, {i + 2}]",
             "output": f"def f{i}(xs):\n    return xs[::-1]"} for i in range(n)]


@pytest.mark.model
def test_instruction_and_input_are_joined_and_output_is_the_label(tmp_path):
    """Issue #18 item 9: init chose `text: input`, empty in 54% of CodeAlpaca's rows, and the
    first audit opened with a thousand unreadable rows."""
    write_jsonl(tmp_path / "train.jsonl", codealpaca(40))
    write_jsonl(tmp_path / "test.jsonl", codealpaca(30)[10:])
    result = invoke(tmp_path, "init")
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / ".eval-firewall.yml")
    assert {(d.role, tuple(d.text), d.label) for d in config.datasets} == {
        ("train", ("instruction", "input"), "output"), ("eval", ("instruction", "input"),
                                                        "output")}
    audit = invoke(tmp_path, "audit", "-q", "--format", "json", "--no-cache")
    findings = json.loads(audit.stdout)["findings"]
    assert not [f for f in findings if f["rule"] in ("invalid-row", "empty-text")]


@pytest.mark.model
def test_a_filled_text_field_is_preferred_and_an_often_empty_one_is_warned_about(tmp_path):
    rows = [{"prompt": "" if i % 3 else f"short {i}", "context": f"a long passage {i} " * 5,
             "canonical_solution": f"return {i}"} for i in range(30)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "test.jsonl", rows[:10])
    assert invoke(tmp_path, "init").exit_code == 0
    config = load_config(tmp_path / ".eval-firewall.yml")
    assert {(tuple(d.text), d.label) for d in config.datasets} == \
        {(("context",), "canonical_solution")}
    # Only an often-empty text field: chosen, with a warning in the output and the file.
    sparse = [{"problem": "" if i % 2 else f"problem {i}", "solution": "1"} for i in range(20)]
    write_jsonl(tmp_path / "train.jsonl", sparse)
    write_jsonl(tmp_path / "test.jsonl", sparse)
    result = invoke(tmp_path, "init", "--force")
    assert result.exit_code == 0
    assert "warning: the text field problem is empty in 50% of the sampled rows" in result.stdout
    written = (tmp_path / ".eval-firewall.yml").read_text(encoding="utf-8")
    assert "# warning: the text field problem is empty in 50% of the sampled rows" in written
    report = json.loads(invoke(tmp_path, "audit", "-q", "--format", "json", "--no-cache").stdout)
    empty = [f for f in report["findings"] if f["rule"] == "empty-text"]
    assert len(empty) == 20 and not [f for f in report["findings"] if f["rule"] == "invalid-row"]
