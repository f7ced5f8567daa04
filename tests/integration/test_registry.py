"""The audit registry: an extra audit is one module plus one registration line, and runs end to
end (config severity, --base attribution, JSON, Markdown and SARIF) like the built-in ones."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import toy_audit

import eval_firewall
from conftest import BASIC_CONFIG, git_commit, git_init, gsm8k, write_jsonl
from eval_firewall.audits import AUDITS, RULES, register_audit, rule_catalogue
from eval_firewall.config import load_config
from eval_firewall.engine import run_audits
from eval_firewall.errors import UserError
from eval_firewall.findings import Severity
from eval_firewall.report import load_report, render_json, render_markdown, render_sarif
from eval_firewall.report.verdict import verdict_line

WITH_TOY = register_audit(toy_audit.ENTRY)      # the registration line


def _repo(tmp_path: Path, shout: bool) -> Path:
    evals = gsm8k("test", 6)
    if shout:
        evals[4] = {**evals[4], "question": "TOY " + evals[4]["question"]}
    write_jsonl(tmp_path / "data/train/train.jsonl", gsm8k("train", 20))
    write_jsonl(tmp_path / "data/eval/eval.jsonl", evals)
    config = BASIC_CONFIG + "severity:\n  toy-row: error\n"
    (tmp_path / ".eval-firewall.yml").write_text(config, encoding="utf-8")
    return tmp_path


def test_registering_builds_a_new_registry_and_leaves_the_default_alone():
    assert WITH_TOY[:-1] == AUDITS and WITH_TOY[-1] is toy_audit.ENTRY
    assert "toy" not in {a.name for a in AUDITS} and "toy-row" not in RULES
    assert rule_catalogue(WITH_TOY)["toy-row"].audit == "toy"
    with pytest.raises(ValueError, match="already registered"):
        register_audit(toy_audit.ENTRY, WITH_TOY)


def test_the_config_checks_severity_keys_against_the_catalogue_it_is_given(tmp_path: Path):
    path = _repo(tmp_path, shout=False) / ".eval-firewall.yml"
    assert load_config(path, rules=rule_catalogue(WITH_TOY)).severity == {"toy-row": "error"}
    with pytest.raises(UserError, match="unknown rule") as err:
        load_config(path, rules=RULES)
    assert err.value.field == "severity.toy-row"
    with pytest.raises(UserError, match="unknown rule"):   # run_audits checks with its registry
        run_audits(load_config(path), cache_dir=None)


def test_a_registered_toy_audit_runs_end_to_end(tmp_path: Path):
    root = git_init(_repo(tmp_path, shout=False))
    git_commit(root, "base: no row shouts")
    _repo(tmp_path, shout=True)
    rules = rule_catalogue(WITH_TOY)
    config = load_config(root / ".eval-firewall.yml", rules=rules)
    report = run_audits(config, cache_dir=None, base="HEAD", audits=WITH_TOY)

    toy = next(r for r in report.audits if r.audit == "toy")
    assert [a.audit for a in report.audits][-1] == "toy"      # registry order
    [finding] = toy.findings
    assert finding.severity is Severity.ERROR                  # from the config, not the rule
    assert finding.line == 5 and finding.new is True           # re-run at the base: not there
    assert report.status == "fail"

    doc = json.loads(render_json(report))
    [listed] = [f for f in doc["findings"] if f["rule"] == "toy-row"]
    assert listed["audit"] == "toy" and listed["severity"] == "error" and listed["new"] is True

    markdown = render_markdown(report)
    assert "| data/eval/eval.jsonl:5 | the row shouts TOY" in markdown
    assert "| Toy | 1 | 0 | 0 | ❌ fail |" in markdown

    assert render_sarif(report) == render_sarif(report, rules)     # the report knows its rules
    sarif = json.loads(render_sarif(report))["runs"][0]
    [rule] = [r for r in sarif["tool"]["driver"]["rules"] if r["id"] == "toy-row"]
    assert rule["shortDescription"]["text"] == "An eval row shouts TOY."
    assert rule["properties"]["audit"] == "toy"
    [result] = [r for r in sarif["results"] if r["ruleId"] == "toy-row"]
    assert result["level"] == "error" and result["properties"]["new"] is True


def test_the_toy_renders_with_its_own_noun_and_its_figures_open_as_configured(tmp_path: Path):
    """The issue's "done when": registered with one line, the toy names its findings in the
    verdict and opens its figures as its entry says, and no file of the package knows it."""
    root = git_init(_repo(tmp_path, shout=False))
    git_commit(root, "base: no row shouts")
    _repo(tmp_path, shout=True)
    config = load_config(root / ".eval-firewall.yml", rules=rule_catalogue(WITH_TOY))

    local = run_audits(config, cache_dir=None, audits=WITH_TOY)
    markdown = render_markdown(local)
    assert verdict_line(local).startswith("❌ Found 1 eval row that shouts TOY")
    assert "other finding" not in markdown
    assert "<details open><summary>Toy figures</summary>" in markdown
    assert "<details><summary>Overlap figures</summary>" in markdown     # the built-ins as before

    closed = register_audit(dataclasses.replace(toy_audit.ENTRY, figures_open=False))
    markdown = render_markdown(run_audits(config, cache_dir=None, audits=closed))
    assert "<details><summary>Toy figures</summary>" in markdown

    pr = run_audits(config, cache_dir=None, base="HEAD", audits=WITH_TOY)
    assert verdict_line(pr).startswith("❌ This pull request adds 1 eval row that shouts TOY.")
    assert "<details><summary>Toy figures</summary>" in render_markdown(pr)   # a PR: closed
    # Judged by its rule's new_when ("row"): the shouting row is new, so its finding is.
    assert [f.new for f in pr.findings if f.rule == "toy-row"] == [True]

    # Nothing in the package names the toy: the registration line is all it took.
    package = Path(eval_firewall.__file__).parent
    assert not [p for p in package.rglob("*") if p.is_file() and p.suffix in (".py", ".j2")
                and ("toy-row" in (text := p.read_text(encoding="utf-8")) or "TOY" in text)]


def test_a_report_read_back_from_json_renders_with_the_default_registry(tmp_path: Path):
    root = _repo(tmp_path, shout=True)
    config = load_config(root / ".eval-firewall.yml", rules=rule_catalogue(WITH_TOY))
    report = run_audits(config, cache_dir=None, audits=WITH_TOY)
    loaded = load_report(render_json(report))
    # The JSON report does not carry the registry: its toy finding is an "other finding" and
    # the built-in audits' figures open as the default registry says.
    assert verdict_line(loaded).startswith("❌ Found 1 other finding")
    markdown = render_markdown(loaded)
    assert "<details><summary>Toy figures</summary>" in markdown


def test_the_default_registry_does_not_run_the_toy(tmp_path: Path):
    root = _repo(tmp_path, shout=True)
    text = (root / ".eval-firewall.yml").read_text(encoding="utf-8")
    (root / ".eval-firewall.yml").write_text(text.split("severity:")[0], encoding="utf-8")
    report = run_audits(load_config(root / ".eval-firewall.yml"), cache_dir=None)
    assert "toy" not in {r.audit for r in report.audits}
    assert [r.audit for r in report.audits] == [
        "schema", "overlap", "provenance", "disagreement", "invariance"]


def test_the_audits_import_no_input_or_output_module():
    """Audits are pure: reading sheets, predictions, datasets, git or the cache is the engine's."""
    code = ("import sys, eval_firewall.audits; "
            "print(' '.join(m for m in sys.modules if m.startswith('eval_firewall.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    loaded = set(done.stdout.split())
    assert "eval_firewall.audits.invariance" in loaded, done.stderr   # the probe sees imports
    io = {"eval_firewall." + m for m in ("annotations", "predictions", "datasets", "cache",
                                         "git", "changes", "engine", "embeddings", "github",
                                         "incremental", "audits.semantic")}
    assert not loaded & io, sorted(loaded & io)
