"""The action's seam: `action(settings, event, gh, git)` called in-process with a small
in-memory GitHub, on real git repositories and the real audits.

The same runs end to end over HTTP are in test_github_action.py.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from action_harness import (
    FORK,
    REPO,
    TOKEN,
    dataset_repo,
    leaks,
    merge_checkout,
    parse_outputs,
    pr_payload,
    push_eval,
    workflow_run_payload,
)
from conftest import git
from eval_firewall.errors import UserError
from eval_firewall.github import api
from eval_firewall.github.event import Event, load_event
from eval_firewall.github.main import action
from eval_firewall.github.settings import Settings, load_settings
from eval_firewall.incremental.git import Git
from eval_firewall.safeio.terminal import one_line

BOT = "github-actions[bot]"
NUMBER = 7


# --- a GitHub that keeps everything in memory --------------------------------------------------

@dataclass
class Comment:
    id: int
    number: int
    author: str
    body: str

    @property
    def html_url(self) -> str:
        return f"https://github.test/{REPO}/pull/{self.number}#issuecomment-{self.id}"


@dataclass
class FakeGitHub:
    """Only the calls `action` makes (api.GitHub); what was posted is kept to be looked at."""

    login: str = BOT
    heads: dict[int, str] = field(default_factory=dict)      # pull request -> head sha
    can_write_checks: bool = True
    comments: list[Comment] = field(default_factory=list)
    check_runs: list[dict] = field(default_factory=list)
    statuses: list[dict] = field(default_factory=list)
    edits: int = 0

    def my_login(self) -> str:
        return self.login

    def pull_head_sha(self, number: int) -> str:
        return self.heads[number]

    def find_comment(self, number, login, is_ours):
        return next((c for c in self.comments
                     if c.number == number and c.author == login and is_ours(c.body)), None)

    def create_comment(self, number: int, body: str) -> Comment:
        self.comments.append(Comment(len(self.comments) + 1, number, self.login, body))
        return self.comments[-1]

    def update_comment(self, comment: Comment, body: str) -> None:
        comment.body = body
        self.edits += 1

    def create_check_run(self, **run) -> str:
        if not self.can_write_checks:
            raise api.Forbidden("GitHub refused to create a check run (403 Resource not "
                                "accessible by integration): the token needs `permissions: "
                                "checks: write` in the workflow")
        self.check_runs.append(run)
        return f"https://github.test/{REPO}/runs/{len(self.check_runs)}"

    def create_status(self, **status) -> None:
        self.statuses.append(status)

    def ours(self) -> list[Comment]:
        return [c for c in self.comments if c.author == self.login]


# --- the runner's side -------------------------------------------------------------------------

@dataclass
class Runner:
    tmp: Path
    workspace: Path

    def settings(self, event_name: str, payload: dict, **inputs: str) -> tuple[Settings, Event]:
        runner = self.tmp / "runner"
        runner.mkdir(exist_ok=True)
        (runner / "event.json").write_text(json.dumps(payload), encoding="utf-8")
        for name in ("output", "summary"):
            (runner / name).write_text("", encoding="utf-8")
        env = {"GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(runner / "event.json"),
               "GITHUB_REPOSITORY": REPO, "GITHUB_WORKSPACE": str(self.workspace),
               "GITHUB_SERVER_URL": "https://github.test", "GITHUB_RUN_ID": "4242",
               "GITHUB_OUTPUT": str(runner / "output"),
               "GITHUB_STEP_SUMMARY": str(runner / "summary"), "INPUT_GITHUB-TOKEN": TOKEN}
        env.update({f"INPUT_{k.upper().replace('_', '-')}": v for k, v in inputs.items()})
        settings = load_settings(env)
        return settings, load_event(settings.event_name, settings.event_path)

    def run(self, gh: FakeGitHub, event_name: str, payload: dict, **inputs: str) -> int:
        settings, event = self.settings(event_name, payload, **inputs)
        # Its own environment: trusting the workspace must not leak into this process's.
        return action(settings, event, gh, Git(self.workspace, environ=dict(os.environ)))

    @property
    def outputs(self) -> dict[str, str]:
        return parse_outputs((self.tmp / "runner" / "output").read_text(encoding="utf-8"))


def pull_request(tmp_path: Path, rows: list[dict], head_repo: str = REPO):
    """A pull request changing the eval set to ``rows``, checked out as GitHub does."""
    ws, base = dataset_repo(tmp_path / "ws")
    head = push_eval(ws, rows, "change the eval set")
    merge = merge_checkout(ws, base, head)
    payload = pr_payload("opened", number=NUMBER, head=head, base=base, head_repo=head_repo)
    return Runner(tmp_path, ws), base, head, merge, payload


# --- tests -------------------------------------------------------------------------------------

@pytest.mark.parametrize("rows, fail_on, code, conclusion, comments", [
    (leaks()[:10], "", 0, "success", 0),          # rows removed: nothing found, no comment
    (leaks(0), "", 1, "failure", 1),              # an exact leak fails at `error`
    (leaks(0), "never", 0, "neutral", 1),         # ... and is only reported with fail-on never
])
def test_the_conclusion_follows_the_findings_and_fail_on(tmp_path, rows, fail_on, code,
                                                         conclusion, comments):
    runner, _, head, _, payload = pull_request(tmp_path, rows)
    gh = FakeGitHub()
    assert runner.run(gh, "pull_request", payload, fail_on=fail_on) == code
    [run] = gh.check_runs
    assert (run["name"], run["head_sha"], run["conclusion"]) == ("eval-firewall", head,
                                                                 conclusion)
    assert len(run["annotations"]) == comments       # the leak, on its line
    assert len(gh.comments) == comments and gh.statuses == []
    outputs = runner.outputs
    assert outputs["status"] == ("fail" if code else "pass")
    assert outputs["check-url"] == f"https://github.test/{REPO}/runs/1"
    assert outputs["comment-url"] == (gh.comments[0].html_url if comments else "")


def test_the_comment_is_updated_in_place_never_duplicated(tmp_path):
    runner, base, head, _, payload = pull_request(tmp_path, leaks(0))
    marker = "<!-- eval-firewall-comment: eval-firewall findings=3 -->"
    gh = FakeGitHub()
    gh.comments.append(Comment(99, NUMBER, "mallory", f"{marker}\nnot ours"))
    assert runner.run(gh, "pull_request", payload) == 1
    [ours] = gh.ours()
    assert ours.body.startswith("<!-- eval-firewall-comment: eval-firewall findings=1 -->")

    # Another push: one more leak. The same comment is edited.
    git(runner.workspace, "checkout", "-q", "pr")
    head2 = push_eval(runner.workspace, leaks(0, 1), "one more")
    merge_checkout(runner.workspace, base, head2)
    again = pr_payload("synchronize", number=NUMBER, head=head2, base=base, before=head)
    assert runner.run(gh, "pull_request", again) == 1
    assert gh.ours() == [ours] and gh.edits == 1
    assert ours.body.startswith("<!-- eval-firewall-comment: eval-firewall findings=2 -->")
    assert gh.comments[0].body == f"{marker}\nnot ours"       # somebody else's: untouched
    assert [r["head_sha"] for r in gh.check_runs] == [head, head2]
    assert runner.outputs["comment-url"] == ours.html_url


def test_a_token_that_cannot_write_checks_sets_a_commit_status(tmp_path):
    runner, _, head, _, payload = pull_request(tmp_path, leaks(0))
    gh = FakeGitHub(can_write_checks=False)
    assert runner.run(gh, "pull_request", payload) == 1
    [status] = gh.statuses
    assert (status["sha"], status["state"], status["context"]) == (head, "failure",
                                                                   "eval-firewall")
    assert runner.outputs["check-url"] == "" and len(gh.ours()) == 1


def test_a_user_error_fails_the_check_with_one_line(tmp_path):
    runner, _, head, _, payload = pull_request(tmp_path, leaks(0))
    (runner.workspace / ".eval-firewall.yml").write_text("datasets: 3\n", encoding="utf-8")
    gh = FakeGitHub()
    with pytest.raises(UserError) as err:
        runner.run(gh, "pull_request", payload)
    message = one_line(err.value)
    assert "\n" not in message and ".eval-firewall.yml" in message and "datasets" in message
    [run] = gh.check_runs
    assert (run["head_sha"], run["conclusion"], run["title"]) == (
        head, "failure", "eval-firewall could not run")
    assert run["summary"].startswith("**Error:**") and "datasets" in run["summary"]
    assert gh.comments == []


def test_an_event_the_action_does_not_handle_touches_nothing(tmp_path):
    runner, _, _, _, payload = pull_request(tmp_path, leaks(0))
    gh = FakeGitHub()
    closed = {**payload, "action": "closed"}
    assert runner.run(gh, "pull_request", closed) == 0
    assert (gh.check_runs, gh.comments, runner.outputs) == ([], [], {})


def test_a_fork_is_audited_read_only_then_posted_by_workflow_run(tmp_path):
    runner, _, head, _, payload = pull_request(tmp_path, leaks(0), head_repo=FORK)
    gh = FakeGitHub()
    # Step one, the fork's pull_request run: its token is read-only, so nothing is posted.
    assert runner.run(gh, "pull_request", payload) == 1
    assert (gh.check_runs, gh.comments) == ([], [])
    report = runner.workspace / "eval-firewall-report"
    assert json.loads((report / "pull-request.json").read_text())["pull_request"] == NUMBER

    # Step two, the trusted workflow_run: GitHub does not list a fork's pull request, so the
    # number the report names is checked against the pull request's head.
    trusted = workflow_run_payload(head=head, number=NUMBER, listed=False)
    gh.heads[NUMBER] = "f" * 40                      # the pull request moved on: not posted
    with pytest.raises(UserError, match="not posting"):
        runner.run(gh, "workflow_run", trusted)
    assert (gh.check_runs, gh.comments) == ([], [])
    gh.heads[NUMBER] = head
    assert runner.run(gh, "workflow_run", trusted) == 1
    [run] = gh.check_runs
    assert (run["head_sha"], run["conclusion"]) == (head, "failure")
    [ours] = gh.ours()
    assert ours.number == NUMBER and "findings=1" in ours.body.splitlines()[0]


def test_workflow_run_fails_at_its_own_level_not_the_artifacts(tmp_path):
    """A forged artifact that says `fail_on: never` does not pass the check: the trusted
    workflow_run side judges at its own `fail-on` input, `error` when it is empty."""
    runner, _, head, _, payload = pull_request(tmp_path, leaks(0), head_repo=FORK)
    gh = FakeGitHub(heads={NUMBER: head})
    assert runner.run(gh, "pull_request", payload) == 1
    path = runner.workspace / "eval-firewall-report" / "report.json"
    forged = json.loads(path.read_text(encoding="utf-8"))
    forged["fail_on"], forged["status"] = "never", "pass"
    path.write_text(json.dumps(forged), encoding="utf-8")
    trusted = workflow_run_payload(head=head, number=NUMBER, listed=False)
    assert runner.run(gh, "workflow_run", trusted) == 1
    assert gh.check_runs[-1]["conclusion"] == "failure"
    assert runner.outputs["status"] == "fail"
    # The trusted workflow's own input still decides.
    assert runner.run(gh, "workflow_run", trusted, fail_on="never") == 0
    assert runner.outputs["status"] == "pass"
