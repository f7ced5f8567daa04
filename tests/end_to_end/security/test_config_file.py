"""The config file itself comes with the pull request: linked out of the checkout (to a file
the runner holds secrets in) it is never read, and bytes YAML refuses are one line, not a
traceback."""

from __future__ import annotations

import os

import pytest

from action_harness import REPO, TOKEN, run_action
from attacks import SECRET, hostile_pr, sent, unescaped

CONFIG = ".eval-firewall.yml"


def _replace_config(target: str | None = None, data: bytes | None = None):
    def make(ws):
        (ws / CONFIG).unlink()
        if target is not None:
            os.symlink(target, ws / CONFIG)
        else:
            (ws / CONFIG).write_bytes(data)
    return make


@pytest.mark.parametrize("target, why", [
    ("/proc/self/environ", "resolves (through a symlink) outside the repository"),
    (".git/config", "resolves inside .git/"),
])
def test_a_config_linked_out_of_reach_is_never_read(tmp_path, github, target, why):
    ws, merge, payload = hostile_pr(tmp_path, github, make=_replace_config(target))
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert run.code == 2, run.stderr
    (error,) = [line for line in run.stderr.splitlines() if "error" in line]
    assert f"the config file {why}" in error
    (check,) = github.state.check_runs.values()
    assert check["conclusion"] == "failure" and why in unescaped(check["output"]["summary"])
    assert not github.comments_on(REPO, 7)
    everything = sent(github) + run.stdout + run.stderr + run.summary
    for secret in (SECRET, TOKEN, "INPUT_GITHUB-TOKEN", "extraheader"):
        assert secret not in everything


def test_a_config_with_a_nul_byte_is_one_line(tmp_path, github):
    ws, merge, payload = hostile_pr(tmp_path, github,
                                    make=_replace_config(data=b"datasets:\n  - \x00\n"))
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert run.code == 2 and "Traceback" not in run.stderr, run.stderr
    (error,) = [line for line in run.stderr.splitlines() if "error" in line]
    assert "invalid YAML: unacceptable character #x0000" in error
