"""GitHub's real webhook payloads parse into typed events."""

from __future__ import annotations

import json

import pytest

from conftest import WEBHOOKS
from eval_firewall.errors import UserError
from eval_firewall.github.event import PullRequestEvent, WorkflowRunEvent, load_event, parse_event


@pytest.mark.parametrize("name", ["opened", "reopened", "synchronize"])
def test_pull_request_payloads(name):
    event = load_event("pull_request", WEBHOOKS / f"pull_request.{name}.payload.json")
    assert isinstance(event, PullRequestEvent) and event.handled
    assert (event.number, event.head_sha[:7], event.base_sha[:7]) == (2, "ec26c3e", "f95f852")
    assert event.base_ref == "master" and not event.is_fork


def test_pull_request_target_and_null_body_and_fork():
    payload = json.loads((WEBHOOKS / "pull_request.opened.with-null-body.json").read_text())
    payload["pull_request"]["head"]["repo"]["full_name"] = "someone/Hello-World"
    event = parse_event("pull_request_target", payload)
    assert event.name == "pull_request_target" and event.is_fork


def test_workflow_run_payload():
    event = load_event("workflow_run",
                       WEBHOOKS / "workflow_run.completed.with-pull-requests.payload.json")
    assert isinstance(event, WorkflowRunEvent) and event.handled
    assert event.pull_requests == (2,) and event.head_sha.startswith("3484a3f")


def test_push_payload_first_push_of_a_branch_has_no_base():
    event = parse_event("push", {"ref": "refs/heads/x", "before": "0" * 40, "after": "a" * 40})
    assert event.before is None and event.after == "a" * 40 and event.handled
    deleted = parse_event("push", {"ref": "refs/heads/x", "before": "a" * 40, "after": "0" * 40})
    assert not deleted.handled and deleted.action == "deleted"


def test_unsupported_and_malformed_events_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="not supported"):
        load_event("issue_comment", WEBHOOKS / "check_run.completed.payload.json")
    with pytest.raises(UserError) as info:
        parse_event("pull_request", {"action": "opened", "pull_request": {"number": 1}})
    assert info.value.field and "head" in info.value.field
    bad = tmp_path / "event.json"
    bad.write_text("{nope")
    with pytest.raises(UserError, match="cannot read the event payload"):
        load_event("push", bad)
