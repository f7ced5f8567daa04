"""The cache's entries: :class:`Cache` stores signed, size-bounded entries by content key
(:func:`content_key`) in namespaces (rows, embeddings, indexes, results)."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..home import user_home
from ..progress import Progress
from ..safeio.paths import work_tree
from .files import _GiB, _size, _Untrusted, read_regular, remove_path
from .signing import signing_key, untrusted_directory

FORMAT = "eval-firewall-cache/2"      # 1: unkeyed blake2b checksums; 2: HMAC-SHA256 signatures
# The largest entry read or written per namespace; a bigger file is not trusted (nor read), a
# bigger value is not stored. Sized for the benchmark's 1M-row train sets with room to spare.
MAX_ENTRY_BYTES = {
    "rows": 4 * _GiB,               # a data file's parsed rows (Arrow IPC)
    "embeddings": 4 * _GiB,         # embedding shards (npz) and their manifest
    "vector-index": 4 * _GiB,       # a train set's retrieval vectors (npz)
    "lexical-index": 4 * _GiB,      # a train set's lexical index (npz)
    "overlap-results": 1 * _GiB,    # each eval row's overlap result (JSON)
    "eval-duplicates": 1 * _GiB,    # an eval set's duplicates inside it (JSON)
}
DEFAULT_MAX_ENTRY_BYTES = 1 * _GiB
MAX_SIGNATURE_BYTES = 4096          # an entry's ``.sum`` file


def content_key(*parts: object) -> str:
    """A stable hex key for the given parts (strings, bytes, numbers, JSON-able values)."""
    h = hashlib.blake2b(digest_size=20)
    for part in parts:
        data = part if isinstance(part, bytes) else json.dumps(part, sort_keys=True,
                                                               default=str).encode()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """One 16-byte content hash per text, as an (n, 16) uint8 array."""
    out = np.empty((len(texts), 16), dtype=np.uint8)
    for i, text in enumerate(texts):
        out[i] = np.frombuffer(hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest(),
                               dtype=np.uint8)
    return out


class Cache:
    """``Cache(None)`` keeps nothing; ``Cache(path)`` stores entries under ``path``.

    ``home`` holds the signing key (default :func:`.home.user_home`). A directory that is the
    repository's own content (see :func:`untrusted_directory`) disables the cache for the run.
    """

    def __init__(self, directory: Path | None, progress: Progress | None = None, *,
                 home: Path | None = None) -> None:
        self.progress = progress or Progress(enabled=False)
        self.hits = 0
        self.misses = 0
        self.rebuilt = 0
        self._home = home
        self._key: bytes | None = None
        self._warned: set[str] = set()
        self.directory = Path(directory) if directory else None
        if self.directory is not None and (why := untrusted_directory(self.directory)):
            self.progress.warn(f"cache directory {directory} is not used for this run: it {why}")
            self.directory = None

    @property
    def enabled(self) -> bool:
        """Whether entries are read and written (False for ``Cache(None)`` or an untrusted directory)."""
        return self.directory is not None

    @property
    def key(self) -> bytes:
        """The HMAC signing key, read or created on first use (see :func:`signing_key`)."""
        if self._key is None:
            assert self.directory is not None
            repositories = [top for top in (work_tree(self.directory.parent),
                                            work_tree(Path.cwd())) if top]
            self._key = signing_key(self._home or user_home(), repositories, self.progress)
        return self._key

    def _file(self, namespace: str, key: str, suffix: str) -> Path:
        assert self.directory is not None
        return self.directory / namespace / key[:2] / f"{key}{suffix}"

    def _name(self, path: Path) -> str:
        assert self.directory is not None
        return path.relative_to(self.directory).as_posix()

    def warn_once(self, why: str, message: str) -> None:
        """Print ``message`` unless a warning about ``why`` was printed in this run (each kind
        of problem is reported once per run: entries and index chunks alike)."""
        if why not in self._warned:
            self._warned.add(why)
            self.progress.warn(message)

    def _warn_once(self, path: Path, why: str, then: str) -> None:
        if why not in self._warned:
            self._warned.add(why)
            self.progress.warn(f"cache entry {self._name(path)} {why}: {then}")

    def _discard(self, path: Path, why: str) -> None:
        self.rebuilt += 1
        self._warn_once(path, why, "recomputing it")
        linked = [p for p in (path.parent.parent, path.parent) if p.is_symlink()]
        for p in linked[:1] or (path, path.with_name(path.name + ".sum")):
            remove_path(p)           # a linked directory: the link, never what it points to

    def _signature(self, path: Path, data: bytes | memoryview) -> str:
        mac = hmac.new(self.key, digestmod=hashlib.sha256)
        for part in (FORMAT, self._name(path)):          # bound to its place: no swapping
            mac.update(part.encode() + b"\0")
        mac.update(data)
        return mac.hexdigest()

    def _limit(self, path: Path) -> int:
        return MAX_ENTRY_BYTES.get(self._name(path).split("/")[0], DEFAULT_MAX_ENTRY_BYTES)

    def _linked_parent(self, path: Path) -> bool:
        """True when a directory between the cache directory and the entry is a link."""
        assert self.directory is not None
        return any(p.is_symlink() for p in (path.parent, path.parent.parent))

    def _read_verified(self, path: Path) -> bytes | None:
        summary = path.with_name(path.name + ".sum")
        try:
            if self._linked_parent(path):
                raise _Untrusted("lies in a symbolic link")
            data = read_regular(path, self._limit(path))
            if data is None:
                self.misses += 1
                return None
            raw = read_regular(summary, MAX_SIGNATURE_BYTES)
            meta = json.loads(raw) if raw is not None else None
        except _Untrusted as exc:
            self._discard(path, str(exc))
            self.misses += 1
            return None
        except ValueError:
            meta = None
        why = None
        if not isinstance(meta, dict):
            why = "has no valid signature"
        elif meta.get("format") != FORMAT:
            why = "was written by another cache format"
        elif not isinstance(meta.get("hmac-sha256"), str):
            why = "has no valid signature"
        elif data is None or not hmac.compare_digest(meta["hmac-sha256"], self._signature(path, data)):
            why = "fails its signature check (written with another key, or tampered with)"
        if why is not None:
            self._discard(path, why)
            self.misses += 1
            return None
        self.hits += 1
        return data

    def _ignore_in_git(self) -> None:
        """The default cache lives in the user's repository: keep it out of ``git status``."""
        assert self.directory is not None
        marker = self.directory / ".gitignore"
        if not os.path.lexists(marker):
            self.directory.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            except FileExistsError:
                return
            with os.fdopen(fd, "w") as fh:
                fh.write("# Created by eval-firewall: this cache is not for committing.\n*\n")

    def _write(self, path: Path, data: bytes | memoryview) -> None:
        if len(data) > self._limit(path):
            self._warn_once(path, f"would be larger than the {_size(self._limit(path))} limit",
                            "not storing it")
            return
        try:
            self._ignore_in_git()
            for directory in (path.parent.parent, path.parent):
                if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
                    remove_path(directory)
            path.parent.mkdir(parents=True, exist_ok=True)
            meta = json.dumps({"format": FORMAT, "hmac-sha256": self._signature(path, data)})
            for target, payload in ((path, data), (path.with_name(path.name + ".sum"),
                                                   meta.encode())):
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
                try:
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(payload)
                    if target.is_dir() and not target.is_symlink():
                        remove_path(target)      # os.replace cannot put a file over a directory
                    os.replace(tmp, target)
                finally:
                    Path(tmp).unlink(missing_ok=True)
        except OSError as exc:
            self._warn_once(path, f"cannot be stored ({exc.strerror or exc})",
                            "continuing without it")

    # Arrays (npz, no pickles).
    def get_arrays(self, namespace: str, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key``; None on a miss or an entry that fails its checks."""
        if not self.enabled:
            return None
        path = self._file(namespace, key, ".npz")
        data = self._read_verified(path)
        if data is None:
            return None
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                return {name: npz[name] for name in npz.files}
        except (ValueError, OSError) as exc:
            self._discard(path, f"is unreadable ({exc})")
            return None

    def put_arrays(self, namespace: str, key: str, **arrays: np.ndarray) -> None:
        """Store ``arrays`` under ``key`` as a signed npz (no pickles)."""
        if not self.enabled:
            return
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **arrays)
        with buffer.getbuffer() as view:       # signed and written without another copy
            self._write(self._file(namespace, key, ".npz"), view)

    # Opaque bytes (e.g. an Arrow IPC file).
    def get_bytes(self, namespace: str, key: str) -> bytes | None:
        """The bytes stored under ``key``; None on a miss or an entry that fails its checks."""
        if not self.enabled:
            return None
        return self._read_verified(self._file(namespace, key, ".bin"))

    def put_bytes(self, namespace: str, key: str, data: bytes | memoryview) -> None:
        """Store ``data`` (bytes, or a byte buffer's view: not copied) under ``key``, signed."""
        if self.enabled:
            self._write(self._file(namespace, key, ".bin"), data)

    def discard_bytes(self, namespace: str, key: str, why: str) -> None:
        """Remove the bytes entry under ``key``, warning once with ``why`` (e.g. it is unreadable)."""
        self._discard(self._file(namespace, key, ".bin"), why)

    # JSON documents.
    def get_json(self, namespace: str, key: str) -> Any | None:
        """The JSON value stored under ``key``; None on a miss or an entry that fails its checks."""
        if not self.enabled:
            return None
        path = self._file(namespace, key, ".json")
        data = self._read_verified(path)
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError:
            self._discard(path, "is not valid JSON")
            return None

    def put_json(self, namespace: str, key: str, value: Any) -> None:
        """Store ``value`` as JSON under ``key``, signed."""
        if self.enabled:
            self._write(self._file(namespace, key, ".json"), json.dumps(value).encode())
