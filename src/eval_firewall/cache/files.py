"""The cache's file handling: regular files read without following links or blocking, bounded
in size, and paths removed without following links."""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
from pathlib import Path

_GiB = 1 << 30


class _Untrusted(Exception):
    """An entry that must not be read: the message says why (``is a symbolic link``)."""


def _size(n: int) -> str:
    return f"{n / _GiB:g} GiB" if n >= _GiB else f"{n:,} bytes"


def read_regular(path: Path, limit: int) -> bytes | None:
    """The bytes of the regular file ``path``, or None when there is none.

    Never follows a symbolic link, never blocks on a FIFO, never reads more than ``limit`` + 1
    bytes: raises :class:`_Untrusted` for anything else in its place.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _Untrusted("is a symbolic link") from None
        raise _Untrusted(f"cannot be read ({exc.strerror})") from None
    info = os.fstat(fd)
    why = ("is a directory" if stat.S_ISDIR(info.st_mode) else
           "is not a regular file" if not stat.S_ISREG(info.st_mode) else
           f"is larger than the {_size(limit)} limit" if info.st_size > limit else None)
    if why is not None:
        os.close(fd)
        raise _Untrusted(why)
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(info.st_size + 1)     # at most limit + 1 bytes
        except OSError as exc:
            raise _Untrusted(f"cannot be read ({exc.strerror})") from None
    if len(data) > info.st_size:
        raise _Untrusted("changed while it was read")
    return data


def remove_path(path: Path) -> None:
    """Remove whatever is at ``path`` (a file, a link, a directory), never following a link."""
    try:
        if path.is_dir() and not path.is_symlink():
            aside = path.with_name(f".stale-{secrets.token_hex(6)}")
            os.rename(path, aside)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass
