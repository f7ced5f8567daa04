"""Evidence in overlap findings, `eval-firewall explain` and `eval-firewall selftest`, on real
GSM8K repositories in tmp_path, with the real model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cli_harness import invoke

from conftest import BASIC_CONFIG, git, git_commit, git_init, gsm8k
from eval_firewall import load_config, run_audits
from eval_firewall.overlap.score import COLUMNS
from eval_firewall.report import load_report, render_json

PAIRS = [json.loads(line) for line in
         (Path(__file__).parents[1] / "data" / "paraphrase_pairs.jsonl").read_text().splitlines()]
REWORDED = next(p for p in PAIRS if p["label"] == 1)
SEMANTIC_CONFIG = BASIC_CONFIG.replace("semantic: {enabled: false}",
                                       "semantic: {retriever: exact}")


def _repo(repo):
    train = gsm8k("train", 40) + [{"question": REWORDED["a"], "answer": "3"}]
    evals = gsm8k("test", 12)
    evals[4] = {**evals[4], "question": train[7]["question"]}       # exact copy: line 5
    evals[9] = {**evals[9], "question": REWORDED["b"]}              # reworded: line 10
    return repo(train, evals, SEMANTIC_CONFIG + "  provenance: {missing: off}\n")


@pytest.mark.model
def test_findings_carry_the_evidence_explain_prints(repo):
    root = _repo(repo)
    report = run_audits(load_config(root / ".eval-firewall.yml"), cache_dir=None)
    by_rule = {f.rule: f for f in report.findings if f.audit == "overlap"}
    para = by_rule["paraphrase"].evidence
    assert para.stage == "paraphrase" and set(para.features) == set(COLUMNS)
    assert para.probability >= para.min_probability == 0.4
    assert para.similarity == by_rule["paraphrase"].score >= para.threshold
    assert by_rule["exact-duplicate"].evidence.stage == "exact"
    data = json.loads(render_json(report))
    assert data["schema_version"] == 2
    assert load_report(render_json(report)) == report      # evidence survives the round trip

    shown = invoke(root, "explain", "data/eval/eval.jsonl:10", "--json", "-q")
    assert shown.exit_code == 0, shown.output
    explained = json.loads(shown.stdout)
    assert explained["rule"] == "paraphrase" and explained["match"] == "data/train/train.jsonl:41"
    best = explained["stages"]["paraphrase"][0]
    assert best["flagged"] and best["evidence"]["probability"] == para.probability
    assert best["evidence"]["features"] == dict(para.features)

    text = invoke(root, "explain", "data/eval/eval.jsonl:5", "-q")
    assert text.exit_code == 0
    assert text.stdout.startswith("eval row data/eval/eval.jsonl:5 (eval, data/eval/eval.jsonl:5)"
                                  ": flagged as exact-duplicate of train row "
                                  "data/train/train.jsonl:8\n")
    clean = invoke(root, "explain", "data/eval/eval.jsonl:4", "-q")
    assert ": not flagged\n" in clean.stdout.splitlines()[0] + "\n"
    assert "not flagged: similarity" in clean.stdout   # why its nearest rows were not


def test_explain_an_unknown_row_is_one_line(repo):
    root = _repo(repo)
    result = invoke(root, "explain", "no-such-row", "-q")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == ("eval-firewall: error: no eval row 'no-such-row': give a row id, "
                             "or path:line of an eval row (path relative to the repository "
                             "root)\n")


@pytest.mark.model
def test_a_forged_evidence_is_refused_by_load_report(repo):
    root = _repo(repo)
    data = json.loads(render_json(run_audits(load_config(root / ".eval-firewall.yml"),
                                             cache_dir=None)))
    finding = next(f for f in data["findings"] if f["rule"] == "paraphrase")
    finding["evidence"]["features"]["<script>"] = 1.0
    try:
        load_report(json.dumps(data))
    except Exception as exc:   # a UserError naming the field
        assert "evidence" in str(exc)
    else:
        raise AssertionError("a forged feature name was accepted")


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_selftest_plants_copies_and_leaves_the_repository_alone(tmp_path):
    (tmp_path / "repo").mkdir()
    root = git_init(tmp_path / "repo")
    from conftest import write_jsonl
    write_jsonl(root / "data/train/train.jsonl", gsm8k("train", 300))
    write_jsonl(root / "data/eval/eval.jsonl", gsm8k("test", 45))
    (root / ".eval-firewall.yml").write_text(BASIC_CONFIG, encoding="utf-8")
    git_commit(root, "data")
    before = _tree(root)
    result = invoke(root, "selftest", "--eval-rows", "33", "--train-rows", "200", "-q")
    assert result.exit_code == 0, result.output
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:]
            for line in result.stdout.splitlines() if line.startswith("| ")}
    assert rows["exact"][:2] == ["2", "2"] and rows["case and punctuation"][:2] == ["2", "2"]
    assert rows["re-wrapped"][1] == rows["re-wrapped"][0]
    assert sum(int(v[0]) for k, v in rows.items() if k[0].isalpha() and v[0].isdigit()) == 22
    assert "clean rows flagged: 0 of 11 (0.0%)" in result.stdout
    assert _tree(root) == before                       # byte-identical, nothing added
    assert git(root, "status", "--porcelain") == ""


@pytest.mark.model
def test_evidence_survives_the_cache(repo, tmp_path):
    root = _repo(repo)
    config = load_config(root / ".eval-firewall.yml")
    first = run_audits(config, cache_dir=tmp_path / "cache")
    again = run_audits(config, cache_dir=tmp_path / "cache")      # every result from the cache
    searched = {s.label: s.value for a in again.audits for s in a.stats}
    assert searched["eval rows searched in this run"] == 0
    evidence = [(f.rule, f.evidence) for f in first.findings if f.audit == "overlap"]
    assert evidence == [(f.rule, f.evidence) for f in again.findings if f.audit == "overlap"]
    assert any(e is not None and e.probability is not None for _, e in evidence)
