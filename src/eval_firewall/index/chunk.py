"""One index chunk: a set of named, memory-mapped arrays for one train file, and its manifest.

A chunk is a directory ``<cache>/index/chunks/<key>/``: ``rows.arrow`` (the file's rows as an
uncompressed Arrow IPC file, read zero-copy from the mapped pages), ``<name>.npy`` arrays
(normalized-text hashes, the posting kinds :mod:`.postings` registers, static vectors) and
``MANIFEST.json`` (source, rows, problems, each file's size and SHA-256), signed with the
cache's HMAC key over the chunk's key, so a chunk moved under another key, written with
another key or by another format is foreign. A *mirrored* chunk (:mod:`.remote`) has the
manifest of a chunk at the index location; its files are fetched when first mapped.

Opening a chunk checks the manifest's signature and every file's size; a file's SHA-256 is
checked the first time this process maps it, so the pull request path hashes only the arrays
it uses, once; a checked or written file goes on the chunk's signed record (``CHECKED.json``:
device, inode, size, modification and inode-change time, digest), and a later process trusts
a file whose identity matches its record. Files are opened without following links and mapped
from the descriptor that was hashed. A chunk that fails any check raises :class:`BadChunk`; the
store (:mod:`.store`) removes and rebuilds it, warning once.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import mmap
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .digests import (
    _VERIFIED,
    BadChunk,
    _fd_sha256,
    _ident,
    _open_regular,
    file_meta,
)

FORMAT = "eval-firewall-index/1"
MANIFEST = "MANIFEST.json"
ROWS = "rows.arrow"
CHECKED = "CHECKED.json"        # which files' digests were checked, by their inode (signed)
MAX_MANIFEST_BYTES = 1 << 20
MAX_FILE_BYTES = 8 << 30

def _signature(key: bytes, chunk: str, body: Mapping[str, Any]) -> str:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in (FORMAT, chunk):                 # bound to its place: no swapping chunks
        mac.update(part.encode() + b"\0")
    mac.update(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    return mac.hexdigest()


class Chunk:
    """An opened, signature-checked chunk. ``manifest['source']`` says what it was built from;
    arrays and the rows table are mapped (and their digest checked) on first use."""

    def __init__(self, directory: Path, key: str, manifest: dict[str, Any], signing: bytes,
                 remote: Any = None) -> None:
        self.directory = directory
        self.remote = remote        # a RemoteIndex (.remote) holding the files not here yet
        self.key = key
        self.manifest = manifest
        self._signing = signing
        self._maps: dict[str, memoryview] = {}
        self._mmaps: dict[str, mmap.mmap] = {}
        self._offsets: dict[str, int] = {}
        self._arrays: dict[str, np.ndarray] = {}
        self._table: Any = None
        self.readers: dict[str, Any] = {}     # a mirrored chunk's files read by range
        self._checked: dict[str, list[Any]] | None = None

    # --- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, directory: Path, key: str, signing: bytes, remote: Any = None) -> Chunk:
        """The chunk in ``directory`` (named ``key``); :class:`BadChunk` unless its manifest is
        signed with ``signing`` for this key and every listed file has its listed size (with
        ``remote``, the index location it mirrors: every listed file that is here)."""
        if directory.is_symlink() or not directory.is_dir():
            raise BadChunk("is not a directory")
        fd, _ = _open_regular(directory / MANIFEST, MAX_MANIFEST_BYTES)
        with os.fdopen(fd, "rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
        try:
            manifest = json.loads(raw)
        except ValueError:
            raise BadChunk("has an unreadable manifest") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise BadChunk("was written by another index format")
        sig = manifest.pop("hmac-sha256", None)
        if not isinstance(sig, str) or not hmac.compare_digest(
                sig, _signature(signing, key, manifest)):
            raise BadChunk("fails its signature check (written with another key, or tampered "
                           "with)")           # the cache's words: one warning for both kinds
        files = manifest.get("files")
        if not isinstance(files, dict) or ROWS not in files:
            raise BadChunk("has a manifest without its files")
        for name, meta in files.items():
            if "/" in name or name.startswith("."):
                raise BadChunk(f"lists a file outside it ({name!r})")
            if remote is not None and not os.path.lexists(directory / name):
                continue                            # fetched when mapped
            fd, info = _open_regular(directory / name, MAX_FILE_BYTES)
            os.close(fd)
            if info.st_size != meta.get("size"):
                raise BadChunk(f"has {name} of {info.st_size:,} bytes, not the "
                               f"{meta.get('size'):,} its manifest lists (truncated?)")
        return cls(directory, key, manifest, signing,
                   remote if manifest.get("mirror") else None)

    @property
    def rows(self) -> int:
        """The number of rows."""
        return int(self.manifest["rows"])

    @property
    def problems(self) -> list[dict[str, Any]]:
        """The file's unreadable rows (as :class:`~eval_firewall.rows.RowProblem` fields)."""
        return list(self.manifest.get("problems", []))

    def null_count(self, column: str) -> int:
        """How many rows have no value in ``column``: from the manifest when its writer
        counted them (so a mirrored chunk's rows need not be fetched), else from the rows."""
        count = self.manifest["files"][ROWS].get("nulls", {}).get(column)
        if isinstance(count, int) and not isinstance(count, bool):
            return count
        return int(self.table().column(column).null_count)

    def checked(self) -> tuple[tuple[tuple[int, ...], str], ...]:
        """The files here whose digest this process checked, by identity: what another
        process on the same filesystem may trust without hashing them again (:func:`trust`)."""
        out = []
        for name, meta in self.manifest["files"].items():
            try:
                ident = _ident(os.stat(self.directory / name, follow_symlinks=False))
            except OSError:
                continue
            if _VERIFIED.get(ident) == meta["sha256"]:
                out.append((ident, meta["sha256"]))
        return tuple(out)

    def here(self, name: str) -> bool:
        """Whether the file ``name`` (e.g. ``rows.arrow``, ``norm_hash.npy``) is in the chunk's
        directory (a mirrored chunk's are fetched when first mapped)."""
        return os.path.lexists(self.directory / name)

    def fetch(self, name: str) -> None:
        """Have the file ``name`` here (a mirrored chunk's fetched and checked now)."""
        self._map(name)

    def has(self, name: str) -> bool:
        """Whether the chunk holds the array ``name``."""
        return f"{name}.npy" in self.manifest["files"]

    @property
    def names(self) -> list[str]:
        """The names of the arrays the chunk holds."""
        return sorted(n[:-4] for n in self.manifest["files"] if n.endswith(".npy"))

    def about(self, name: str) -> str | None:
        """What the array ``name`` holds, when its writer said (e.g. a model's key)."""
        about = self.manifest["files"].get(f"{name}.npy", {}).get("about")
        return about if isinstance(about, str) else None

    @property
    def nbytes(self) -> int:
        """The chunk's size on disk (its files, as listed)."""
        return sum(int(m["size"]) for m in self.manifest["files"].values())

    # --- mapping ---------------------------------------------------------------------------
    def _map(self, name: str) -> memoryview:
        """The file ``name`` mapped read-only, its digest checked once per process."""
        if name in self._maps:
            return self._maps[name]
        meta = self.manifest["files"].get(name)
        if meta is None:
            raise BadChunk(f"has no {name}")
        if self.remote is not None and not os.path.lexists(self.directory / name):
            self.remote.fetch(self.key, name, meta, self.directory)   # checked as it comes
            self._remember(name)
        fd, info = _open_regular(self.directory / name, MAX_FILE_BYTES)
        try:
            if info.st_size != meta["size"]:
                raise BadChunk(f"has {name} of {info.st_size:,} bytes, not {meta['size']:,} "
                               "(truncated?)")
            ident = _ident(info)
            if _VERIFIED.get(ident) != meta["sha256"] and not self._was_checked(name, ident):
                if not hmac.compare_digest(_fd_sha256(fd), str(meta["sha256"])):
                    raise BadChunk(f"has {name} failing its digest check (tampered with)")
                self._remember(name, ident)     # the descriptor that is mapped
            if info.st_size == 0:
                view = memoryview(b"")
            else:
                self._mmaps[name] = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
                view = memoryview(self._mmaps[name])
        finally:
            os.close(fd)
        self._maps[name] = view
        return view

    # --- digests checked in an earlier process ---------------------------------------------
    def _record(self) -> dict[str, list[Any]]:
        """The chunk's signed record of checked files (name -> inode identity + digest); an
        unreadable, unsigned or foreign record is no record."""
        if self._checked is None:
            self._checked = {}
            try:
                fd, _ = _open_regular(self.directory / CHECKED, MAX_MANIFEST_BYTES)
                with os.fdopen(fd, "rb") as fh:
                    raw = json.loads(fh.read(MAX_MANIFEST_BYTES + 1))
                body = raw.get("files") if isinstance(raw, dict) else None
                if isinstance(body, dict) and isinstance(raw.get("hmac-sha256"), str) and \
                        hmac.compare_digest(raw["hmac-sha256"],
                                            _signature(self._signing, self.key, {CHECKED: body})):
                    self._checked = body
            except (BadChunk, ValueError, OSError):
                pass
        return self._checked

    def _was_checked(self, name: str, ident: tuple[int, ...]) -> bool:
        """Whether an earlier process checked (or wrote) this very file, unchanged since: same
        device, inode, size, modification and change time (a change time no writer can set
        back), and the digest the manifest lists."""
        entry = self._record().get(name)
        sha = self.manifest["files"][name]["sha256"]
        if entry == [*ident, sha]:
            _VERIFIED[ident] = sha
            return True
        return False

    def _remember(self, name: str, ident: tuple[int, ...] | None = None) -> None:
        """Record file ``name`` (as it is now, or ``ident``) as checked against its digest."""
        if ident is None:
            fd, info = _open_regular(self.directory / name, MAX_FILE_BYTES)
            os.close(fd)
            ident = _ident(info)
        sha = self.manifest["files"][name]["sha256"]
        _VERIFIED[ident] = sha
        record = {**self._record(), name: [*ident, sha]}
        self._checked = {k: v for k, v in record.items() if k in self.manifest["files"]}
        if not self._signing:
            return                       # a worker's chunk: no key, no record (see .shards)
        try:
            _atomic(self.directory, CHECKED, json.dumps({
                "files": self._checked, "hmac-sha256": _signature(
                    self._signing, self.key, {CHECKED: self._checked})}).encode())
        except OSError:
            pass                         # a read-only cache: checked again next time

    def remember_written(self) -> None:
        """Record every file of a chunk this process just wrote (their digests were computed
        from the written bytes) as checked."""
        for name in self.manifest["files"]:
            self._remember(name)

    def verify(self) -> None:
        """Check every file's digest now, whatever was recorded (``index status --verify``)."""
        for name, meta in self.manifest["files"].items():
            if self.remote is not None and not self.here(name):
                continue                       # a mirrored chunk's file not fetched yet
            fd, info = _open_regular(self.directory / name, MAX_FILE_BYTES)
            try:
                if info.st_size != meta["size"] or not hmac.compare_digest(
                        _fd_sha256(fd), str(meta["sha256"])):
                    raise BadChunk(f"has {name} failing its digest check (tampered with)")
            finally:
                os.close(fd)

    def array(self, name: str) -> np.ndarray:
        """The array ``name``, memory-mapped (read-only, never copied)."""
        if name not in self._arrays:
            view = self._map(f"{name}.npy")
            try:
                header = io.BytesIO(view[:min(len(view), 4096)].tobytes())
                version = np.lib.format.read_magic(header)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read(header)
                if dtype.hasobject or fortran:
                    raise ValueError("object or Fortran-ordered array")
                count = int(np.prod(shape)) if shape else 1
                array = np.frombuffer(view, dtype=dtype, count=count,
                                      offset=header.tell()).reshape(shape)
            except (ValueError, TypeError) as exc:
                raise BadChunk(f"has an unreadable {name}.npy ({exc})") from None
            self._arrays[name] = array
            self._offsets[f"{name}.npy"] = header.tell()
        return self._arrays[name]

    def release(self, name: str, start: int = 0, stop: int | None = None) -> None:
        """Let the kernel drop this process's pages of the mapped array ``name`` (its rows
        ``start`` to ``stop``; the rows table: :data:`ROWS`), read and no longer needed: they
        stay in the page cache, are read again from it if touched, and stop counting as this
        process's resident memory (a scan over a large chunk keeps its resident set to a
        piece)."""
        file = name if name == ROWS else f"{name}.npy"
        found = self._mmaps.get(file)
        if found is None or not hasattr(found, "madvise"):
            return
        offset, size = self._offsets.get(file, 0), len(found)
        row = 1
        if file != ROWS:
            array = self._arrays[name]
            row = array.itemsize * (int(np.prod(array.shape[1:])) if array.ndim > 1 else 1)
        first = min(size, offset + start * row) // mmap.PAGESIZE * mmap.PAGESIZE
        last = size if stop is None else min(size, offset + stop * row)
        if last > first:
            found.madvise(mmap.MADV_DONTNEED, first, last - first)

    def table(self) -> Any:
        """The rows as a pyarrow Table over the mapped file (no copy)."""
        if self._table is None:
            import pyarrow as pa

            view = self._map(ROWS)
            try:
                table = pa.ipc.open_file(pa.py_buffer(view)).read_all()
            except (pa.ArrowException, ValueError) as exc:
                raise BadChunk(f"has an unreadable {ROWS} ({exc})") from None
            if table.num_rows != self.rows:
                raise BadChunk(f"has {table.num_rows} rows, not {self.rows}")
            self._table = table
        return self._table

    # --- adding an array to a chunk (e.g. vectors of another model) --------------------------
    def add(self, name: str, array: np.ndarray, about: str | None = None,
            kept: int | None = None) -> None:
        """Store ``array`` as ``name`` in this chunk (``about``: what it holds, e.g. the model
        of a set of vectors) and re-sign its manifest. With ``kept``: ``name`` is one of a
        series (the names up to its last dot), of which the chunk keeps the ``kept`` added
        last; the older ones are dropped, after the manifest no longer lists them."""
        meta = write_npy(self.directory, f"{name}.npy", array)
        if about is not None:
            meta["about"] = about
        files = dict(self.manifest["files"])
        dropped: list[str] = []
        if kept is not None:
            series = name.rsplit(".", 1)[0] + "."
            same = sorted((_seq(m), n) for n, m in files.items()
                          if n.startswith(series) and n != f"{name}.npy")
            meta["seq"] = 1 + max((s for s, _ in same), default=0)
            dropped = [n for _, n in same[:max(0, len(same) - kept + 1)]]
        files = {n: m for n, m in files.items() if n not in dropped}
        files[f"{name}.npy"] = meta
        self.manifest = {**self.manifest, "files": files}
        write_manifest(self.directory, self.key, self.manifest, self._signing)
        for file in [f"{name}.npy", *dropped]:
            self._arrays.pop(file[:-4], None)     # mapped from the file when asked for
            self._maps.pop(file, None)
        for file in dropped:
            (self.directory / file).unlink(missing_ok=True)
        self._remember(f"{name}.npy")


def _seq(meta: Any) -> int:
    """Where a file stands in its series (0: before series were numbered, or not a number)."""
    seq = meta.get("seq") if isinstance(meta, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else 0


def _atomic(directory: Path, name: str, payload: bytes | memoryview) -> None:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, directory / name)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_npy(directory: Path, name: str, array: np.ndarray) -> dict[str, Any]:
    """Write ``array`` as ``directory/name`` (atomically, streamed to the file)."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array), allow_pickle=False)
        meta = file_meta(Path(tmp))
        os.replace(tmp, directory / name)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return meta


def write_manifest(directory: Path, key: str, body: dict[str, Any], signing: bytes) -> None:
    """Write the chunk's manifest, ``body`` signed over the chunk's ``key``, atomically."""
    signed = {**body, "hmac-sha256": _signature(signing, key, body)}
    _atomic(directory, MANIFEST, json.dumps(signed, sort_keys=True).encode())
