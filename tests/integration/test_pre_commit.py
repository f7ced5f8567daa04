"""The pre-commit hook (.pre-commit-hooks.yaml), run by the real pre-commit in a real repository."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT

BIN = Path(sys.executable).parent
CONFIG = """\
datasets:
  - name: train
    role: train
    paths: ["data/train/*.jsonl"]
    text: [question]
  - name: eval
    role: eval
    paths: ["data/eval/*.jsonl"]
    text: [question]
audits:
  overlap: {semantic: {enabled: false}}
  distribution: {enabled: false}
"""
TRAIN = ["Natalia sold clips to 48 of her friends in April. How many clips did she sell?",
         "Weng earns $12 an hour for babysitting. How much did she earn for 50 minutes?",
         "Betty needs $100 for a new wallet and has half of it. How much more does she need?"]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "HF_HUB_OFFLINE": "1",
            "EVAL_FIREWALL_HOME": str(tmp_path / "home"), "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com"}


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _jsonl(path: Path, texts: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"question": t}) + "\n" for t in texts), encoding="utf-8")


def test_manifest_is_valid_and_hooks_the_installed_command():
    done = subprocess.run([str(BIN / "pre-commit"), "validate-manifest", ".pre-commit-hooks.yaml"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert hook["id"] == "eval-firewall" and hook["language"] == "system"
    assert hook["entry"].startswith("eval-firewall audit")
    files = re.compile(hook["files"])
    for path in (".eval-firewall.yml", "sub/.eval-firewall-waivers.yml", "data/a.jsonl",
                 "a.jsonl.gz", "b.ndjson", "c.csv", "d.tsv.gz", "e.parquet", "f.json"):
        assert files.search(path), path
    for path in ("README.md", "src/model.py", "data/notes.txt", "eval-firewall.yml.bak"):
        assert not files.search(path), path


def test_the_hook_fails_a_commit_that_adds_a_leak_and_passes_a_clean_one(tmp_path):
    repo = tmp_path / "repo"
    env = _env(tmp_path)
    repo.mkdir()
    _run(["git", "init", "-q", "-b", "main"], repo, env)
    (repo / ".eval-firewall.yml").write_text(CONFIG, encoding="utf-8")
    (repo / ".gitignore").write_text(".eval-firewall-cache/\n", encoding="utf-8")
    _jsonl(repo / "data/train/train.jsonl", TRAIN)
    _jsonl(repo / "data/eval/eval.jsonl", ["A train leaves at 3 pm going 60 mph. When does it arrive?"])
    _run(["git", "add", "-A"], repo, env)
    assert _run(["git", "commit", "-qm", "data"], repo, env).returncode == 0

    def hook() -> subprocess.CompletedProcess[str]:
        # try-repo: the hook manifest of this checkout, as a user's .pre-commit-config.yaml
        # would name it, run on the staged files
        return _run([str(BIN / "pre-commit"), "try-repo", str(ROOT), "eval-firewall"], repo, env)

    # A change that touches no dataset file: the hook is skipped.
    (repo / "notes.txt").write_text("notes\n", encoding="utf-8")
    _run(["git", "add", "notes.txt"], repo, env)
    done = hook()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(no files to check)Skipped" in done.stdout.replace(".", "")

    # A clean eval row: the audit runs and passes.
    _jsonl(repo / "data/eval/eval.jsonl", ["A train leaves at 3 pm going 60 mph. When does it arrive?",
                                           "How many legs do 7 spiders have in total?"])
    _run(["git", "add", "-A"], repo, env)
    done = hook()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "eval-firewall audit" in done.stdout and "Passed" in done.stdout

    # An eval row that copies a train row: the commit is refused, with the finding's line.
    _jsonl(repo / "data/eval/eval.jsonl", ["A train leaves at 3 pm going 60 mph. When does it arrive?",
                                           "How many legs do 7 spiders have in total?", TRAIN[1]])
    _run(["git", "add", "-A"], repo, env)
    done = hook()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Failed" in done.stdout
    assert re.search(r"data/eval/eval\.jsonl:3\s+exact-duplicate", done.stdout), done.stdout
