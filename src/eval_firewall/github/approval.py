"""Who approved a pull request's policy changes (docs: action/policy.md, How approval works).

A change of the config or waiver file that loosens the gate applies when the pull request's
current head commit has an APPROVED review by a user who is neither the pull request's author
nor the head commit's author; when the base's CODEOWNERS names owners of the file, that user
must be one of them (a team owner counts when the token can read the team's membership).
A user's latest approving or change-requesting review is their verdict (a comment does not
change it; a dismissed review is no approval), and it counts only on the head commit: a new
push makes every approval stale, as branch protection's "dismiss stale approvals" does.

The rules are pure functions over the reviews; :func:`read_approvals` asks GitHub for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from codeowners import CodeOwners

from ..policy.effective import Approvals

__all__ = ["Approvals", "Review", "approvers", "owners", "approval_for", "read_approvals"]

if TYPE_CHECKING:
    from .api import GitHub

# Where GitHub looks for CODEOWNERS, in its order (the first one found is used).
CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
CODEOWNERS_MAX_BYTES = 3 * 2**20        # GitHub ignores a larger CODEOWNERS file
TEAM_TOKEN_HINT = ("the token cannot read team membership: give the action a token with "
                   "`members: read` on the organization (a GitHub App or a fine-grained token)")
NO_REVIEW = ("no APPROVED review of the head commit by someone other than the pull request's "
             "author and the commit's author")

# Whether ``login`` is a member of team ``org/slug``; None when the token may not tell.
TeamMember = Callable[[str, str, str], "bool | None"]


@dataclass(frozen=True, slots=True)
class Review:
    """A pull-request review as the API lists it (oldest first)."""

    login: str | None            # None: the account was deleted
    state: str                   # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING
    commit_id: str | None


def approvers(reviews: Sequence[Review], head_sha: str, excluded: set[str]) -> list[str]:
    """Users whose verdict is an approval of ``head_sha`` and who are not ``excluded`` (the
    pull request's and the head commit's authors), in the order they reviewed."""
    verdicts: dict[str, Review] = {}
    for review in reviews:
        if review.login is None or review.state in ("COMMENTED", "PENDING"):
            continue
        verdicts.pop(review.login.lower(), None)
        verdicts[review.login.lower()] = review
    return [r.login for r in verdicts.values()
            if r.login is not None and r.state == "APPROVED" and r.commit_id == head_sha
            and r.login.lower() not in excluded]


def owners(codeowners: str | None, path: str) -> tuple[list[str], list[str]]:
    """The user and team owners (``org/team``) the CODEOWNERS text gives ``path`` (the last
    matching line wins, as on GitHub). E-mail owners are not GitHub logins: left out."""
    if not codeowners:
        return [], []
    try:
        found = CodeOwners(codeowners).of(path)
    except ValueError:             # a pattern GitHub would reject too: that line is ignored
        found = []
    users = [o.lstrip("@") for kind, o in found if kind == "USERNAME"]
    teams = [o.lstrip("@") for kind, o in found if kind == "TEAM"]
    return users, teams


def approval_for(path: str, candidates: Sequence[str], users: Sequence[str],
                 teams: Sequence[str], member: TeamMember) -> tuple[str | None, str]:
    """The approver of ``path``'s changes among ``candidates``, or why there is none."""
    if not candidates:
        return None, NO_REVIEW
    if not users and not teams:
        return candidates[0], ""
    wanted = {u.lower() for u in users}
    for login in candidates:
        if login.lower() in wanted:
            return login, ""
    unknown = False
    for login in candidates:
        for team in teams:
            org, _, slug = team.partition("/")
            is_member = member(org, slug, login)
            if is_member:
                return login, ""
            unknown = unknown or is_member is None
    why = (f"the base's CODEOWNERS requires an approval by an owner of {path}: "
           + ", ".join("@" + o for o in [*users, *teams]))
    return None, why + ("; " + TEAM_TOKEN_HINT if unknown else "")


def read_approvals(gh: GitHub, number: int, head_sha: str, files: Mapping[str, str],
                   codeowners: str | None) -> Approvals:
    """The approver of each file's changes (``files``: the policy diff's path -> the file's
    path in the repository, as CODEOWNERS names it), read from pull request ``number``."""
    current = gh.pull_head_sha(number)
    if current != head_sha:
        why = (f"the pull request's head is now {current[:7]}: approvals count on the head "
               "commit only")
        return Approvals({}, {f: why for f in files})
    excluded = {login.lower() for login in (gh.pull_author(number), gh.commit_author(head_sha))
                if login}
    candidates = approvers(gh.reviews(number), head_sha, excluded)
    by_file, why_not = {}, {}
    for name, repo_path in files.items():
        users, teams = owners(codeowners, repo_path)
        login, why = approval_for(repo_path, candidates, users, teams, gh.team_member)
        if login is not None:
            by_file[name] = login
        else:
            why_not[name] = why
    return Approvals(by_file, why_not)
