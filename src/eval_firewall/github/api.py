"""Every GitHub call eval-firewall makes, each a short function taking the client, and
:class:`GitHub`, the seam the action talks to (:class:`RestGitHub` over HTTP, a fake in tests).

This package is the only place that imports PyGithub. Transient failures (5xx, secondary rate
limits) are retried with backoff by PyGithub's ``GithubRetry``; what is left becomes a
:class:`GitHubError`, a one-line message naming the permission the token lacks.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

import requests
from github import Auth, Github, GithubException, GithubRetry
from github.CheckRun import CheckRun
from github.GithubObject import NotSet
from github.IssueComment import IssueComment
from github.Repository import Repository

from ..errors import UserError

if TYPE_CHECKING:
    from .approval import Review

# The login of GITHUB_TOKEN's identity: that token may not read GET /user (403).
GITHUB_ACTIONS_LOGIN = "github-actions[bot]"
ANNOTATIONS_PER_REQUEST = 50     # the Checks API's limit per request
USER_AGENT = "eval-firewall"


class GitHubError(UserError):
    """GitHub refused or failed a call; the message says what to change."""


class Forbidden(GitHubError):
    """403/404 on a write: the token lacks a permission."""


class _RetryLog(logging.Filter):
    """PyGithub's retry messages, minus the expected 403 of ``GET /user`` for GITHUB_TOKEN."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Request GET ") and "/user failed with 403" in message)


def _show_retries() -> None:
    logger = logging.getLogger("github.GithubRetry")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("eval-firewall: GitHub: %(message)s"))
        handler.addFilter(_RetryLog())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def client(token: str, api_url: str, *, retries: int = 5) -> Github:
    """The PyGithub client: retries with backoff, one request at a time, pages of 100."""
    _show_retries()
    if not token:
        raise UserError("no GitHub token: the github-token input is empty",
                        field="github-token", hint="its default is ${{ github.token }}")
    retry = GithubRetry(total=retries, backoff_factor=1.0, secondary_rate_wait=60,
                        max_rate_limit_wait=600)
    # Requests are made one at a time; writes keep GitHub's advised second between them.
    return Github(auth=Auth.Token(token), base_url=api_url, retry=retry, lazy=True,
                  per_page=100, timeout=60, user_agent=USER_AGENT,
                  seconds_between_requests=None, seconds_between_writes=1.0)


