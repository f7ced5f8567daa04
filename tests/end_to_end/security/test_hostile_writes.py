"""Issue #18, items 1 and 7: files a pull request committed must not redirect what the action
writes, and names of committed files reach the Checks API only as plain repository paths.
Each test commits the attack, runs the action against the local GitHub server and checks that
nothing was written outside the workspace (nor into .git/) and the one-line error."""

from __future__ import annotations

import json
from pathlib import Path

from action_harness import EVAL, EVAL_ROWS, run_action
from attacks import SECRET, hostile_pr


def one_error_line(run) -> str:
    errors = [line for line in run.stderr.splitlines() if line.startswith("eval-firewall: error")]
    assert len(errors) == 1, run.stderr
    return errors[0]


def test_a_committed_link_as_the_report_directory_is_refused(tmp_path, github):
    """`eval-firewall-report -> <outside>`: the reports were written outside the workspace."""
    outside = tmp_path / "outside"
    outside.mkdir()
    ws, merge, payload = hostile_pr(tmp_path, github, links={"eval-firewall-report":
                                                              str(outside)})
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert run.code == 2, run.stderr
    line = one_error_line(run)
    assert "eval-firewall-report" in line and "symbolic link" in line, line
    assert list(outside.iterdir()) == []


def test_a_committed_link_as_a_report_file_is_refused(tmp_path, github):
    """`eval-firewall-report/pull-request.json -> ../.git/config`: the action overwrote
    .git/config (as root in the container)."""
    ws, merge, payload = hostile_pr(
        tmp_path, github, links={"eval-firewall-report/pull-request.json": "../.git/config",
                                 "eval-firewall-report/report.md": "../../outside.md"})
    before = (ws / ".git/config").read_text()
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert run.code == 2, run.stderr
    line = one_error_line(run)
    assert "symbolic link" in line, line
    assert (ws / ".git/config").read_text() == before and SECRET in before
    assert not (tmp_path / "outside.md").exists()


def test_a_file_name_with_controls_is_no_annotation_path(tmp_path, github):
    """A committed file named with a newline, ESC and RLO: its path went to the Checks API
    raw. Now such a finding has no line annotation (it is in the summary, escaped)."""
    name = "data/eval/x\n\x1b[31m\u202egnp.jsonl"

    def make(ws: Path) -> None:
        (ws / name).write_text(json.dumps(EVAL_ROWS[0]) + "\n{not json\n", encoding="utf-8")
        with open(ws / EVAL, "a", encoding="utf-8") as fh:
            fh.write("{not json either\n")

    ws, merge, payload = hostile_pr(tmp_path, github, make=make)
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert run.code == 1, run.stderr
    (check,) = github.state.check_runs.values()
    paths = [a["path"] for a in check["_annotations"]]
    assert all(p.isprintable() and "\u202e" not in p for p in paths), paths
    assert paths == [EVAL], paths                # only the plain path's invalid row
    assert "adds 2 unreadable rows" in check["output"]["summary"]
    assert "\x1b" not in check["output"]["summary"] and "\u202e" not in json.dumps(check)
