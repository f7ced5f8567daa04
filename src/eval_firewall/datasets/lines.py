"""Bounded reading shared by the readers: a file opened within ``limits.max_file_bytes`` (gzip
included), its lines within ``limits.max_row_bytes``, their digests and decoding, and the
records and bad records the readers yield."""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from ..config.model import LimitsConfig
from ..errors import UserError

# Said of a record after which a file cannot be parsed any further, so no row goes unmentioned.
REST_NOT_READ = "the rest of the file was not read"
LFS_SIGNATURE = b"version https://git-lfs.github.com/spec/v1"
BOM = b"\xef\xbb\xbf"
SKIP_CHUNK = 1 << 20        # bytes read at a time, also while skipping a line over the limit
Record = dict[str, Any]     # one record as parsed: column or key -> value


@dataclass(frozen=True, slots=True)
class BadRecord:
    message: str
    field: str | None = None
    digest: str | None = None     # line_digest of the record's bytes, when they were read


def check_not_lfs_pointer(path: Path, display: str) -> None:
    """Refuse a Git LFS pointer file in place of the data (a one-line UserError)."""
    with open(path, "rb") as fh:
        head = fh.read(len(LFS_SIGNATURE))
    if head == LFS_SIGNATURE:
        raise UserError(
            "this is a Git LFS pointer file, not the data it points to", path=display, line=1,
            hint="fetch the data with 'git lfs pull' (in GitHub Actions: actions/checkout "
                 "with 'lfs: true')")


def too_big_message(limits: LimitsConfig, decompressed: bool) -> str:
    """The error for a file over ``limits.max_file_bytes`` (on disk, or once decompressed)."""
    if decompressed:
        return (f"decompressed, the file is larger than limits.max_file_bytes "
                f"({int(limits.max_file_bytes)} bytes); reading stopped there")
    return f"the file is larger than limits.max_file_bytes ({int(limits.max_file_bytes)} bytes)"


def too_long_message(limits: LimitsConfig) -> str:
    """The invalid-row message for a line over ``limits.max_row_bytes``."""
    return (f"the line is longer than limits.max_row_bytes ({int(limits.max_row_bytes)} bytes); "
            "it was skipped")


def too_deep_message(limits: LimitsConfig) -> str:
    """The invalid-row message for JSON nested deeper than ``limits.max_json_depth``."""
    return f"the JSON is nested deeper than limits.max_json_depth ({limits.max_json_depth})"


class _Capped(io.RawIOBase):
    """A raw stream that stops with a UserError once more than ``limit`` bytes came out of it:
    a gzip bomb is cut off at the limit, whatever its compression ratio."""

    def __init__(self, inner: io.BufferedIOBase, limit: int, message: str, display: str) -> None:
        self._inner, self._limit, self._message, self._display = inner, limit, message, display
        self._total = 0

    def readable(self) -> bool:
        """Always: this is a read-only stream."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer``; a UserError once the limit is passed."""
        n = self._inner.readinto(buffer)
        self._total += n or 0
        if self._total > self._limit:
            raise UserError(self._message, path=self._display)
        return n

    def close(self) -> None:
        """Close the wrapped stream too."""
        try:
            self._inner.close()
        finally:
            super().close()


def open_binary(path: Path, limits: LimitsConfig, display: str | None = None) -> io.BufferedReader:
    """The file's bytes (gunzipped for ``.gz``), ending in a UserError past
    ``limits.max_file_bytes``."""
    display = display or str(path)
    limit = int(limits.max_file_bytes)
    inner: io.BufferedIOBase
    if path.suffix.lower() == ".gz":
        inner = gzip.GzipFile(path, "rb")
        message = too_big_message(limits, decompressed=True)
    else:
        if path.stat().st_size > limit:
            raise UserError(too_big_message(limits, decompressed=False), path=display)
        inner = open(path, "rb")
        message = too_big_message(limits, decompressed=False)
    return io.BufferedReader(_Capped(inner, limit, message, display), buffer_size=1 << 16)


