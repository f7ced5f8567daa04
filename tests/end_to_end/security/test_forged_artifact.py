"""Issue #8, attacks 4 and 5: the report artifact of a fork's run is forged. The trusted
``workflow_run`` step must either refuse it (one line, exit 2, nothing posted) or render every
string in it as inert text: no link, no mention, no command. Each test writes the forged
artifact itself, runs the action's entrypoint as GitHub does, and checks what the GitHub server
received, what was printed, and the exit code."""

from __future__ import annotations

import json
import re

import cmarkgfm
import pytest

from action_harness import FORK, REPO, run_action, workflow_run_payload
from eval_firewall.github.artifact import RunContext
from eval_firewall.report import render_json
from printed import assert_inert
from sample_reports import failing_report

HEAD = "3" * 40
BASE = "4" * 40
PHISH = "https://evil.example/login"


def _artifact(tmp_path, github, forge, size: int | None = None, context=None) -> tuple:
    """A trusted workspace holding the report a fork's run would upload, passed through
    ``forge`` (which edits the report's JSON as a dict; ``size`` pads the file to that many
    bytes), and the trusted step run on it."""
    github.add_pull(REPO, 7, HEAD, BASE, head_repo=FORK)
    trusted = tmp_path / "trusted"
    directory = trusted / "eval-firewall-report"
    directory.mkdir(parents=True)
    data = json.loads(render_json(failing_report()))
    forge(data)
    (directory / "report.json").write_text(json.dumps(data), encoding="utf-8")
    if size is not None:
        with open(directory / "report.json", "r+b") as fh:
            fh.truncate(size)                          # sparse: costs no disk
    context = context or RunContext(repository=REPO, head_sha=HEAD, pull_request=7).model_dump()
    (directory / "pull-request.json").write_text(json.dumps(context), encoding="utf-8")
    run = run_action(tmp_path, trusted, "workflow_run",
                     workflow_run_payload(head=HEAD, number=7, listed=False), github)
    return run, data


def _writes(github) -> list[dict]:
    return github.requests("POST") + github.requests("PATCH")


def _html(markdown: str) -> str:
    return cmarkgfm.github_flavored_markdown_to_html(markdown)


def _hrefs(html: str) -> list[str]:
    return re.findall(r'<a [^>]*href="([^"]*)"', html)


def test_forged_titles_and_version_are_shown_but_never_linked(tmp_path, github):
    def forge(data):
        data["audits"][0]["title"] = f"Overlap {PHISH} www.evil.example admin@evil.example"
        data["tool"]["version"] = "www.evil.example"
        data["datasets"][0]["name"] = f"[train]({PHISH}) @octocat"
        data["findings"][0]["message"] = f"see <{PHISH}> and ![x]({PHISH})"

    run, _ = _artifact(tmp_path, github, forge)
    assert run.code == 1, run.stderr                   # the findings are real: it fails
    assert_inert(run)
    (comment,) = github.comments_on(REPO, 7)
    check = list(github.state.check_runs.values())[-1]
    blob = f"{github.server_url}/{REPO}/blob/{HEAD}/"
    for where, markdown in {"comment": comment["body"], "check": check["output"]["summary"],
                            "job summary": run.summary}.items():
        html = _html(markdown)
        assert "evil.example" in html, where              # shown ...
        assert all(h.startswith(blob) for h in _hrefs(html)), (where, _hrefs(html))
        assert "<img" not in html and "mailto:" not in html, where   # ... never live
        assert "@octocat" not in markdown, where
    assert "evil" not in json.dumps(check["_annotations"]).replace("evil.example", "")


@pytest.mark.parametrize("field,forge", [
    ("datasets.0.role", lambda d: d["datasets"][0].update(role=PHISH)),
    ("datasets.0.role", lambda d: d["datasets"][0].update(role="train\n")),
    ("findings.0.rule", lambda d: d["findings"][0].update(rule="exact-duplicate\n")),
    ("findings.0.audit", lambda d: d["findings"][0].update(audit="overlap`](https://evil)")),
    ("fail_on", lambda d: d.update(fail_on="critical")),
    ("fail_on", lambda d: d.update(fail_on=["error"])),
    ("findings.0.severity", lambda d: d["findings"][0].update(severity="fatal")),
    ("findings.0.line", lambda d: d["findings"][0].update(line="12")),
    ("findings.0.new", lambda d: d["findings"][0].update(new=1)),
    ("findings.0.path", lambda d: d["findings"][0].update(path="../../etc/passwd")),
    ("audits.0.title", lambda d: d["audits"][0].update(title="x" * 5000)),
    ("findings.0.waived", lambda d: d["findings"][0].update(waived={"approve": True})),
    ("tool.injected", lambda d: d["tool"].update(injected="\n::error::forged")),
    ("findings.0.audit", lambda d: d["findings"][0].update(audit="unlisted")),
])
def test_a_forged_field_is_refused_in_one_line(tmp_path, github, field, forge):
    run, _ = _artifact(tmp_path, github, forge)
    assert run.code == 2, run.stderr
    assert_inert(run)                                  # also: no traceback (run_action checks)
    (error,) = [line for line in run.stderr.splitlines() if "error:" in line]
    assert "report.json: not an eval-firewall JSON report: " + field in error
    assert "evil" not in run.stdout + run.stderr
    assert _writes(github) == []                       # nothing posted


def test_a_huge_artifact_is_refused_before_it_is_read(tmp_path, github):
    run, _ = _artifact(tmp_path, github, lambda data: None, size=2**40)   # 1 TiB
    assert run.code == 2, run.stderr
    assert "larger than 134,217,728 bytes" in run.stderr
    assert _writes(github) == []


@pytest.mark.parametrize("field,context", [
    ("path_prefix", {"path_prefix": "data/\n::error::forged/"}),
    ("pull_request", {"pull_request": "7"}),
    ("head_sha", {"head_sha": HEAD + "\n"}),
    ("repository", {"repository": f"{REPO}\n"}),
])
def test_a_forged_run_context_is_refused_in_one_line(tmp_path, github, field, context):
    forged = {"repository": REPO, "head_sha": HEAD, "pull_request": 7, "path_prefix": "",
              **context}
    run, _ = _artifact(tmp_path, github, lambda data: None, context=forged)
    assert run.code == 2, run.stderr
    assert_inert(run)
    (error,) = [line for line in run.stderr.splitlines() if "error:" in line]
    assert f"pull-request.json: field '{field}': invalid: " in error
    assert _writes(github) == []
