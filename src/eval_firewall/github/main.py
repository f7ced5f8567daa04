"""``eval-firewall github``: what the action does for each event. Orchestration only.

:func:`run` (the entry point) builds the settings, the event, the GitHub client and the git
checkout once and hands them to :func:`action`, which a unit test can call with a fake
client.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..config import Config, load_config, with_model_path
from ..engine import run_audits
from ..errors import UserError
from ..findings import Report
from ..incremental.git import Git
from ..policy.load import ApprovalSource, Gate, Trusted, gate, trusted_file
from ..policy.waivers import Listed
from ..progress import Progress
from ..report.markdown import render_markdown
from ..rules import Rule
from . import api, approval, artifact, check, comment
from .event import Event, PullRequestEvent, PushEvent, WorkflowRunEvent, load_event
from .outputs import SUMMARY_MAX_CHARS, add_job_summary, command, log, set_outputs
from .settings import Settings, load_settings

# The fail level of a workflow_run run whose `fail-on` input is empty.
DEFAULT_FAIL_ON = "error"


class Audit(Protocol):
    """What runs the audits: :func:`eval_firewall.engine.run_audits`."""

    def __call__(self, config: Config, *, progress: Progress | None, base: str | None,
                 cache_dir: Path | None, allow_commands: bool,
                 waivers: list[Listed] | None) -> Report:
        """The report of the audits ``config`` enables."""
        ...


@dataclass(frozen=True, slots=True)
class Subject:
    """What a run is about: the commit to report on and, for a pull request, its number."""

    head_sha: str
    pull_request: int | None
    post: bool                 # False in a fork's pull_request run: the token is read-only


@dataclass(slots=True)
class Posted:
    comment_url: str | None = None
    check_url: str | None = None


def run(env: Mapping[str, str] = os.environ) -> int:
    """Run the action for the event in ``env``; the exit code of the step."""
    settings = load_settings(env)
    event = load_event(settings.event_name, settings.event_path)
    gh = api.RestGitHub(settings.token.get_secret_value(), settings.api_url,
                        settings.repository)
    return action(settings, event, gh, Git(settings.workspace))


def action(settings: Settings, event: Event, gh: api.GitHub, git: Git,
           audit: Audit = run_audits) -> int:
    """Audit the checkout (or, for a workflow run, read the report it left), write the
    reports and outputs, post the comment and the check run; the exit code of the step."""
    if not event.handled:
        log(f"nothing to do for {settings.event_name}.{event.action}")
        return 0
    if isinstance(event, WorkflowRunEvent):
        return _from_artifact(settings, event, gh)
    return _audit(settings, event, gh, git, audit)


def _audit(settings: Settings, event: PullRequestEvent | PushEvent, gh: api.GitHub, git: Git,
           audit: Audit) -> int:
    if isinstance(event, PullRequestEvent):
        fork = event.runs_in_fork_context
        subject = Subject(event.head_sha, event.number, post=settings.post and not fork)
        if fork:
            log("pull request from a fork: its token is read-only, so nothing is posted; "
                f"the report in {settings.report_dir}/ is for the workflow_run step to post")
    else:
        subject = Subject(event.after or settings.sha or "", None, post=settings.post)
    if not settings.post:
        log(f"post: false, so nothing is posted; the report is in {settings.report_dir}/")
    if isinstance(event, PullRequestEvent) and event.name == "pull_request_review" \
            and subject.post and gh.pull_head_sha(event.number) != event.head_sha:
        # A review of a commit that is no longer the head approves nothing, and the run of
        # the newer head reports on it: posting here would put an old verdict back.
        log(f"the review is of {event.head_sha[:7]}, no longer the head of pull request "
            f"#{event.number}: nothing to do")
        return 0
    try:
        return _audit_checkout(settings, event, subject, gh, git, audit)
    except UserError as exc:
        if subject.post and subject.head_sha and not isinstance(exc, api.GitHubError):
            _report_error(settings, subject, exc, gh)
        raise


def _audit_checkout(settings: Settings, event: PullRequestEvent | PushEvent,
                    subject: Subject, gh: api.GitHub, git: Git, audit: Audit) -> int:
    workspace = settings.workspace
    git.trust()
    git.check_repository()
    base: str | None
    if isinstance(event, PullRequestEvent):
        base = git.resolve_base(event.base_sha,
                                what=f"pull request #{event.number}'s base commit")
    else:
        base = (git.resolve_base(event.before, what="the previous commit")
                if event.before else None)
    policy = _policy(settings, event, gh, git, base)
    config = policy.config
    if settings.fail_on:
        config = config.model_copy(update={"fail_on": settings.fail_on})
    if settings.model_path is not None:     # a trusted input: the model the workflow names
        config = with_model_path(config, settings.model_path)
    # The invariance audit's prediction command comes from the config: a pull request's
    # config is its author's, so it never runs for one; a push's config is the branch's own.
    report = audit(config, progress=Progress(enabled=True), base=base,
                   cache_dir=settings.in_workspace(settings.cache_dir)
                   if settings.cache_dir else None,
                   allow_commands=isinstance(event, PushEvent), waivers=policy.waivers)
    report = policy.finish(report, _rules())
    prefix = _prefix(config, workspace)
    target = comment.Target(settings.server_url, settings.repository, subject.head_sha, prefix)
    context = artifact.RunContext(repository=settings.repository, head_sha=subject.head_sha,
                                  pull_request=subject.pull_request, path_prefix=prefix)
    return _finish(settings, report, target, context, subject, gh)


def _report_error(settings: Settings, subject: Subject, error: UserError,
                  gh: api.GitHub) -> None:
    """A run that could not audit (bad config, missing history) fails its check visibly,
    rather than leaving a required check waiting forever."""
    try:
        check.post_error(gh, str(error), name=settings.check_name, head_sha=subject.head_sha,
                         run_url=settings.run_url)
    except UserError as exc:
        log(f"could not report the error on a check run either: {exc}")


def _from_artifact(settings: Settings, event: WorkflowRunEvent, gh: api.GitHub) -> int:
    """The trusted half of the fork two-step: post what the pull_request run reported.
    Nothing from the pull request runs here; its report is read as data."""
    directory = settings.in_workspace(settings.report_dir)
    context = artifact.read_context(directory)
    report = artifact.read_untrusted_report(directory)
    if context.repository != settings.repository:
        raise UserError(f"the report is for {context.repository}, not {settings.repository}",
                        path=str(directory / artifact.CONTEXT_JSON), field="repository")
    if context.head_sha != event.head_sha:
        raise UserError(f"the report is for commit {context.head_sha[:7]}, but the workflow run "
                        f"is for {event.head_sha[:7]}; download the artifact of the run that "
                        "triggered this one", path=str(directory / artifact.CONTEXT_JSON),
                        field="head_sha")
    # The level is this trusted workflow's own input, never the artifact's: a forged report
    # could say `fail_on: never`. There is no config here (nothing is checked out).
    report = report.with_fail_on(settings.fail_on or DEFAULT_FAIL_ON, report.fail_on_existing)
    number = _pull_request_of(event, context, gh)
    subject = Subject(event.head_sha, number, post=True)
    target = comment.Target(settings.server_url, settings.repository, event.head_sha,
                            context.path_prefix)
    return _finish(settings, report, target, context, subject, gh)


def _pull_request_of(event: WorkflowRunEvent, context: artifact.RunContext,
                     gh: api.GitHub) -> int | None:
    """The pull request to comment on. GitHub lists it in the payload for branches of this
    repository; for a fork it does not, so the number the artifact names is checked: that
    pull request's head must be the commit the workflow run ran on."""
    if context.pull_request is None:
        return None
    if context.pull_request in event.pull_requests:
        return context.pull_request
    if event.pull_requests:
        return event.pull_requests[0]
    head = gh.pull_head_sha(context.pull_request)
    if head != event.head_sha:
        raise UserError(f"pull request #{context.pull_request} is at {head[:7]}, not at the "
                        f"audited commit {event.head_sha[:7]}; not posting",
                        field="pull_request")
    return context.pull_request


