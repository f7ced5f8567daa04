"""Shared by the security tests: a pull request carrying an attack, and what the local GitHub
server received from the action."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from action_harness import CONFIG, REPO, dataset_repo, merge_checkout, pr_payload
from conftest import git, git_commit

# What actions/checkout leaves in .git/config for the rest of the job.
SECRET = "eC1hY2Nlc3MtdG9rZW46Z2hzX3NlY3JldDAxMjM0NTY3ODk="
EXTRAHEADER = f"AUTHORIZATION: basic {SECRET}"


def hostile_pr(tmp_path: Path, github, *, config: str | None = None,
               links: dict[str, str] | None = None, files: dict[str, str] | None = None,
               make: Callable[[Path], None] | None = None):
    """A same-repository pull request whose head commit carries the attack: a new config,
    symlinks (committed as symlinks), files, and whatever ``make(workspace)`` writes.
    Returns (workspace, merge commit, payload).

    With ``config``, the base has no config: the pull request introduces it, so its config is
    the new policy and applies as written, and the attack meets the defence itself. Against a
    base's config, a hostile config is a policy change that is not applied (the policy tests,
    ``test_policy_gate.py``)."""
    ws, base = dataset_repo(tmp_path / "ws")
    if config is not None:
        (ws / ".eval-firewall.yml").unlink()
        base = git_commit(ws, "base: no config yet")
    git(ws, "config", "http.https://github.com/.extraheader", EXTRAHEADER)
    assert SECRET in (ws / ".git/config").read_text()
    git(ws, "checkout", "-q", "-b", "pr")
    if config is not None:
        (ws / ".eval-firewall.yml").write_text(config, encoding="utf-8")
    for name, target in (links or {}).items():
        (ws / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, ws / name)
    for name, text in (files or {}).items():
        (ws / name).parent.mkdir(parents=True, exist_ok=True)
        (ws / name).write_text(text, encoding="utf-8")
    if make is not None:
        make(ws)
    head = git_commit(ws, "the attack")
    github.add_pull(REPO, 7, head, base)
    merge = merge_checkout(ws, base, head)
    return ws, merge, pr_payload("opened", number=7, head=head, base=base)


def eval_paths(paths: str, extra: str = "") -> str:
    """The harness config with the eval dataset reading ``paths`` (a YAML flow list)."""
    assert CONFIG.count('paths: ["data/eval/*.jsonl"]') == 1
    return CONFIG.replace('paths: ["data/eval/*.jsonl"]', f"paths: {paths}{extra}")


def sent(github) -> str:
    """Everything the action sent to the server: every request body, comments, check runs."""
    return json.dumps([github.state.log, list(github.state.comments.values()),
                       list(github.state.check_runs.values()), github.state.statuses])


def unescaped(markdown: str) -> str:
    return markdown.replace("\\", "")


def assert_refused(run, github, field: str, why: str, *secrets: str) -> None:
    """Exit 2 with one line naming the key; a failed check run says why; nothing leaked."""
    assert run.code == 2, run.stderr
    errors = [line for line in run.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, run.stderr
    assert ".eval-firewall.yml:" in errors[0] and f"field '{field}'" in errors[0], errors[0]
    assert why in errors[0], errors[0]
    (check,) = github.state.check_runs.values()
    assert check["conclusion"] == "failure"
    assert field in unescaped(check["output"]["summary"])
    assert not github.comments_on(REPO, 7)
    everything = sent(github) + run.stdout + run.stderr + run.summary
    for secret in secrets:
        assert secret not in everything
