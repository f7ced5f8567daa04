"""Attacks on the audit cache, end to end through the action: the cache is never input from the
pull request.

Each test builds its attack input (a forged, committed cache; an entry replaced by a directory, a
link to /dev/zero, an oversized file, tampered bytes) and asserts on what the local GitHub server
received, what the action printed and its exit code. ``run_action`` also fails the test on any
traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from action_harness import (
    CLI,
    EVAL,
    REPO,
    dataset_repo,
    leak_lines,
    leaks,
    merge_checkout,
    open_pr,
    pr_payload,
    push_eval,
    run_action,
)
from conftest import git, git_commit, write_jsonl
from eval_firewall.cache import MAX_ENTRY_BYTES, Cache
from eval_firewall.config import load_config
from eval_firewall.datasets import cached
from eval_firewall.incremental.git import clean_blobs

CACHE = ".eval-firewall-cache"


def audit_cli(ws: Path, home: Path, cache_dir: str = CACHE) -> subprocess.CompletedProcess:
    """``eval-firewall audit`` as somebody whose per-user directory is ``home``."""
    env = {**os.environ, "EVAL_FIREWALL_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([str(CLI), "audit", "--quiet", "--format", "json",
                           "--cache-dir", cache_dir], cwd=ws, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def eval_rows_entry(ws: Path, cache_dir: Path) -> Path:
    """Where the cache keeps the parsed rows of the eval file as it is in ``ws`` now."""
    config = load_config(ws / ".eval-firewall.yml")
    ds = next(d for d in config.datasets if d.role == "eval")
    key = cached.file_key(ds, EVAL, ws / EVAL, clean_blobs([ws / EVAL]).get(ws / EVAL))
    return cache_dir / cached.NAMESPACE / key[:2] / f"{key}.bin"


def entry_key(ws: Path) -> str:
    return eval_rows_entry(ws, ws / CACHE).name.removesuffix(".bin")


def forge(ws: Path, attacker: Path, innocent: str) -> None:
    """File the innocent eval file's parsed rows under the key of the eval file now in ``ws``,
    signed with the attacker's key."""
    cache = Cache(ws / CACHE, home=attacker)
    rows = cache.get_bytes(cached.NAMESPACE, innocent)
    assert rows is not None
    cache.put_bytes(cached.NAMESPACE, entry_key(ws), rows)


def warnings_about(text: str, what: str) -> list[str]:
    return [line for line in text.splitlines() if "warning" in line and what in line]


def assert_leak_reported(github, run, head: str, n: int = 1) -> None:
    assert run.code == 1, run.stderr
    assert run.outputs["status"] == "fail"
    check = list(github.state.check_runs.values())[-1]
    assert (check["head_sha"], check["conclusion"]) == (head, "failure")
    assert sorted(a["start_line"] for a in check["_annotations"]) == leak_lines(n)
    assert {a["path"] for a in check["_annotations"]} == {EVAL}
    (comment,) = github.comments_on(REPO, 7)
    rows = "row" if n == 1 else "rows"
    assert f"❌ This pull request adds {n} leaked eval {rows}" in comment["body"]