def _rules() -> dict[str, Rule]:
    from ..audits import RULES
    return RULES


def _policy(settings: Settings, event: PullRequestEvent | PushEvent, gh: api.GitHub, git: Git,
            base: str | None) -> Gate:
    """The gate's policy (docs: action/policy.md, What a pull request can change): on a pull request the base
    commit's config and waivers, with the changes approved in a review; on a push the
    branch's own (it was approved to get there); the trusted inputs laid over both."""
    head = load_config(settings.in_workspace(settings.config))
    trusted = Trusted(ceiling=settings.max_limits)
    if settings.policy:
        trusted = Trusted(trusted_file(git, base, settings.policy, settings.workspace),
                          settings.policy, settings.max_limits)
    approvals = None
    if isinstance(event, PullRequestEvent) and base is not None:
        approvals = _approvals(event, gh, git, base, _prefix(head, settings.workspace))
    policy = gate(head, base, rules=_rules(), approvals=approvals,
                  trust_head=isinstance(event, PushEvent), trusted=trusted)
    for note in policy.notes:
        command("warning", note)
    return policy


def _approvals(event: PullRequestEvent, gh: api.GitHub, git: Git, base: str,
               prefix: str) -> ApprovalSource:
    """Who approved the pull request's policy changes, asked only when some loosen the gate."""
    def read(files: Sequence[str]) -> approval.Approvals:
        codeowners = None
        for path in approval.CODEOWNERS_PATHS:
            raw = git.read_at(base, path, approval.CODEOWNERS_MAX_BYTES)
            if raw is not None:
                codeowners = raw.decode("utf-8", "replace")
                break
        try:
            return approval.read_approvals(gh, event.number, event.head_sha,
                                           {f: prefix + f for f in files}, codeowners)
        except api.GitHubError as exc:      # no approval can be shown: the changes wait
            command("warning", f"could not read the pull request's reviews: {exc}")
            return approval.Approvals({}, {f: "the reviews could not be read (the token needs "
                                           "`permissions: pull-requests: read`)" for f in files})
    return read


