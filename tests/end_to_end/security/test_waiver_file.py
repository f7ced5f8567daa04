"""Attacks through the waiver file, which a pull request can commit like any other file: a link
out of the checkout (or into .git/), YAML nested too deeply or bloated with aliases, a file too
large. Each ends with one line naming the waiver file, exit 2, a failed check run, and nothing
leaked to the server or the log."""

from __future__ import annotations

import pytest

from action_harness import REPO, TOKEN, run_action
from attacks import SECRET, hostile_pr, sent, unescaped

WAIVERS = ".eval-firewall-waivers.yml"


def assert_waiver_file_refused(run, github, why: str, *secrets: str) -> None:
    assert run.code == 2, run.stderr
    errors = [line for line in run.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in run.stderr, run.stderr
    assert errors[0].startswith(f"eval-firewall: error: {WAIVERS}"), errors[0]
    assert why in errors[0], errors[0]
    (check,) = github.state.check_runs.values()
    assert check["conclusion"] == "failure" and why in unescaped(check["output"]["summary"])
    assert not github.comments_on(REPO, 7)
    everything = sent(github) + run.stdout + run.stderr + run.summary
    for secret in secrets:
        assert secret not in everything


@pytest.mark.parametrize("target, why", [
    (".git/config", "resolves inside .git/"),
    ("/proc/self/environ", "outside the repository"),
])
def test_a_waiver_file_linked_out_of_reach_is_never_read(tmp_path, github, target, why):
    ws, merge, payload = hostile_pr(tmp_path, github, links={WAIVERS: target})
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert_waiver_file_refused(run, github, why, SECRET, TOKEN, "INPUT_GITHUB-TOKEN")


def _alias_bomb() -> str:
    lines = ['- &a {fingerprint: "abcdef12", reason: x, approved_by: y}',
             "- &b [" + ",".join(["*a"] * 9) + "]"]
    for prev, cur in zip("bcdefghi", "cdefghij"):
        lines.append(f"- &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"       # 9**9 entries once expanded


@pytest.mark.parametrize("text, why", [
    ("- " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),
    (_alias_bomb(), "expands (through aliases) to more than 10000 values"),
    ("# padding\n" * 120_000, "larger than 1,048,576 bytes"),
])
def test_a_hostile_waiver_file_is_one_line_error(tmp_path, github, text, why):
    ws, merge, payload = hostile_pr(tmp_path, github, files={WAIVERS: text})
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert_waiver_file_refused(run, github, why)
