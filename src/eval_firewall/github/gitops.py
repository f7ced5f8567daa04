"""Git inside the action's container: trust the workspace, find the commit to compare with."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ..errors import UserError


def trust_workspace(workspace: Path, environ=os.environ) -> None:
    """Mark the workspace a safe directory for every git run by this process and its children.

    The checkout belongs to the runner's user, the container runs as root: without this, git
    refuses the repository ("dubious ownership"). Set through ``GIT_CONFIG_*`` variables (the
    command-line scope git honours for ``safe.directory``), so no config file is written.
    """
    count = int(environ.get("GIT_CONFIG_COUNT", "0") or 0)
    environ[f"GIT_CONFIG_KEY_{count}"] = "safe.directory"
    environ[f"GIT_CONFIG_VALUE_{count}"] = str(workspace)
    environ["GIT_CONFIG_COUNT"] = str(count + 1)


def _git(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=workspace, capture_output=True, text=True)


def check_repository(workspace: Path) -> None:
    done = _git(workspace, "rev-parse", "--is-inside-work-tree")
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "not a git repo"
        raise UserError(f"the workspace is not a git checkout ({reason}); add "
                        "`- uses: actions/checkout@v4` before this step", path=str(workspace))


def has_commit(workspace: Path, sha: str) -> bool:
    return _git(workspace, "cat-file", "-e", f"{sha}^{{commit}}").returncode == 0


def recorded_parents(workspace: Path, rev: str = "HEAD") -> list[str]:
    """The parents a commit records, even when a shallow clone does not have them."""
    raw = _git(workspace, "cat-file", "-p", rev).stdout
    parents = []
    for line in raw.splitlines():
        if not line:
            break
        if line.startswith("parent "):
            parents.append(line.split()[1])
    return parents


def _has_origin(workspace: Path) -> bool:
    return _git(workspace, "remote", "get-url", "origin").returncode == 0


def fetch_commit(workspace: Path, sha: str) -> bool:
    """Fetch one commit from origin (the checkout's credentials, when it kept them)."""
    if not _has_origin(workspace):
        return False
    done = _git(workspace, "fetch", "--no-tags", "--quiet", "--depth=1", "origin", sha)
    return done.returncode == 0 and has_commit(workspace, sha)


def resolve_base(workspace: Path, base_sha: str, *, what: str) -> str:
    """The commit to compare the checkout with: ``base_sha`` when it is a parent of HEAD (the
    merge commit GitHub checks out for a pull request, or the previous commit of a push),
    otherwise the merge base of ``base_sha`` and HEAD.

    A shallow checkout without that commit ends in one line naming the ``fetch-depth``.
    """
    short = base_sha[:7]
    if base_sha in recorded_parents(workspace):
        if has_commit(workspace, base_sha) or fetch_commit(workspace, base_sha):
            return base_sha
        raise UserError(f"{what} {short} is not in the checkout (a shallow clone); set "
                        "`fetch-depth: 2` on actions/checkout so the parent commit is there")
    if not has_commit(workspace, base_sha):
        fetch_commit(workspace, base_sha)
    done = _git(workspace, "merge-base", base_sha, "HEAD")
    if done.returncode != 0 or not done.stdout.strip():
        raise UserError(f"cannot find where HEAD and {what} {short} meet: the checkout lacks "
                        "history; set `fetch-depth: 0` on actions/checkout")
    return done.stdout.strip()


def changed_files(workspace: Path, base: str) -> list[str]:
    """Files that differ between ``base`` and HEAD, repository-relative."""
    done = _git(workspace, "diff", "--name-only", "--no-renames", "-z", base, "HEAD", "--")
    if done.returncode != 0:
        return []
    return sorted(p for p in done.stdout.split("\0") if p)