def test_forged_cache_committed_by_the_pull_request_is_not_trusted(tmp_path, github):
    ws, base = dataset_repo(tmp_path / "ws")
    git(ws, "checkout", "-q", "-b", "pr")
    # The attacker runs the real audit on an innocent version of the pull request, with a key
    # of their own (another per-user directory), then files the innocent eval rows under the
    # key of the leaking eval file: entries whose signatures are valid for the attacker's key.
    attacker = tmp_path / "attacker-home"
    assert audit_cli(ws, attacker).returncode == 0
    innocent = entry_key(ws)
    write_jsonl(ws / EVAL, leaks(0))
    forge(ws, attacker, innocent)
    # The forgery works on a run that trusts the attacker's key: the leak looks clean.
    fooled = audit_cli(ws, attacker)
    assert fooled.returncode == 0, fooled.stdout + fooled.stderr
    assert json.loads(fooled.stdout)["summary"]["findings"] == 0
    git(ws, "add", "-f", CACHE)
    head = git_commit(ws, "add eval rows (and a cache that says they are clean)")
    committed = git(ws, "ls-files", CACHE).splitlines()
    assert committed
    github.add_pull(REPO, 7, head, base)
    merge = merge_checkout(ws, base, head)

    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge)

    assert_leak_reported(github, run, head)
    printed = warnings_about(run.stdout + run.stderr, CACHE)
    assert len(printed) == 1, run.stderr
    assert f"git tracks {len(committed)} files in it" in printed[0]
    assert "not used for this run" in printed[0]
    # The pull request's files are left as they were.
    assert git(ws, "status", "--porcelain", "--", CACHE) == ""


def test_entries_signed_with_another_key_are_recomputed(tmp_path, github):
    """The same forgery, restored into an untracked cache directory (as a cache step would):
    the signatures are the attacker's, not this runner's."""
    ws, base = dataset_repo(tmp_path / "ws")
    attacker = tmp_path / "attacker-home"
    assert audit_cli(ws, attacker).returncode == 0
    innocent = entry_key(ws)
    head = push_eval(ws, leaks(0), "add eval rows")
    forge(ws, attacker, innocent)
    github.add_pull(REPO, 7, head, base)
    merge = merge_checkout(ws, base, head)
    assert git(ws, "ls-files", CACHE) == ""

    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge)

    assert_leak_reported(github, run, head)
    printed = warnings_about(run.stderr, "fails its signature check")
    assert len(printed) == 1, run.stderr
    assert "recomputing it" in printed[0]


def _damage_directory(entry: Path) -> None:
    entry.unlink()
    (entry / "inner").mkdir(parents=True)


def _damage_dev_zero(entry: Path) -> None:
    entry.unlink()
    entry.symlink_to("/dev/zero")


def _damage_oversized(entry: Path) -> None:
    with open(entry, "r+b") as fh:                      # sparse: no disk space used
        fh.truncate(MAX_ENTRY_BYTES[cached.NAMESPACE] + 1)


def _damage_tampered(entry: Path) -> None:
    """Keep the signature, change the rows: the eval file's rows without the leak."""
    from eval_firewall.rows import Provenance, Row
    data = cached.encode([Row("eval", "eval", EVAL, 1, None, "What is 2+2?", "4",
                              Provenance(None, None, None))], ["what is 2+2"], [])
    entry.write_bytes(data)


@pytest.mark.parametrize("damage, why", [
    (_damage_directory, "is a directory"),
    (_damage_dev_zero, "is a symbolic link"),
    (_damage_oversized, "is larger than the 4 GiB limit"),
    (_damage_tampered, "fails its signature check"),
], ids=["directory", "dev-zero", "oversized", "tampered"])
def test_damaged_entry_is_recomputed_with_one_warning(tmp_path, github, damage, why):
    ws, _base, head, merge, payload = open_pr(tmp_path, github, leaks(0))
    first = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert_leak_reported(github, first, head)
    entry = eval_rows_entry(ws, ws / CACHE)
    assert entry.is_file()
    damage(entry)

    again = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)

    assert_leak_reported(github, again, head)
    assert len(github.state.check_runs) == 2
    printed = warnings_about(again.stderr, "cache entry")
    assert len(printed) == 1, again.stderr
    assert why in printed[0] and entry.name in printed[0] and "recomputing it" in printed[0]
    # The fresh entry replaced the damaged one, and a third run uses it without a word.
    assert entry.is_file() and not entry.is_symlink()
    assert entry.stat().st_size < MAX_ENTRY_BYTES[cached.NAMESPACE]
    third = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert_leak_reported(github, third, head)
    assert warnings_about(third.stderr, "cache entry") == []
