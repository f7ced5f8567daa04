"""``eval-firewall github``: what the action does for each event. Orchestration only."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..config import Config, load_config
from ..engine import run_audits
from ..errors import UserError
from ..findings import Report
from ..progress import Progress
from ..report.markdown import render_markdown
from . import api, artifact, check, comment, gitops
from .event import PullRequestEvent, PushEvent, WorkflowRunEvent, load_event
from .outputs import SUMMARY_MAX_CHARS, add_job_summary, command, log, set_outputs
from .settings import Settings, load_settings


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
    if not event.handled:
        log(f"nothing to do for {settings.event_name}.{event.action}")
        return 0
    if isinstance(event, WorkflowRunEvent):
        return _from_artifact(settings, event)
    return _audit(settings, event)


def _audit(settings: Settings, event: PullRequestEvent | PushEvent) -> int:
    if isinstance(event, PullRequestEvent):
        fork = event.name == "pull_request" and event.is_fork
        subject = Subject(event.head_sha, event.number, post=settings.post and not fork)
        if fork:
            log("pull request from a fork: its token is read-only, so nothing is posted; "
                f"the report in {settings.report_dir}/ is for the workflow_run step to post")
    else:
        subject = Subject(event.after or settings.sha or "", None, post=settings.post)
    if not settings.post:
        log(f"post: false, so nothing is posted; the report is in {settings.report_dir}/")
    try:
        return _audit_checkout(settings, event, subject)
    except UserError as exc:
        if subject.post and subject.head_sha and not isinstance(exc, api.GitHubError):
            _report_error(settings, subject, exc)
        raise


def _audit_checkout(settings: Settings, event: PullRequestEvent | PushEvent,
                    subject: Subject) -> int:
    workspace = settings.workspace
    gitops.trust_workspace(workspace)
    gitops.check_repository(workspace)
    if isinstance(event, PullRequestEvent):
        base = gitops.resolve_base(workspace, event.base_sha,
                                   what=f"pull request #{event.number}'s base commit")
    else:
        base = (gitops.resolve_base(workspace, event.before, what="the previous commit")
                if event.before else None)
    config = _config(settings)
    # The invariance audit's prediction command comes from the config: a pull request's
    # config is its author's, so it never runs for one; a push's config is the branch's own.
    report = run_audits(config, progress=Progress(enabled=True), base=base,
                        cache_dir=settings.in_workspace(settings.cache_dir)
                        if settings.cache_dir else None,
                        allow_commands=isinstance(event, PushEvent))
    prefix = _prefix(config, workspace)
    target = comment.Target(settings.server_url, settings.repository, subject.head_sha, prefix)
    context = artifact.RunContext(repository=settings.repository, head_sha=subject.head_sha,
                                  pull_request=subject.pull_request, path_prefix=prefix)
    return _finish(settings, report, target, context, subject)


def _report_error(settings: Settings, subject: Subject, error: UserError) -> None:
    """A run that could not audit (bad config, missing history) fails its check visibly,
    rather than leaving a required check waiting forever."""
    try:
        gh = api.client(settings.token.get_secret_value(), settings.api_url)
        api.create_check_run(api.get_repo(gh, settings.repository), name=settings.check_name,
                             head_sha=subject.head_sha, conclusion="failure",
                             title="eval-firewall could not run",
                             summary=check.error_summary(str(error), settings.run_url),
                             annotations=[], details_url=settings.run_url)
    except UserError as exc:
        log(f"could not report the error on a check run either: {exc}")


def _from_artifact(settings: Settings, event: WorkflowRunEvent) -> int:
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
    report = report.with_fail_on(settings.fail_on or report.fail_on, report.fail_on_existing)
    number = _pull_request_of(settings, event, context)
    subject = Subject(event.head_sha, number, post=True)
    target = comment.Target(settings.server_url, settings.repository, event.head_sha,
                            context.path_prefix)
    return _finish(settings, report, target, context, subject)


def _pull_request_of(settings: Settings, event: WorkflowRunEvent,
                     context: artifact.RunContext) -> int | None:
    """The pull request to comment on. GitHub lists it in the payload for branches of this
    repository; for a fork it does not, so the number the artifact names is checked: that
    pull request's head must be the commit the workflow run ran on."""
    if context.pull_request is None:
        return None
    if context.pull_request in event.pull_requests:
        return context.pull_request
    if event.pull_requests:
        return event.pull_requests[0]
    repo = api.get_repo(api.client(settings.token.get_secret_value(), settings.api_url),
                        settings.repository)
    head = api.pull_head_sha(repo, context.pull_request)
    if head != event.head_sha:
        raise UserError(f"pull request #{context.pull_request} is at {head[:7]}, not at the "
                        f"audited commit {event.head_sha[:7]}; not posting",
                        field="pull_request")
    return context.pull_request


def _config(settings: Settings) -> Config:
    config = load_config(settings.in_workspace(settings.config))
    if settings.fail_on:
        config = config.model_copy(update={"fail_on": settings.fail_on})
    return config


def _prefix(config: Config, workspace: Path) -> str:
    try:
        rel = config.root.resolve().relative_to(workspace.resolve()).as_posix()
    except ValueError:
        return ""
    return "" if rel == "." else rel + "/"


def _finish(settings: Settings, report: Report, target: comment.Target,
            context: artifact.RunContext, subject: Subject) -> int:
    full = render_markdown(report, link=target.link, max_chars=SUMMARY_MAX_CHARS,
                           omitted_hint="the JSON report has the full list",
                           commit=target.head_sha, compare_url=target.compare_url(report.base))
    directory = settings.in_workspace(settings.report_dir)
    json_path = artifact.write_reports(directory, report, full, context)
    add_job_summary(settings.step_summary, full)
    posted = _publish(settings, report, target, subject) if subject.post else Posted()
    findings = report.findings
    set_outputs(settings.output, {
        "status": report.status,
        "findings": len(findings),
        "new-findings": sum(1 for f in findings if f.new),
        "failing-findings": len(report.failing()),
        "report-path": _display(json_path, settings.workspace),
        "sarif-path": _display(directory / artifact.REPORT_SARIF, settings.workspace),
        "report-dir": _display(directory, settings.workspace),
        "comment-url": posted.comment_url or "",
        "check-url": posted.check_url or "",
    })
    log(f"{report.status}: {len(findings)} finding(s), {len(report.failing())} failing")
    return 0 if report.status == "pass" else 1


def _display(path: Path, workspace: Path) -> str:
    """Paths relative to the workspace: the container's /github/workspace is the runner's
    $GITHUB_WORKSPACE, so only relative paths mean the same thing in later steps."""
    try:
        return path.resolve().relative_to(workspace.resolve()).as_posix()
    except ValueError:
        return str(path)


def _publish(settings: Settings, report: Report, target: comment.Target,
             subject: Subject) -> Posted:
    gh = api.client(settings.token.get_secret_value(), settings.api_url)
    repo = api.get_repo(gh, settings.repository)
    posted = Posted(check_url=_publish_check(settings, repo, report, target, subject))
    if subject.pull_request is not None and settings.comment != "never":
        posted.comment_url = _publish_comment(settings, gh, repo, report, target,
                                              subject.pull_request)
    return posted


def _publish_check(settings: Settings, repo, report: Report, target: comment.Target,
                   subject: Subject) -> str | None:
    name, conclusion, title = settings.check_name, check.conclusion(report), check.title(report)
    notes = check.annotations(report, target)
    try:
        run = api.create_check_run(
            repo, name=name, head_sha=subject.head_sha, conclusion=conclusion, title=title,
            summary=check.summary(report, target, settings.run_url), annotations=notes,
            details_url=settings.run_url)
    except api.Forbidden as exc:
        command("warning", f"{exc}. Falling back to a commit status '{name}' (no line "
                "annotations).")
        api.create_status(repo, sha=subject.head_sha, state=check.STATES[conclusion],
                          context=name, description=title, target_url=settings.run_url)
        log(f"commit status '{name}': {check.STATES[conclusion]}")
        return None
    log(f"check run '{name}': {conclusion}, {len(notes)} annotation(s)")
    return run.html_url


def _publish_comment(settings: Settings, gh, repo, report: Report, target: comment.Target,
                     number: int) -> str | None:
    login = api.my_login(gh)
    name = settings.check_name
    existing = api.find_comment(
        repo, number, login, lambda body: comment.previous_findings(body, name) is not None)
    if not comment.should_comment(settings.comment, report, existing is not None):
        log(f"no comment on #{number}: no findings (comment: {settings.comment})")
        return None
    previous = comment.previous_findings(existing.body, name) if existing else None
    body = comment.comment_body(report, target=target, check_name=name,
                                run_url=settings.run_url, previous=previous)
    if existing is not None:
        api.update_comment(existing, body)
        log(f"updated the comment on #{number}")
        return existing.html_url
    created = api.create_comment(repo, number, body)
    log(f"commented on #{number}")
    return created.html_url
