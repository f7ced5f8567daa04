"""``eval-firewall perturb``: the prompts file a model answers, deterministic for a seed, with
the same variants the invariance audit rebuilds."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ID_DATASETS, gsm8k, write_jsonl
from eval_firewall.cli import main
from eval_firewall.inputs.perturb import prompt_sha

CONFIG = ID_DATASETS + """\
audits:
  invariance: {seed: 4, kinds: [synonym, noise]}
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "data/eval.jsonl",
                [{"id": f"g{i:03d}", **r} for i, r in enumerate(gsm8k("test", 30))])
    write_jsonl(tmp_path / "data/train.jsonl", gsm8k("train", 3))
    (tmp_path / ".eval-firewall.yml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


def run(root: Path, *args: str):
    return CliRunner().invoke(main, ["perturb", *args, "--config",
                                     str(root / ".eval-firewall.yml")], catch_exceptions=False)


def read(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines()]


def test_writes_originals_and_variants(root: Path):
    out = root / "prompts.jsonl"
    result = run(root, "--dataset", "eval", "--output", str(out), "--kinds",
                 "reorder,synonym", "--kinds", "preamble", "--seed", "1")
    assert result.exit_code == 0, result.output
    lines = read(out)
    kinds = Counter(l["kind"] for l in lines)
    assert kinds["original"] == 30 and kinds["preamble"] == 30
    assert set(kinds) == {"original", "reorder", "synonym", "preamble"}
    assert result.stderr == (f"wrote 30 prompts of eval and their variants ({kinds['reorder']} "
                             f"reorder, {kinds['synonym']} synonym, 30 preamble) to {out} "
                             "(seed 1)\n")
    originals = {l["row_id"]: l["prompt"] for l in lines if l["kind"] == "original"}
    assert originals["g000"] == gsm8k("test", 1)[0]["question"]
    for l in lines:
        assert set(l) == {"id", "row_id", "kind", "prompt", "sha"}
        assert l["id"] == f"{l['row_id']}~{l['kind']}" and l["sha"] == prompt_sha(l["prompt"])
        assert "####" not in l["prompt"]                       # no label leaks in


def test_seed_and_kinds_default_to_the_config(root: Path):
    a, b = root / "a.jsonl", root / "b.jsonl"
    assert run(root, "--dataset", "eval", "--output", str(a)).exit_code == 0
    assert run(root, "--dataset", "eval", "--output", str(b), "--seed", "4", "--kinds",
               "synonym,noise").exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    assert {l["kind"] for l in read(a)} == {"original", "synonym", "noise"}
    c = root / "c.jsonl"
    assert run(root, "--dataset", "eval", "--output", str(c), "--seed", "5").exit_code == 0
    assert read(c) != read(a)


@pytest.mark.parametrize("args, message", [
    (["--dataset", "eval", "--output", "p.jsonl", "--kinds", "shout"],
     "Invalid value for --kinds: unknown kind 'shout' (kinds: reorder, options, synonym, "
     "preamble, noise)"),
])
def test_unknown_kind_is_a_usage_error(root: Path, args, message):
    result = run(root, *args)
    assert result.exit_code == 2 and message in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--dataset", "train", "--output", "p.jsonl"],
     "field 'dataset': 'train' is a train dataset; perturb an eval dataset"),
    (["--dataset", "eval", "--output", "p.csv"], "p.csv: the prompts file must end in .jsonl"),
])
def test_bad_requests_are_one_line_errors(root: Path, args, message, monkeypatch):
    monkeypatch.chdir(root)
    result = run(root, *args)
    assert result.exit_code == 2
    assert result.stderr == f"eval-firewall: error: {message}\n"


def test_help_names_every_option():
    result = CliRunner().invoke(main, ["perturb", "--help"])
    for option in ("--dataset", "--output", "--seed", "--kinds", "--config"):
        assert option in result.output


def test_preambles_are_neutral_by_default_and_configurable(root: Path):
    from eval_firewall.inputs.perturb import PREAMBLES

    out = root / "prompts.jsonl"
    assert run(root, "--dataset", "eval", "--output", str(out), "--kinds", "preamble"
               ).exit_code == 0
    rows = {r["row_id"]: r["question"] for r in
            ({"row_id": f"g{i:03d}", **q} for i, q in enumerate(gsm8k("test", 30)))}
    used = {l["prompt"][: -len(rows[l["row_id"]]) - 1] for l in read(out)
            if l["kind"] == "preamble"}
    assert used and used <= set(PREAMBLES)
    for sentence in PREAMBLES:   # nothing that assumes a question, a problem or a subject
        assert not {"question", "problem", "word", "math", "solve", "answer"} & set(
            sentence.lower().rstrip(".").split())
    (root / ".eval-firewall.yml").write_text(
        CONFIG.replace("{seed: 4,", '{preambles: ["Here is a product review."], seed: 4,'),
        encoding="utf-8")
    assert run(root, "--dataset", "eval", "--output", str(out), "--kinds", "preamble"
               ).exit_code == 0
    preambled = [l for l in read(out) if l["kind"] == "preamble"]
    assert len(preambled) == 30
    assert all(l["prompt"] == f"Here is a product review. {rows[l['row_id']]}"
               for l in preambled)


def test_empty_preambles_are_a_config_error(root: Path):
    (root / ".eval-firewall.yml").write_text(
        CONFIG.replace("{seed: 4,", "{preambles: [], seed: 4,"), encoding="utf-8")
    result = run(root, "--dataset", "eval", "--output", str(root / "p.jsonl"))
    assert result.exit_code == 2
    assert "field 'audits.invariance.preambles'" in result.stderr
