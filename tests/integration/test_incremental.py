"""Incremental audits: `--base REV` in real git repositories, and the cache that makes re-runs cheap."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BASIC_CONFIG, git, git_commit, git_init, gsm8k, write_jsonl
from eval_firewall.config import load_config
from eval_firewall.engine import run_audits

TRAIN = gsm8k("train", 300)
TEST = gsm8k("test", 60)


def cli(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eval_firewall", "audit", "-q", *args],
                          cwd=repo, capture_output=True, text=True)


def report(repo: Path, *args: str) -> dict:
    done = cli(repo, "--format", "json", *args)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def overlap_stats(rep: dict) -> dict:
    (audit,) = [a for a in rep["audits"] if a["audit"] == "overlap"]
    return {s["label"]: s["value"] for s in audit["stats"]}


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """A dataset repository with one commit: 300 train rows and 60 clean eval rows."""
    git_init(tmp_path)
    write_jsonl(tmp_path / "data/train/train.jsonl", TRAIN)
    write_jsonl(tmp_path / "data/eval/eval.jsonl", TEST)
    (tmp_path / ".eval-firewall.yml").write_text(BASIC_CONFIG)
    (tmp_path / ".gitignore").write_text(".eval-firewall-cache/\n")
    git_commit(tmp_path, "base")
    return tmp_path


def add_eval_rows(repo: Path, rows: list[dict], at: int | None = None) -> None:
    path = repo / "data/eval/eval.jsonl"
    lines = path.read_text().splitlines()
    new = [json.dumps(r) for r in rows]
    lines[at if at is not None else len(lines):at if at is not None else len(lines)] = new
    path.write_text("\n".join(lines) + "\n")


def test_only_findings_introduced_by_the_change_are_new_and_fail(history):
    # An existing leak is committed at the base...
    add_eval_rows(history, [TRAIN[5]])
    git_commit(history, "existing leak")
    base = git(history, "rev-parse", "HEAD")
    rep = report(history, "--base", base)
    assert rep["status"] == "pass"
    assert [f["new"] for f in rep["findings"] if f["rule"] == "exact-duplicate"] == [False]
    # ... and the change adds another one, at the top of the file.
    add_eval_rows(history, [TRAIN[9]], at=0)
    done = cli(history, "--format", "json", "--base", base)
    assert done.returncode == 1
    rep = json.loads(done.stdout)
    leaks = {f["line"]: f["new"] for f in rep["findings"] if f["rule"] == "exact-duplicate"}
    assert leaks == {1: True, 62: False}   # the old leak moved down a line: still not new
    assert rep["summary"]["new_findings"] == 1
    (eval_summary,) = [d for d in rep["datasets"] if d["name"] == "eval"]
    assert eval_summary["changed_files"] == ["data/eval/eval.jsonl"]
    assert eval_summary["changed_rows"] == 1


def test_fail_on_existing_fails_on_old_findings_too(history):
    add_eval_rows(history, [TRAIN[5]])
    git_commit(history, "existing leak")
    config = history / ".eval-firewall.yml"
    config.write_text(BASIC_CONFIG + "fail_on_existing: true\n")
    assert cli(history, "--base", "HEAD").returncode == 1
    config.write_text(BASIC_CONFIG)
    assert cli(history, "--base", "HEAD").returncode == 0


def test_markdown_report_says_what_changed_and_collapses_existing(history):
    add_eval_rows(history, [TRAIN[5]])
    git_commit(history, "existing leak")
    add_eval_rows(history, [TRAIN[9]])
    text = cli(history, "--base", "HEAD").stdout
    assert "**What changed:** data/eval/eval.jsonl" in text
    assert "1 new finding, 2 already present" in text   # the old leak and missing provenance
    health = text.split("<details><summary>Repository health: ")[1]
    assert "1 finding already present at the base revision:" in health


def test_warm_cache_searches_only_new_rows_and_agrees_with_a_cold_run(history):
    cold = report(history, "--no-cache")
    first = report(history)
    assert overlap_stats(first)["eval rows searched in this run"] == 60
    add_eval_rows(history, [TRAIN[3], TEST[0] | {"question": TEST[0]["question"] + " Show work."}])
    warm = report(history)
    stats = overlap_stats(warm)
    assert stats["eval rows searched in this run"] == 2
    assert stats["eval rows with a cached result"] == 60
    again_cold = report(history, "--no-cache")
    assert warm["findings"] == again_cold["findings"]
    assert cold["status"] == "pass" and warm["status"] == "fail"


def test_new_train_rows_are_searched_against_all_eval_rows(history):
    report(history)                                   # warm the cache at the base
    write_jsonl(history / "data/train/more.jsonl",
                [{"question": TEST[10]["question"], "answer": "#### 0"}])
    warm = report(history, "--base", "HEAD")
    stats = overlap_stats(warm)
    assert stats["eval rows searched in this run"] == 0   # eval unchanged: reused, then...
    leaks = [f for f in warm["findings"] if f["rule"] == "exact-duplicate"]
    assert [(f["line"], f["match"]["path"], f["new"]) for f in leaks] == [
        (11, "data/train/more.jsonl", True)]             # ...checked against the new train row
    assert warm["findings"] == report(history, "--base", "HEAD", "--no-cache")["findings"]


def test_corrupt_cache_is_rebuilt_not_trusted(history):
    add_eval_rows(history, [TRAIN[3]])
    good = report(history)
    for entry in (history / ".eval-firewall-cache").rglob("*.json"):
        entry.write_text(json.dumps({k: None for k in json.loads(entry.read_text())}))
    done = cli(history, "--format", "json")
    assert "fails its signature check (written with another key, or tampered with): " \
           "recomputing it" in done.stderr
    assert json.loads(done.stdout)["findings"] == good["findings"]


def test_unknown_base_revision_is_a_one_line_error(history):
    done = cli(history, "--base", "no-such-branch")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "eval-firewall: error: revision 'no-such-branch' is not in this clone "
        "(fetch it first, e.g. 'git fetch origin no-such-branch')"]


def test_missing_base_in_a_shallow_clone_says_which_fetch_depth(history, tmp_path_factory):
    add_eval_rows(history, [TRAIN[1]])
    git_commit(history, "second")
    first = git(history, "rev-list", "--max-parents=0", "HEAD")
    clone = tmp_path_factory.mktemp("shallow") / "repo"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{history}", str(clone)],
                   check=True)
    done = cli(clone, "--base", first)
    assert done.returncode == 2
    assert "shallow clone" in done.stderr and "fetch-depth: 0" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_base_outside_a_git_repository_is_a_one_line_error(repo):
    root = repo(TRAIN[:5], TEST[:5])
    done = cli(root, "--base", "HEAD")
    assert done.returncode == 2
    assert "is not inside a git repository, and --base needs one" in done.stderr


def test_run_audits_api_with_base(history):
    add_eval_rows(history, [TRAIN[2]])
    config = load_config(history / ".eval-firewall.yml")
    rep = run_audits(config, base="HEAD", cache_dir=None)
    assert rep.base == "HEAD"
    assert [f.new for f in rep.findings if f.rule == "exact-duplicate"] == [True]
    assert rep.status == "fail"


def test_changed_annotation_sheets_make_disagreement_findings_new(tmp_path):
    import csv
    import io
    import shutil

    from conftest import ROOT

    repo = tmp_path / "example"
    shutil.copytree(ROOT / "examples/gsm8k", repo)
    config = repo / ".eval-firewall.yml"
    text = config.read_text()
    assert "  overlap:\n" in text
    config.write_text(text.replace("  overlap:\n", "  overlap:\n    enabled: false\n", 1))
    git_init(repo)
    git_commit(repo, "base")
    before = report(repo, "--base", "HEAD", "--no-cache")
    assert not [f for f in before["findings"] if f["audit"] == "disagreement" and f["new"]]

    sheet = repo / "annotations/ben.csv"
    lines = sheet.read_text().splitlines(keepends=True)
    comments = "".join(line for line in lines if line.startswith("#"))
    rows = list(csv.DictReader(io.StringIO("".join(l for l in lines if not l.startswith("#")))))
    for row in rows:
        if row["answer"].isdigit():
            row["answer"] = str(int(row["answer"]) + 1)     # ben now disagrees everywhere
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    sheet.write_text(comments + out.getvalue())

    after = report(repo, "--base", "HEAD", "--no-cache")
    assert after["status"] == "fail"
    disagreement = [f for f in after["findings"] if f["audit"] == "disagreement"]
    failing = [f for f in disagreement if f["severity"] == "error"]
    assert failing and all(f["new"] for f in failing)


@pytest.mark.model
def test_warm_run_encodes_no_text_twice(history):
    config = history / ".eval-firewall.yml"
    config.write_text(BASIC_CONFIG.replace("semantic: {enabled: false}",
                                           "semantic: {retriever: exact}"))
    add_eval_rows(history, [TEST[0] | {"question": "In April, Natalia sold clips to 48 "
                                                   "friends; in May, half as many. How many "
                                                   "clips did she sell in both months?"}])
    def shards() -> list[str]:
        return sorted(p.name for p in (history / ".eval-firewall-cache/embeddings").rglob("*.npz"))

    first = report(history)
    written = shards()
    assert written                                       # the full model's vectors are cached
    add_eval_rows(history, [{"question": "How many legs do 7 spiders and 3 ants have together?",
                             "answer": "#### 74"}])
    second = report(history)
    assert len(shards()) == len(written) + 1             # only the one new text was encoded
    third = report(history)
    assert shards() == sorted(set(shards()))
    assert len(shards()) == len(written) + 1             # nothing new to encode
    assert third["findings"] == second["findings"]
    assert [f["rule"] for f in first["findings"] if f["audit"] == "overlap"].count("paraphrase") \
        == [f["rule"] for f in third["findings"] if f["audit"] == "overlap"].count("paraphrase")