def _message(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    text = str(data.get("message") or exc.message or "")
    details = [str(e.get("message") or f"{e.get('field', '')}: {e.get('code', 'invalid')}")
               for e in data.get("errors", []) if isinstance(e, dict)]
    return "; ".join(t for t in [text, *details] if t)[:300]


@contextmanager
def calling(action: str, permission: str) -> Iterator[None]:
    """Turn what PyGithub raises while doing ``action`` into a one-line :class:`GitHubError`."""
    try:
        yield
    except GithubException as exc:
        detail = _message(exc)
        if exc.status == 401:
            raise GitHubError(f"GitHub rejected the token while trying to {action} "
                              f"(401 {detail})", field="github-token") from None
        if exc.status in (403, 404):
            raise Forbidden(f"GitHub refused to {action} ({exc.status} {detail}): the token "
                            f"needs `permissions: {permission}` in the workflow") from None
        raise GitHubError(f"GitHub failed to {action} ({exc.status} {detail})") from None
    except requests.exceptions.RequestException as exc:
        raise GitHubError(f"GitHub did not answer while trying to {action} after retries "
                          f"({type(exc).__name__})") from None


def my_login(gh: Github) -> str:
    """The login of the token's identity; GITHUB_TOKEN (an app installation) may not ask."""
    try:
        return gh.get_user().login
    except GithubException as exc:
        if exc.status == 403:
            return GITHUB_ACTIONS_LOGIN
        with calling("read the token's user", "(a valid token)"):
            raise


def get_repo(gh: Github, full_name: str) -> Repository:
    """The repository, without a request (PyGithub is lazy)."""
    return gh.get_repo(full_name)   # lazy: no request until something is asked of it


def pull_head_sha(repo: Repository, number: int) -> str:
    """The head commit of a pull request."""
    with calling(f"read pull request #{number}", "pull-requests: read"):
        return repo.get_pull(number).head.sha


def pull_author(repo: Repository, number: int) -> str:
    """The login of a pull request's author."""
    with calling(f"read pull request #{number}", "pull-requests: read"):
        return repo.get_pull(number).user.login


def reviews(repo: Repository, number: int) -> list[Review]:
    """A pull request's reviews, oldest first (every page)."""
    from .approval import Review

    with calling(f"list the reviews of pull request #{number}", "pull-requests: read"):
        return [Review(r.user.login if r.user is not None else None, r.state, r.commit_id)
                for r in repo.get_pull(number).get_reviews()]


def commit_author(repo: Repository, sha: str) -> str | None:
    """The GitHub login of a commit's author; None when its e-mail is no account's."""
    with calling(f"read commit {sha[:7]}", "contents: read"):
        author = repo.get_commit(sha).author
        return author.login if author is not None else None


def team_member(gh: Github, org: str, slug: str, login: str) -> bool | None:
    """Whether ``login`` is an active member of team ``org/slug``; None when the token may
    not read the team's membership (GITHUB_TOKEN never may)."""
    try:
        team = gh.get_organization(org).get_team_by_slug(slug)
        return team.get_team_membership(login).state == "active"
    except GithubException as exc:
        if exc.status == 404 and team_visible(gh, org, slug):
            return False            # the team exists and says: not a member
        return None
    except requests.exceptions.RequestException:
        return None


def team_visible(gh: Github, org: str, slug: str) -> bool:
    """Whether the token can see the team itself (then a 404 on a membership means "no")."""
    try:
        gh.get_organization(org).get_team_by_slug(slug).id   # noqa: B018  (a GET)
        return True
    except (GithubException, requests.exceptions.RequestException):
        return False


def find_comment(repo: Repository, number: int, login: str,
                 is_ours: Callable[[str], bool]) -> IssueComment | None:
    """The sticky comment: carries our marker *and* was written by us (never hijack another)."""
    with calling(f"list the comments of pull request #{number}", "pull-requests: read"):
        for comment in repo.get_issue(number).get_comments():
            if comment.user.login == login and is_ours(comment.body or ""):
                return comment
    return None


def create_comment(repo: Repository, number: int, body: str) -> IssueComment:
    """A new comment on a pull request."""
    with calling(f"comment on pull request #{number}", "pull-requests: write"):
        return repo.get_issue(number).create_comment(body)


def update_comment(comment: IssueComment, body: str) -> None:
    """Replace a comment's body."""
    with calling("update the eval-firewall comment", "pull-requests: write"):
        comment.edit(body)


def _batches(items: Sequence[dict[str, Any]],
             size: int = ANNOTATIONS_PER_REQUEST) -> list[list[dict[str, Any]]]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)] or [[]]


def create_check_run(repo: Repository, *, name: str, head_sha: str, conclusion: str,
                     title: str, summary: str, annotations: Sequence[dict[str, Any]],
                     details_url: str | None = None) -> CheckRun:
    """A completed check run; annotations go 50 per request (the rest in updates, which
    GitHub appends)."""
    batches = _batches(annotations)
    output: dict[str, Any] = {"title": title, "summary": summary}
    with calling("create a check run", "checks: write"):
        run = repo.create_check_run(name=name, head_sha=head_sha, status="completed",
                                    conclusion=conclusion,
                                    output={**output, "annotations": batches[0]},
                                    details_url=details_url or NotSet)
        for batch in batches[1:]:
            run.edit(output={**output, "annotations": batch})
    return run


def create_status(repo: Repository, *, sha: str, state: str, context: str, description: str,
                  target_url: str | None = None) -> None:
    """A commit status: what a token that cannot write check runs can still set."""
    extra = {"target_url": target_url} if target_url else {}
    with calling("set a commit status", "statuses: write"):
        repo.get_commit(sha).create_status(state=state, description=description[:140],
                                           context=context, **extra)


class Comment(Protocol):
    """A pull-request comment, as the action reads it."""

    @property
    def body(self) -> str: ...     # noqa: D102

    @property
    def html_url(self) -> str: ...     # noqa: D102