def _prefix(config: Config, workspace: Path) -> str:
    try:
        rel = config.root.resolve().relative_to(workspace.resolve()).as_posix()
    except ValueError:
        return ""
    return "" if rel == "." else rel + "/"


def _finish(settings: Settings, report: Report, target: comment.Target,
            context: artifact.RunContext, subject: Subject, gh: api.GitHub) -> int:
    full = render_markdown(report, link=target.link, max_chars=SUMMARY_MAX_CHARS,
                           omitted_hint="the JSON report has the full list",
                           commit=target.head_sha, compare_url=target.compare_url(report.base))
    directory = settings.in_workspace(settings.report_dir)
    json_path = artifact.write_reports(directory, report, full, context)
    add_job_summary(settings.step_summary, full)
    posted = _publish(settings, report, target, subject, gh) if subject.post else Posted()
    counts = report.counts
    set_outputs(settings.output, {
        "status": report.status,
        "findings": counts.findings,
        "new-findings": counts.new,
        "failing-findings": counts.failing,
        "report-path": _display(json_path, settings.workspace),
        "sarif-path": _display(directory / artifact.REPORT_SARIF, settings.workspace),
        "report-dir": _display(directory, settings.workspace),
        "comment-url": posted.comment_url or "",
        "check-url": posted.check_url or "",
    })
    log(f"{report.status}: {counts.findings} finding(s), {counts.failing} failing")
    return 0 if report.status == "pass" else 1


def _display(path: Path, workspace: Path) -> str:
    """Paths relative to the workspace: the container's /github/workspace is the runner's
    $GITHUB_WORKSPACE, so only relative paths mean the same thing in later steps."""
    try:
        return path.resolve().relative_to(workspace.resolve()).as_posix()
    except ValueError:
        return str(path)


def _publish(settings: Settings, report: Report, target: comment.Target, subject: Subject,
             gh: api.GitHub) -> Posted:
    posted = Posted(check_url=check.post(gh, report, target, name=settings.check_name,
                                         run_url=settings.run_url))
    if subject.pull_request is not None and settings.comment != "never":
        posted.comment_url = comment.post(gh, subject.pull_request, report, target=target,
                                          mode=settings.comment,
                                          check_name=settings.check_name,
                                          run_url=settings.run_url)
    return posted
