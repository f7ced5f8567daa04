"""The git layer for incremental audits: what a dataset looked like at a revision.

Only plumbing commands with machine-readable output; no parsing of porcelain.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from wcmatch.glob import GLOBSTAR, globmatch

from .errors import UserError


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=check)
    except FileNotFoundError:
        raise UserError("git is not installed, and --base needs it") from None


def toplevel(path: Path) -> Path:
    """The top of the git working tree holding ``path``."""
    done = _git(path, "rev-parse", "--show-toplevel", check=False)
    if done.returncode != 0:
        raise UserError(f"{path} is not inside a git repository, and --base needs one")
    return Path(done.stdout.decode().strip()).resolve()


def is_shallow(top: Path) -> bool:
    """Whether the clone is shallow."""
    done = _git(top, "rev-parse", "--is-shallow-repository", check=False)
    return done.stdout.decode().strip() == "true"


def resolve(top: Path, rev: str) -> str:
    """The commit sha of ``rev``; a clear error when the clone does not have it."""
    done = _git(top, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}",
                check=False)
    if done.returncode != 0:
        raise UserError(f"revision '{rev}' is not in this clone", hint=fetch_hint(rev,
                        is_shallow(top)))
    return done.stdout.decode().strip()


def fetch_hint(rev: str, shallow: bool) -> str:
    """How to get a missing revision. A relative one (``HEAD~5``, ``main^``) cannot be fetched
    by name: only more history brings its commit."""
    if shallow:
        return ("this is a shallow clone: fetch the history the diff needs (actions/checkout "
                "with 'fetch-depth: 0', or 'git fetch --deepen=50')")
    if any(c in rev for c in "~^:") or "@{" in rev:
        return ("a relative revision names an ancestor this clone does not have: compare with "
                "a commit or branch it has, or fetch one, e.g. 'git fetch origin main'")
    return f"fetch it first, e.g. 'git fetch origin {rev}'"


def _literal_dir(pattern: str) -> str:
    """The folder part of a glob before its first wildcard ('' for the whole tree)."""
    cut = min((i for i, c in enumerate(pattern) if c in "*?["), default=len(pattern))
    head = pattern[:cut]
    return head[: head.rfind("/") + 1] if "/" in head else ""


def files_at(top: Path, sha: str, patterns: list[str]) -> dict[str, str]:
    """Path (relative to ``top``) -> blob sha, for files at ``sha`` matching glob patterns."""
    if not patterns:
        return {}
    dirs = sorted({_literal_dir(p) for p in patterns})
    specs = [] if "" in dirs else dirs
    done = _git(top, "ls-tree", "-r", "-z", "--full-tree", sha, "--", *specs)
    out = {}
    for entry in done.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if not entry:
            continue
        meta, path = entry.split("\t", 1)
        _mode, kind, blob = meta.split()
        if kind == "blob" and any(globmatch(path, p, flags=GLOBSTAR) for p in patterns):
            out[path] = blob
    return out


def clean_blobs(paths: list[Path]) -> dict[Path, str]:
    """The blob sha of each file that git's index holds unchanged in the working tree, found
    without reading the files: git compares their stat data with the index's (and re-reads a
    racily clean one). Untracked, modified or unreadable files, and files outside a
    repository, are left out; so is everything when git is missing."""
    if not paths:
        return {}
    env = {**os.environ, "GIT_LITERAL_PATHSPECS": "1"}
    try:
        found = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=paths[0].parent,
                               capture_output=True, env=env)
        if found.returncode != 0:
            return {}
        top = Path(found.stdout.decode().strip()).resolve()
        inside = {}
        for path in paths:
            try:
                inside[path.resolve().relative_to(top).as_posix()] = path
            except ValueError:
                continue
        if not inside:
            return {}
        names = list(inside)
        staged = subprocess.run(["git", "ls-files", "-s", "-z", "--", *names], cwd=top,
                                capture_output=True, env=env)
        dirty = subprocess.run(["git", "diff-files", "--name-only", "-z", "--", *names],
                               cwd=top, capture_output=True, env=env)
    except OSError:
        return {}
    if staged.returncode != 0 or dirty.returncode != 0:
        return {}
    modified = set(dirty.stdout.decode("utf-8", "surrogateescape").split("\0"))
    blobs: dict[Path, str] = {}
    for entry in staged.stdout.decode("utf-8", "surrogateescape").split("\0"):
        info, _, name = entry.partition("\t")
        fields = info.split()
        # mode sha stage: stage 0 only (a conflicted file has no one blob)
        if len(fields) == 3 and fields[2] == "0" and name in inside and name not in modified:
            blobs[inside[name]] = fields[1]
    return blobs


def worktree_blobs(top: Path, paths: list[Path]) -> dict[Path, str]:
    """Blob sha each working-tree file would have if committed now (files the index knows
    to be unchanged are not read)."""
    blobs = clean_blobs(paths)
    rest = [p for p in paths if p not in blobs]
    if not rest:
        return blobs
    done = subprocess.run(["git", "hash-object", "--stdin-paths"], cwd=top, capture_output=True,
                          check=True, input="\n".join(str(p) for p in rest).encode())
    return {**blobs, **dict(zip(rest, done.stdout.decode().split()))}


def write_blob(top: Path, blob: str, target: Path) -> None:
    """Write a blob's content to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as fh:
        subprocess.run(["git", "cat-file", "blob", blob], cwd=top, stdout=fh, check=True)
