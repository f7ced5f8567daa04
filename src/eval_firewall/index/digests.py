"""A chunk's files on disk: opened without following links, hashed, and which of them this
process (or a trusted writer) checked, by their identity (device, inode, size, times)."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

# (device, inode, size, mtime, ctime) of files whose digest this process checked, with it.
_VERIFIED: dict[tuple[int, ...], str] = {}


class BadChunk(Exception):
    """A chunk that must not be used; the message says why (e.g. ``fails its digest check``)."""


def _open_regular(path: Path, limit: int) -> tuple[int, os.stat_result]:
    """A read-only descriptor of the regular file ``path`` (never a link, FIFO, directory)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise BadChunk(f"misses {path.name}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadChunk(f"has a symbolic link in place of {path.name}") from None
        raise BadChunk(f"cannot open {path.name} ({exc.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        os.close(fd)
        raise BadChunk(f"has no regular file of bounded size as {path.name}")
    return fd, info


def _ident(info: os.stat_result) -> tuple[int, ...]:
    """A file's identity for the checked-digest records: device, inode, size, modification
    and change time (ns)."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def trust(checked: tuple[tuple[tuple[int, ...], str], ...]) -> None:
    """Take files another process checked (:meth:`Chunk.checked`) as checked here: a file of
    the same identity (device, inode, size, modification and change time) is that file."""
    _VERIFIED.update(checked)


def note_checked(path: Path, sha256: str) -> None:
    """Note the file at ``path`` (as it is now) as checked against ``sha256`` in this process:
    its writer or fetcher hashed the very bytes it wrote."""
    _VERIFIED[_ident(os.stat(path, follow_symlinks=False))] = sha256


def _fd_sha256(fd: int) -> str:
    """The SHA-256 of an open file, read in blocks from its start: its pages pass through
    the page cache, not this process's resident memory, as hashing a mapping would."""
    h = hashlib.sha256()
    offset = 0
    while block := os.pread(fd, 1 << 22, offset):
        h.update(block)
        offset += len(block)
    return h.hexdigest()


def file_meta(path: Path, block: int | None = None) -> dict[str, Any]:
    """A written file's size and SHA-256; with ``block``, also ``digests``: the SHA-256 of
    each of its blocks of that many bytes, as an (n, 32) uint8 array, so a reader of a few
    ranges checks what it read (:mod:`.ranges`). (It is noted as checked once in its place,
    by :func:`.write.seal` or :meth:`Chunk.add`: moving it there changes its identity.)"""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if block is None:
            return {"size": info.st_size, "sha256": _fd_sha256(fd)}
        import numpy as np

        whole, digests, offset = hashlib.sha256(), bytearray(), 0
        while piece := os.pread(fd, block * 128, offset):
            whole.update(piece)
            for start in range(0, len(piece), block):
                digests += hashlib.sha256(piece[start:start + block]).digest()
            offset += len(piece)
        return {"size": info.st_size, "sha256": whole.hexdigest(), "block": block,
                "digests": np.frombuffer(bytes(digests), np.uint8).reshape(-1, 32)}
    finally:
        os.close(fd)