class GitHub(Protocol):
    """What the action asks of GitHub, for the repository it runs in."""

    def my_login(self) -> str:
        """The login of the token's identity."""
        ...

    def pull_head_sha(self, number: int) -> str:
        """The head commit of pull request ``number``."""
        ...

    def find_comment(self, number: int, login: str,
                     is_ours: Callable[[str], bool]) -> Comment | None:
        """The first comment by ``login`` on pull request ``number`` that ``is_ours``."""
        ...

    def pull_author(self, number: int) -> str:
        """The login of pull request ``number``'s author."""
        ...

    def reviews(self, number: int) -> list[Review]:
        """The reviews of pull request ``number``, oldest first."""
        ...

    def commit_author(self, sha: str) -> str | None:
        """The GitHub login of the commit's author, if its e-mail is an account's."""
        ...

    def team_member(self, org: str, slug: str, login: str) -> bool | None:
        """Whether ``login`` is in team ``org/slug``; None when the token may not tell."""
        ...

    def create_comment(self, number: int, body: str) -> Comment:
        """A new comment on pull request ``number``."""
        ...

    def update_comment(self, comment: Comment, body: str) -> None:
        """Replace the body of a comment ``find_comment`` returned."""
        ...

    def create_check_run(self, *, name: str, head_sha: str, conclusion: str, title: str,
                         summary: str, annotations: Sequence[dict[str, Any]],
                         details_url: str | None) -> str:
        """A completed check run; its URL."""
        ...

    def create_status(self, *, sha: str, state: str, context: str, description: str,
                      target_url: str | None) -> None:
        """A commit status (when the token cannot write check runs)."""
        ...


class RestGitHub:
    """:class:`GitHub` over GitHub's REST API. The client is built on the first call, so a
    run that posts nothing needs no token."""

    def __init__(self, token: str, api_url: str, repository: str) -> None:
        self._token, self._api_url, self._repository = token, api_url, repository

    @cached_property
    def _gh(self) -> Github:
        return client(self._token, self._api_url)

    @cached_property
    def _repo(self) -> Repository:
        return get_repo(self._gh, self._repository)

    def my_login(self) -> str:
        """The login of the token's identity."""
        return my_login(self._gh)

    def pull_head_sha(self, number: int) -> str:
        """The head commit of pull request ``number``."""
        return pull_head_sha(self._repo, number)

    def find_comment(self, number: int, login: str,
                     is_ours: Callable[[str], bool]) -> IssueComment | None:
        """The first comment by ``login`` on pull request ``number`` that ``is_ours``."""
        return find_comment(self._repo, number, login, is_ours)

    def pull_author(self, number: int) -> str:
        """The login of pull request ``number``'s author."""
        return pull_author(self._repo, number)

    def reviews(self, number: int) -> list[Review]:
        """The reviews of pull request ``number``, oldest first."""
        return reviews(self._repo, number)

    def commit_author(self, sha: str) -> str | None:
        """The GitHub login of the commit's author, if its e-mail is an account's."""
        return commit_author(self._repo, sha)

    def team_member(self, org: str, slug: str, login: str) -> bool | None:
        """Whether ``login`` is in team ``org/slug``; None when the token may not tell."""
        return team_member(self._gh, org, slug, login)

    def create_comment(self, number: int, body: str) -> IssueComment:
        """A new comment on pull request ``number``."""
        return create_comment(self._repo, number, body)

    def update_comment(self, comment: Comment, body: str) -> None:
        """Replace the body of a comment ``find_comment`` returned."""
        if not isinstance(comment, IssueComment):
            raise TypeError(f"not a comment this client found: {comment!r}")
        update_comment(comment, body)

    def create_check_run(self, *, name: str, head_sha: str, conclusion: str, title: str,
                         summary: str, annotations: Sequence[dict[str, Any]],
                         details_url: str | None) -> str:
        """A completed check run; its URL."""
        return create_check_run(self._repo, name=name, head_sha=head_sha,
                                conclusion=conclusion, title=title, summary=summary,
                                annotations=annotations, details_url=details_url).html_url

    def create_status(self, *, sha: str, state: str, context: str, description: str,
                      target_url: str | None) -> None:
        """A commit status (when the token cannot write check runs)."""
        create_status(self._repo, sha=sha, state=state, context=context,
                      description=description, target_url=target_url)
