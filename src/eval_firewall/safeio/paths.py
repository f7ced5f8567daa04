"""Containment: every file a config names stays inside the repository it came with.

A pull request owns its config, so a path in it is hostile until shown otherwise. The rule:

- the *repository root* is the git work tree holding the config (the config's own folder when
  it is not in git);
- a configured path or glob is relative: absolute paths are refused, and so is a ``..`` that
  leaves the repository root, and anything inside a ``.git`` folder;
- what a glob matches is resolved, symlinks followed, and must still lie inside the root and
  outside ``.git``;
- glob walking never follows a symlinked folder (``**`` over a symlink loop ends) and stops at
  ``limits.max_files_per_glob`` files.

Violations are :class:`~eval_firewall.errors.UserError` naming the config file, the key's line
and the key; messages never quote a file's contents.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from wcmatch import glob as wcglob

from ..errors import UserError

GIT_DIR = ".git"
# `**` matches folders but never walks into a symlinked one (no FOLLOW), `*` skips dot-files
# (no DOTGLOB), only files are returned (NODIR).
GLOB_FLAGS = wcglob.GLOBSTAR | wcglob.NODIR


def work_tree(path: Path) -> Path | None:
    """The git work tree holding ``path`` (which need not exist): ``path`` or its nearest
    ancestor with a ``.git`` (a folder, a file or a link), links in ``path`` not followed; None
    outside any. The one place the repository's top is found (:func:`repository_root`)."""
    absolute = Path(os.path.abspath(path))
    for candidate in (absolute, *absolute.parents):
        if os.path.lexists(candidate / GIT_DIR):
            return candidate
    return None


def repository_root(config_root: Path) -> Path:
    """The git work tree that holds ``config_root``, else ``config_root`` itself (resolved)."""
    start = Path(config_root).resolve()
    return work_tree(start) or start


def _in_git_dir(relative: PurePosixPath | Path) -> bool:
    return any(part.casefold() == GIT_DIR for part in relative.parts)


def refusal(pattern: str, config_root: Path, boundary: Path | None = None) -> str | None:
    """Why a configured path or glob is refused before anything is read; None when it is fine.

    Purely lexical (no file is opened): absolute paths, ``..`` that leaves ``boundary`` (the
    repository root) and paths into ``.git``.
    """
    if not pattern or not pattern.strip():
        return "the path is empty"
    if "\0" in pattern:
        return "the path contains a NUL character"
    if (PurePosixPath(pattern).is_absolute() or PureWindowsPath(pattern).is_absolute()
            or PureWindowsPath(pattern).drive or pattern.startswith("~")):
        return "an absolute path is not allowed: paths are relative to the config file"
    boundary = (boundary or repository_root(config_root)).resolve()
    joined = os.path.normpath(os.path.join(Path(config_root).resolve(), pattern))
    try:
        inside = PurePosixPath(Path(joined).relative_to(boundary).as_posix())
    except ValueError:
        return "the path leaves the repository ('..' goes above its root)"
    if _in_git_dir(inside):
        return "the path is inside .git/, which is never read"
    return None


def contained(file: Path, boundary: Path) -> str | None:
    """Why an existing file may not be read (after following symlinks); None when it may."""
    try:
        real = Path(file).resolve(strict=True)
    except (OSError, RuntimeError):       # a dangling link, or a symlink loop
        return "is a broken symlink or a symlink loop"
    try:
        inside = real.relative_to(boundary)
    except ValueError:
        return "resolves (through a symlink) outside the repository"
    if _in_git_dir(inside):
        return "resolves inside .git/, which is never read"
    return None


def check_file(file: Path, boundary: Path, *, source: str, line: int | None, field: str,
               display: str | None = None) -> Path:
    """``file`` if it may be read; otherwise a UserError naming the config key."""
    why = contained(file, boundary)
    if why:
        shown = display or Path(file).name
        raise UserError(f"'{shown}' {why}", path=source, line=line, field=field)
    return Path(file)


def glob_files(pattern: str, config_root: Path, *, max_files: int, source: str,
               line: int | None, field: str, boundary: Path | None = None) -> list[Path]:
    """The files ``pattern`` matches under ``config_root``, sorted, each contained.

    Matching nothing is not an error here (the caller decides); matching more than
    ``max_files`` files, or a file outside the repository, is.
    """
    why = refusal(pattern, config_root, boundary)
    if why:
        raise UserError(f"{why} (got '{shorten(pattern)}')", path=source, line=line, field=field)
    root = Path(config_root).resolve()
    boundary = (boundary or repository_root(root)).resolve()
    found: list[Path] = []
    for match in wcglob.iglob(pattern, flags=GLOB_FLAGS, root_dir=str(root)):
        if len(found) >= max_files:
            raise UserError(f"glob '{shorten(pattern)}' matches more than {max_files} files",
                            path=source, line=line, field=field,
                            hint="raise limits.max_files_per_glob or narrow the glob")
        file = root / match
        if not file.is_file():
            continue
        found.append(check_file(file, boundary, source=source, line=line, field=field,
                                display=Path(os.path.normpath(match)).as_posix()))
    return sorted(set(found))


# --- writing -----------------------------------------------------------------------------------
# What the tool writes (reports, the pull-request context, a sample sheet, a prompts file, a
# config, a waiver) may land in a checkout: a link committed there (the report folder, or a report
# file, pointing out of the workspace or at .git/config) must not redirect the write.

def linked(path: Path) -> str | None:
    """Why writing ``path`` could follow a symbolic link (None: it cannot): the path is a link,
    or lies under one between the git work tree that holds it and it (anything a repository
    can commit). Outside a work tree the user chose the folders, and only the path itself is
    checked."""
    absolute = Path(os.path.abspath(path))
    if absolute.is_symlink():
        return "is a symbolic link"
    top = work_tree(absolute.parent)
    if top is None:
        return None
    current = top
    for part in absolute.parent.relative_to(top).parts:
        current = current / part
        if current.is_symlink():
            return f"lies under a symbolic link ({current.relative_to(top).as_posix()})"
        if not current.exists():
            break
    return None


def refuse_linked(path: Path, *, what: str, field: str | None = None) -> None:
    """A UserError when writing ``path`` could follow a symbolic link (:func:`linked`)."""
    why = linked(path)
    if why:
        raise UserError(f"cannot write {what}: {why}; nothing is written through a link",
                        path=str(path), field=field)


def write_text(path: Path, text: str, *, what: str, field: str | None = None,
               append: bool = False, make_parents: bool = False) -> None:
    """Write (or append) ``text`` to ``path`` as UTF-8, never through a symbolic link: the
    path and the folders above it are checked (:func:`refuse_linked`), and the file is opened
    with ``O_NOFOLLOW``, so a link put in its place meanwhile fails rather than is followed.
    Other failures are OSError, for the caller to word."""
    refuse_linked(path, what=what, field=field)
    if make_parents and not os.path.lexists(Path(path).parent):
        Path(path).parent.mkdir(parents=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_APPEND if append else os.O_TRUNC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if os.path.islink(path):
            refuse_linked(path, what=what, field=field)
        raise exc
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def shorten(text: str, limit: int = 120) -> str:
    """``text`` on one line, cut to ``limit`` characters with "..." when longer."""
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."
