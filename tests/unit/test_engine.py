"""The engine's parts: waivers applied without touching the results given, the overlap search
as an input like any other, and the one default cache name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import BASIC_CONFIG, ROOT
from eval_firewall.audits import AUDITS, RULES, overlap
from eval_firewall.config import OverlapConfig, load_config
from eval_firewall.engine import DEFAULT_CACHE
from eval_firewall.engine.waive import _waive
from eval_firewall.findings import AuditResult, Finding, Severity
from eval_firewall.inputs import Inputs
from eval_firewall.overlap.corpus import Corpus
from eval_firewall.overlap.finders import MemoryFinder, search_overlaps
from eval_firewall.rows import Row

PACKAGE = ROOT / "src" / "eval_firewall"


def row(text: str, i: int, role: str) -> Row:
    path = f"data/{role}.jsonl"
    return Row(role, role, path, i + 1, f"{role}-{i}", text)


def test_waive_returns_new_results_and_leaves_the_given_ones_alone(tmp_path: Path):
    finding = Finding.for_row("overlap", "exact-duplicate", Severity.ERROR, "same text",
                              row("What is 2 + 2?", 0, "eval"))
    (tmp_path / ".eval-firewall.yml").write_text(
        BASIC_CONFIG + f"waivers:\n  - fingerprint: {finding.fingerprint}\n"
        "    reason: known, accepted\n    approved_by: alice\n", encoding="utf-8")
    config = load_config(tmp_path / ".eval-firewall.yml")
    given = [AuditResult("overlap", "Overlap", [finding])]
    before = list(given)

    out = _waive(config, given, None, RULES)

    assert given == before and given[0].findings[0].waived is None      # untouched
    assert [r.audit for r in out] == ["overlap", "waivers"]
    assert out[0].findings[0].waived is not None
    assert {s.label: s.value for s in out[1].stats}["findings waived"] == 1


def test_without_waivers_the_results_come_back_as_they_are(tmp_path: Path):
    (tmp_path / ".eval-firewall.yml").write_text(BASIC_CONFIG, encoding="utf-8")
    given = [AuditResult("overlap", "Overlap", [])]
    out = _waive(load_config(tmp_path / ".eval-firewall.yml"), given, None, RULES)
    assert out == given and out is not given


def test_the_overlap_entry_runs_the_audit_on_the_search_prepared_before_it():
    [entry] = [a for a in AUDITS if a.name == overlap.AUDIT]
    assert entry.run is overlap.audit and "overlap" in entry.inputs
    cfg = OverlapConfig(semantic={"enabled": False}, distribution={"enabled": False})
    evals = Corpus.of([row("Natalia sold clips to 48 of her friends in April.", 0, "eval")])
    train = Corpus.of([row("natalia sold clips to 48 of her friends in april", 0, "train")])
    searched = search_overlaps(evals, train, cfg, MemoryFinder())
    assert searched.found.hits[0].rule == "exact-duplicate"             # a value, searched once
    result = entry.run(Inputs([], overlap=searched), cfg)
    assert [f.rule for f in result.findings] == ["exact-duplicate"]
    with pytest.raises(ValueError, match="'overlap' input"):
        entry.run(Inputs([]), cfg)


@pytest.mark.parametrize("package", ["overlap", "search"])
def test_the_search_stages_import_no_audit(package: str):
    """The arrows point one way: audits read the search's types, never the reverse."""
    for path in sorted((PACKAGE / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                assert not module.lstrip(".").startswith(("audits", "eval_firewall.audits")), \
                    f"{path.relative_to(PACKAGE)} imports {module}"


def test_the_command_and_run_audits_share_one_default_cache_name():
    from eval_firewall.cli import main

    for command in (main.commands["audit"], main.commands["index"].commands["build"]):
        [option] = [p for p in command.params if p.name == "cache_dir"]
        assert option.default == Path(DEFAULT_CACHE)
    assert DEFAULT_CACHE == ".eval-firewall-cache"          # the documented name
