"""The Python API and start-up: two names, imported lazily; run_audits' default cache."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import gsm8k
from eval_firewall import load_config, run_audits
from eval_firewall.errors import UserError

HEAVY = ("eval_firewall.engine", "sklearn", "scipy", "torch", "sentence_transformers",
         "pyarrow", "numpy", "pandas", "statsmodels", "model2vec")


def imported_modules(*args: str) -> set[str]:
    """Top-level and package modules a Python process imported (``-X importtime``)."""
    done = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_help_imports_none_of_the_heavy_libraries():
    modules = imported_modules("-m", "eval_firewall", "--help")
    assert "eval_firewall.cli" in modules and "click" in modules     # the probe sees imports
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    for command in ("audit", "github", "sample", "perturb"):
        modules = imported_modules("-m", "eval_firewall", command, "--help")
        assert not modules & set(HEAVY), (command, sorted(modules & set(HEAVY)))


def test_the_package_root_loads_the_engine_on_first_use():
    code = ("import sys, eval_firewall; before = 'eval_firewall.engine' in sys.modules; "
            "from eval_firewall import load_config; "
            "config = 'eval_firewall.engine' in sys.modules; "
            "from eval_firewall import run_audits; print(before, config, run_audits.__module__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.split() == ["False", "False", "eval_firewall.engine.run"], done.stderr


def test_load_config_checks_severity_keys_against_every_audits_rules(repo):
    rows = [{"question": r["question"], "answer": "1"} for r in gsm8k("train", 5)]
    root = repo(rows, rows[:2])
    path = root / ".eval-firewall.yml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "severity:\n  same-generator: notice\n", encoding="utf-8")
    assert load_config(path).severity == {"same-generator": "notice"}
    path.write_text(text + "severity:\n  same-generatr: notice\n", encoding="utf-8")
    with pytest.raises(UserError, match="unknown rule") as err:
        load_config(path)
    assert err.value.hint == "did you mean 'same-generator'?"


def test_run_audits_uses_the_cache_in_the_config_folder_unless_told_otherwise(repo, tmp_path):
    rows = [{"question": r["question"], "answer": "1"} for r in gsm8k("train", 5)]
    root = repo(rows, rows[:2])
    first = run_audits(load_config(root / ".eval-firewall.yml"), cache_dir=None)
    assert not (root / ".eval-firewall-cache").exists()       # None: no cache at all
    report = run_audits(load_config(root / ".eval-firewall.yml"))
    assert (root / ".eval-firewall-cache").is_dir()
    assert [f.rule for f in report.findings] == [f.rule for f in first.findings]
    assert "exact-duplicate" in [f.rule for f in report.findings]
    elsewhere = tmp_path / "elsewhere"
    run_audits(load_config(root / ".eval-firewall.yml"), cache_dir=elsewhere)
    assert elsewhere.is_dir()
