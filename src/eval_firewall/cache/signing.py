"""Whom the cache trusts: the HMAC signing key kept outside any repository, and the test that a
cache directory is not the repository's own content."""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..progress import Progress
from ..safeio.paths import work_tree
from .files import _Untrusted, read_regular

KEY_FILE = "cache-key"                # in user_home()
KEY_BYTES = 32


def _inside(path: Path, root: Path) -> bool:
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def untrusted_directory(directory: Path) -> str | None:
    """Why ``directory`` cannot hold a trusted cache (None: it can).

    Outside any git work tree the user chose it. Inside one, its content must not be the
    repository's: no component from the work tree down may be a symbolic link (a committed link
    could point anywhere) and git must track no file in it.
    """
    top = work_tree(Path(os.path.abspath(directory)).parent)
    if top is None:
        return None
    relative = Path(os.path.abspath(directory)).relative_to(top)
    current = top
    for part in relative.parts:
        current = current / part
        if current.is_symlink():
            where = "is" if current == top / relative else "lies under"
            return f"{where} a symbolic link ({current.relative_to(top)})"
        if not current.exists():
            break
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--", f":(literal){relative}"],
                                cwd=top, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"git cannot tell whether files in it are tracked ({exc})"
    if listed.returncode != 0:
        detail = listed.stderr.decode("utf-8", "replace").strip().splitlines()
        return ("git cannot tell whether files in it are tracked"
                + (f" ({detail[0]})" if detail else ""))
    if listed.stdout:
        count = listed.stdout.count(b"\0")
        return (f"git tracks {count} file{'s' if count != 1 else ''} in it (committed cache "
                f"entries are never trusted; `git rm -r --cached {relative}` untracks them)")
    return None


def signing_key(home: Path, repositories: Sequence[Path], progress: Progress) -> bytes:
    """The cache's HMAC key: ``home/cache-key``, created (0600, atomically) on first use.

    A key that a pull request could plant or read (inside one of ``repositories``) or that
    cannot be kept is replaced by a random key for this run only (with a warning): the cache
    then works within the run, and entries from other runs are recomputed.
    """
    def for_this_run(why: str) -> bytes:
        progress.warn(f"cache key {home / KEY_FILE} {why}: using a key for this run only "
                      "(entries from other runs are recomputed)")
        return secrets.token_bytes(KEY_BYTES)

    for repository in repositories:
        if _inside(home, repository):
            return for_this_run(f"is inside the audited repository {repository}, where a pull "
                                "request could plant it")
    path = home / KEY_FILE
    for _attempt in range(2):
        key, replace = _stored_key(path)
        if key is not None and replace is None:
            return key
        try:
            home.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=home, prefix=f".{KEY_FILE}-")   # mode 0600
            try:
                fresh = secrets.token_bytes(KEY_BYTES)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(fresh)
                    fh.flush()
                    os.fsync(fh.fileno())
                if replace is not None:
                    if path.is_dir() and not path.is_symlink():
                        return for_this_run("is a directory")
                    progress.warn(f"cache key {path} {replace}: replacing it (cached entries "
                                  "are recomputed)")
                    os.replace(tmp, path)
                    return fresh
                try:
                    os.link(tmp, path)      # fails if another run created it first: use theirs
                    return fresh
                except FileExistsError:
                    continue
            finally:
                Path(tmp).unlink(missing_ok=True)
        except OSError as exc:
            return for_this_run(f"cannot be created ({exc.strerror or exc})")
    return for_this_run("keeps changing")


def _stored_key(path: Path) -> tuple[bytes | None, str | None]:
    """(the key file's bytes, None when there is no file; why it must be replaced, or None)."""
    replace: str | None
    try:
        key = read_regular(path, KEY_BYTES)
    except _Untrusted as exc:
        key, replace = None, str(exc)
    else:
        replace = None if key is None or len(key) == KEY_BYTES else "is not a key"
    return key, replace