def iter_lines(fh: BinaryIO, max_row_bytes: int, chunk_bytes: int = SKIP_CHUNK,
               digests: list[str] | None = None) -> Iterator[tuple[int, bytes | None]]:
    """(1-based line number, raw line with its line break) of a binary stream; ``None`` for a
    line longer than ``max_row_bytes``, which is read and skipped in bounded chunks, never held
    whole. Lines end at ``\\n``, ``\\r\\n`` or ``\\r``, as Python's universal newlines; a UTF-8
    byte-order mark (as Excel writes) is dropped. With ``digests``, the hash of each skipped
    line's bytes (:func:`line_digest`, hashed as it streams past) is appended to it before its
    ``None`` is yielded."""
    number = 0
    carry: list[bytes] = []     # the start of a line that ends in a later chunk
    carried = 0
    skipping = False            # inside a line over the limit: drop it up to its end
    skipped = _SkippedLine(digests)
    for chunk in _chunks(fh, chunk_bytes):
        for line in chunk.splitlines(keepends=True):
            if not line.endswith((b"\n", b"\r")):      # the chunk's last, unfinished line
                if skipping:
                    skipped.update(line)
                else:
                    carry.append(line)
                    carried += len(line)
                    if carried > max_row_bytes:
                        skipped.start(carry)
                        carry, carried, skipping = [], 0, True
                continue
            number += 1
            if skipping:
                skipping = False
                skipped.finish(line)
                yield number, None
                continue
            if carry:
                carry.append(line)
                line = b"".join(carry)
                carry, carried = [], 0
            ending = 2 if line.endswith(b"\r\n") else 1
            if len(line) - ending > max_row_bytes:
                skipped.whole(line)
                yield number, None
            else:
                yield number, line
    if skipping or carry:
        number += 1
        if skipping:
            skipped.finish(b"")
        yield number, None if skipping else b"".join(carry)


class _SkippedLine:
    """The digest of a line being skipped, hashed piece by piece (nothing when ``digests`` is
    None); :meth:`finish` appends it to ``digests``."""

    def __init__(self, digests: list[str] | None) -> None:
        self.digests, self.hasher = digests, cast(Any, None)

    def whole(self, line: bytes) -> None:
        """A line over the limit that was read whole."""
        if self.digests is not None:
            self.digests.append(line_digest(line))

    def start(self, pieces: list[bytes]) -> None:
        """The line's first pieces, read before it was known to be too long."""
        if self.digests is not None:
            self.hasher = line_hasher()
            for piece in pieces:
                self.hasher.update(piece)

    def update(self, piece: bytes) -> None:
        """A middle piece of the line."""
        if self.hasher is not None:
            self.hasher.update(piece)

    def finish(self, last: bytes) -> None:
        """The line's last piece (its line break is not hashed)."""
        if self.hasher is not None and self.digests is not None:
            self.hasher.update(last.rstrip(b"\r\n"))
            self.digests.append(self.hasher.hexdigest())
            self.hasher = None


def line_hasher() -> Any:
    """The hash of a record's bytes (:func:`line_digest`), to be fed piece by piece."""
    return hashlib.blake2b(digest_size=16)


def line_digest(raw: bytes | str) -> str:
    """The hash of one record's bytes (line break excluded): what an unreadable row's finding
    is fingerprinted by, so that a waiver of one broken line covers no other."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    hasher = line_hasher()
    hasher.update(raw.rstrip(b"\r\n"))
    digest: str = hasher.hexdigest()
    return digest


def _chunks(fh: BinaryIO, chunk_bytes: int) -> Iterator[bytes]:
    """The stream in chunks of about ``chunk_bytes``: a leading UTF-8 byte-order mark dropped,
    and no chunk ending between the ``\\r`` and ``\\n`` of one line break."""
    first = True
    held = b""                  # a \r at a chunk's end: the next chunk may start with its \n
    while True:
        raw = fh.read(chunk_bytes)
        if first:
            first = False
            if raw.startswith(BOM):
                raw = raw[len(BOM):]
        chunk, held = held + raw, b""
        if raw and chunk.endswith(b"\r"):
            chunk, held = chunk[:-1], b"\r"
        if raw and not chunk:
            continue
        if not chunk:
            return
        yield chunk


def decode_line(raw: bytes, number: int, display: str) -> str:
    """A line as text; bytes that are not UTF-8 are a UserError naming line and column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}",
                        path=display, line=number, hint="save the file as UTF-8") from None


def first_non_utf8(path: Path, limits: LimitsConfig | None = None
                   ) -> tuple[int, int, int] | None:
    """(line, byte column, byte value) of the first byte that is not UTF-8, or None."""
    limits = limits or LimitsConfig()
    with open_binary(path, limits) as fh:
        for number, raw in iter_lines(fh, int(limits.max_row_bytes)):
            if raw is None:
                continue
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, exc.start + 1, raw[exc.start]
    return None


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)
