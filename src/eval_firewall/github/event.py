"""The webhook payload GitHub writes to ``GITHUB_EVENT_PATH``, parsed into typed events.

Only the fields eval-firewall uses are read; everything else in the payload is ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import UserError, validation_error

NULL_SHA = "0" * 40
PR_ACTIONS = ("opened", "synchronize", "reopened")
# A review submitted or dismissed may approve, or take back, a change of the gate's policy.
REVIEW_ACTIONS = ("submitted", "dismissed")
SUPPORTED = ("pull_request", "pull_request_target", "pull_request_review", "push",
             "workflow_run")


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _RepoRef(_Loose):
    full_name: str


class _Branch(_Loose):
    ref: str
    sha: str
    repo: _RepoRef | None = None   # null when the fork was deleted


class _PullRequest(_Loose):
    number: int
    head: _Branch
    base: _Branch


class _PullRequestPayload(_Loose):
    action: str
    pull_request: _PullRequest
    repository: _RepoRef


class _PushPayload(_Loose):
    ref: str
    before: str
    after: str


class _Commit(_Loose):
    sha: str


class _RunPull(_Loose):
    number: int
    head: _Commit          # its repo has no full_name in workflow_run payloads


class _WorkflowRun(_Loose):
    id: int
    event: str
    head_sha: str
    conclusion: str | None = None
    pull_requests: list[_RunPull] = []
    head_repository: _RepoRef | None = None


class _WorkflowRunPayload(_Loose):
    action: str
    workflow_run: _WorkflowRun


@dataclass(frozen=True, slots=True)
class PullRequestEvent:
    name: str          # pull_request | pull_request_target | pull_request_review
    action: str
    number: int
    head_sha: str
    base_sha: str
    base_ref: str
    head_repo: str | None
    base_repo: str

    @property
    def is_fork(self) -> bool:
        """Whether the head branch lives in another repository (its token is read-only)."""
        return self.head_repo != self.base_repo

    @property
    def handled(self) -> bool:
        """Opened, synchronized or reopened: the pull request's content may have changed; a
        review submitted or dismissed: an approval of its policy changes may have."""
        if self.name == "pull_request_review":
            return self.action in REVIEW_ACTIONS
        return self.action in PR_ACTIONS

    @property
    def runs_in_fork_context(self) -> bool:
        """A fork's ``pull_request`` or ``pull_request_review`` run: its token is read-only."""
        return self.name in ("pull_request", "pull_request_review") and self.is_fork


@dataclass(frozen=True, slots=True)
class PushEvent:
    ref: str
    before: str | None   # None for the first push of a branch
    after: str

    @property
    def handled(self) -> bool:
        """Every push but a branch's deletion."""
        return self.after != NULL_SHA

    @property
    def action(self) -> str:
        """``push``, or ``deleted`` for a branch's deletion."""
        return "push" if self.handled else "deleted"


@dataclass(frozen=True, slots=True)
class WorkflowRunEvent:
    action: str
    run_id: int
    triggering_event: str
    head_sha: str
    head_repo: str | None
    conclusion: str | None
    pull_requests: tuple[int, ...]   # empty for a fork's pull request: GitHub leaves it out

    @property
    def handled(self) -> bool:
        """Only a completed run has a report to post."""
        return self.action == "completed"


Event = PullRequestEvent | PushEvent | WorkflowRunEvent


def parse_event(name: str, payload: dict[str, Any], *, source: str = "event") -> Event:
    """The typed event of a webhook payload; one line naming the field a payload lacks."""
    try:
        if name in ("pull_request", "pull_request_target", "pull_request_review"):
            p = _PullRequestPayload.model_validate(payload)
            pr = p.pull_request
            return PullRequestEvent(
                name=name, action=p.action, number=pr.number, head_sha=pr.head.sha,
                base_sha=pr.base.sha, base_ref=pr.base.ref,
                head_repo=pr.head.repo.full_name if pr.head.repo else None,
                base_repo=pr.base.repo.full_name if pr.base.repo else p.repository.full_name)
        if name == "push":
            push = _PushPayload.model_validate(payload)
            before = None if push.before == NULL_SHA else push.before
            return PushEvent(ref=push.ref, before=before, after=push.after)
        if name == "workflow_run":
            done = _WorkflowRunPayload.model_validate(payload)
            run = done.workflow_run
            return WorkflowRunEvent(
                action=done.action, run_id=run.id, triggering_event=run.event,
                head_sha=run.head_sha,
                head_repo=run.head_repository.full_name if run.head_repository else None,
                conclusion=run.conclusion,
                pull_requests=tuple(pr.number for pr in run.pull_requests))
    except ValidationError as exc:
        raise validation_error(exc, path=source, prefix=f"unexpected {name} payload: ") from None
    raise UserError(f"event '{name}' is not supported; run the action on: "
                    + ", ".join(SUPPORTED))


def load_event(name: str, path: Path) -> Event:
    """The event GitHub wrote to ``path`` (``GITHUB_EVENT_PATH``)."""
    if name not in SUPPORTED:
        raise UserError(f"event '{name}' is not supported; run the action on: "
                        + ", ".join(SUPPORTED))
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the event payload: {exc}", path=str(path)) from None
    if not isinstance(payload, dict):
        raise UserError("the event payload is not a JSON object", path=str(path))
    return parse_event(name, payload, source=str(path))
