"""Git: the one wrapper. What a dataset looked like at a revision (the engine's ``--base``), and
the checkout the action audits (trusting it, finding the commit to compare with).

Only plumbing commands with machine-readable output; no parsing of porcelain. Every command
runs inside the repository's top-level directory, and files are only read through git objects
of that repository.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import MutableMapping
from pathlib import Path

from wcmatch.glob import GLOBSTAR, globmatch

from ..errors import UserError


def clean_blobs(paths: list[Path], top: Path | None = None) -> dict[Path, str]:
    """The blob sha of each file that git's index holds unchanged in the working tree, found
    without reading the files: git compares their stat data with the index's (and re-reads a
    racily clean one). Untracked, modified or unreadable files, and files outside a
    repository, are left out; so is everything when git is missing. ``top``: the work tree's
    top, when the caller knows it (else git is asked)."""
    if not paths:
        return {}
    env = {**os.environ, "GIT_LITERAL_PATHSPECS": "1"}
    try:
        if top is None:
            found = subprocess.run(["git", "rev-parse", "--show-toplevel"],
                                   cwd=paths[0].parent, capture_output=True, env=env)
            if found.returncode != 0:
                return {}
            top = Path(found.stdout.decode().strip())
        top = top.resolve()
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


def trust_workspace(workspace: Path, environ: MutableMapping[str, str] = os.environ) -> None:
    """Mark the workspace a safe directory for every git run by this process and its children.

    The checkout belongs to the runner's user, the container runs as root: without this, git
    refuses the repository ("dubious ownership"). Set through ``GIT_CONFIG_*`` variables (the
    command-line scope git honours for ``safe.directory``), so no config file is written.
    """
    count = int(environ.get("GIT_CONFIG_COUNT", "0") or 0)
    environ[f"GIT_CONFIG_KEY_{count}"] = "safe.directory"
    environ[f"GIT_CONFIG_VALUE_{count}"] = str(workspace)
    environ["GIT_CONFIG_COUNT"] = str(count + 1)


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


class Git:
    """A git repository at ``top``; its environment is the process's unless one is given
    (``trust`` writes ``safe.directory`` into it)."""

    def __init__(self, top: Path, environ: MutableMapping[str, str] | None = None) -> None:
        self.top = top
        self.environ: MutableMapping[str, str] = os.environ if environ is None else environ

    @classmethod
    def containing(cls, path: Path) -> Git:
        """The repository ``path`` is in, at its top-level directory (for ``--base``)."""
        done = cls(path)._run("rev-parse", "--show-toplevel")
        if done.returncode != 0:
            raise UserError(f"{path} is not inside a git repository, and --base needs one")
        return cls(Path(done.stdout.decode().strip()).resolve())

    def _run(self, *args: str, check: bool = False,
             input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(["git", *args], cwd=self.top, capture_output=True, check=check,
                                  input=input, env=self.environ)
        except FileNotFoundError:
            raise UserError("git is not installed, and --base needs it") from None

    def _out(self, *args: str) -> str:
        """What a command printed, stripped; '' when it failed."""
        done = self._run(*args)
        return done.stdout.decode("utf-8", "surrogateescape").strip() if done.returncode == 0 \
            else ""

    # --- the action's checkout ---------------------------------------------------------------

    def trust(self) -> None:
        """Trust this checkout for every git run from now on (see :func:`trust_workspace`)."""
        trust_workspace(self.top, self.environ)

    def check_repository(self) -> None:
        """A one-line error naming actions/checkout when this is not a git checkout."""
        done = self._run("rev-parse", "--is-inside-work-tree")
        if done.returncode != 0:
            stderr = done.stderr.decode("utf-8", "replace").strip()
            reason = stderr.splitlines()[-1] if stderr else "not a git repo"
            raise UserError(f"the workspace is not a git checkout ({reason}); add "
                            "`- uses: actions/checkout@v4` before this step", path=str(self.top))

    def has_commit(self, sha: str) -> bool:
        """Whether the clone has the commit ``sha``."""
        return self._run("cat-file", "-e", f"{sha}^{{commit}}").returncode == 0

    def recorded_parents(self, rev: str = "HEAD") -> list[str]:
        """The parents a commit records, even when a shallow clone does not have them."""
        raw = self._run("cat-file", "-p", rev).stdout.decode("utf-8", "replace")
        parents = []
        for line in raw.splitlines():
            if not line:
                break
            if line.startswith("parent "):
                parents.append(line.split()[1])
        return parents

    def fetch_commit(self, sha: str) -> bool:
        """Fetch one commit from origin (the checkout's credentials, when it kept them)."""
        if self._run("remote", "get-url", "origin").returncode != 0:
            return False
        done = self._run("fetch", "--no-tags", "--quiet", "--depth=1", "origin", sha)
        return done.returncode == 0 and self.has_commit(sha)

    def resolve_base(self, base_sha: str, *, what: str) -> str:
        """The commit to compare the checkout with: ``base_sha`` when it is a parent of HEAD
        (the merge commit GitHub checks out for a pull request, or the previous commit of a
        push), otherwise the merge base of ``base_sha`` and HEAD.

        A shallow checkout without that commit ends in one line naming the ``fetch-depth``.
        """
        short = base_sha[:7]
        if base_sha in self.recorded_parents():
            if self.has_commit(base_sha) or self.fetch_commit(base_sha):
                return base_sha
            raise UserError(f"{what} {short} is not in the checkout (a shallow clone); set "
                            "`fetch-depth: 2` on actions/checkout so the parent commit is there")
        if not self.has_commit(base_sha):
            self.fetch_commit(base_sha)
        merge_base = self._out("merge-base", base_sha, "HEAD")
        if not merge_base:
            raise UserError(f"cannot find where HEAD and {what} {short} meet: the checkout "
                            "lacks history; set `fetch-depth: 0` on actions/checkout")
        return merge_base

    # --- a revision's files, for --base ------------------------------------------------------

    def is_shallow(self) -> bool:
        """Whether this is a shallow clone."""
        return self._out("rev-parse", "--is-shallow-repository") == "true"

    def resolve(self, rev: str) -> str:
        """The commit sha of ``rev``; a clear error when the clone does not have it."""
        sha = self._out("rev-parse", "--verify", "--quiet", "--end-of-options",
                        f"{rev}^{{commit}}")
        if not sha:
            raise UserError(f"revision '{rev}' is not in this clone",
                            hint=fetch_hint(rev, self.is_shallow()))
        return sha

    def files_at(self, sha: str, patterns: list[str]) -> dict[str, str]:
        """Path (relative to ``top``) -> blob sha, for files at ``sha`` matching glob
        patterns."""
        if not patterns:
            return {}
        dirs = sorted({_literal_dir(p) for p in patterns})
        specs = [] if "" in dirs else dirs
        done = self._run("ls-tree", "-r", "-z", "--full-tree", sha, "--", *specs, check=True)
        out = {}
        for entry in done.stdout.decode("utf-8", "surrogateescape").split("\0"):
            if not entry:
                continue
            meta, path = entry.split("\t", 1)
            _mode, kind, blob = meta.split()
            if kind == "blob" and any(globmatch(path, p, flags=GLOBSTAR) for p in patterns):
                out[path] = blob
        return out

    def worktree_blobs(self, paths: list[Path]) -> dict[Path, str]:
        """Blob sha each working-tree file would have if committed now (files the index knows
        to be unchanged are not read: :func:`clean_blobs`)."""
        blobs = clean_blobs(paths, self.top)
        rest = [p for p in paths if p not in blobs]
        if not rest:
            return blobs
        done = self._run("hash-object", "--stdin-paths", check=True,
                         input="\n".join(str(p) for p in rest).encode())
        return {**blobs, **dict(zip(rest, done.stdout.decode().split()))}

    def write_blob(self, blob: str, target: Path) -> None:
        """Write the content of ``blob`` to ``target`` (a file of a scratch directory)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as fh:
            subprocess.run(["git", "cat-file", "blob", blob], cwd=self.top, stdout=fh, check=True,
                           env=self.environ)

    def read_at(self, sha: str, path: str, max_bytes: int) -> bytes | None:
        """The content of the file at ``path`` (relative to ``top``) in commit ``sha``; None
        when the commit has no such file. A link, or a file over ``max_bytes``, is an error:
        what is read this way is policy (the base's config, CODEOWNERS)."""
        done = self._run("ls-tree", "-z", "--full-tree", sha, "--", path)
        if done.returncode != 0:
            raise UserError(f"cannot read {path} at {sha[:7]}: "
                            f"{done.stderr.decode(errors='replace').strip()[:200]}")
        entry = next((e for e in done.stdout.decode("utf-8", "surrogateescape").split("\0")
                      if e and e.split("\t", 1)[1] == path), None)
        if entry is None:
            return None
        mode, kind, blob = entry.split("\t", 1)[0].split()
        if kind != "blob" or mode == "120000":
            raise UserError(f"{path} is not a regular file at {sha[:7]}", path=path)
        if int(self._out("cat-file", "-s", blob) or 0) > max_bytes:
            raise UserError(f"{path} at {sha[:7]} is larger than {max_bytes:,} bytes", path=path)
        return self._run("cat-file", "blob", blob, check=True).stdout
