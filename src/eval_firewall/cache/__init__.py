"""A content-addressed cache of expensive work, in a directory a CI cache step can persist.

Entries are keyed by what they were computed from (model, text, config) and written atomically.
The cache is never input from the pull request:

- Each entry is signed with an HMAC-SHA256 whose random key lives in the per-user directory
  (:func:`.home.user_home`, ``cache-key``), outside the repository, so a pull request cannot
  compute it. An entry that fails its signature (committed, tampered with, written with another
  key or by another version of the format) is recomputed with a warning, never trusted.
- A cache directory that git tracks files in, or that is (or lies under) a symbolic link inside
  the repository, is not used for the run (one warning): its content is the repository's, i.e.
  the pull request's. The tool does not touch those files.
- Entries are regular files of bounded size (:data:`MAX_ENTRY_BYTES`), opened without following
  symbolic links; anything else in an entry's place is replaced by a fresh entry.

Nothing is pickled, so even an entry that passed every check could at worst give a wrong result
to a run holding the key, never run code.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import io
import json
import os
import secrets
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..home import user_home
from ..progress import Progress
from ..safeio.paths import work_tree

FORMAT = "eval-firewall-cache/2"      # 1: unkeyed blake2b checksums; 2: HMAC-SHA256 signatures
KEY_FILE = "cache-key"                # in user_home()
KEY_BYTES = 32

_GiB = 1 << 30
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
        replace: str | None
        try:
            key = read_regular(path, KEY_BYTES)
        except _Untrusted as exc:
            key, replace = None, str(exc)
        else:
            replace = None if key is None or len(key) == KEY_BYTES else "is not a key"
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


class CachedEmbedder:
    """Wraps any embedder (``key``, ``dim``, ``encode``) so each text is encoded once, ever.

    Vectors are stored in shards: one npz per call that had cache misses, holding the new
    texts' hashes and vectors. All shards of a model are loaded (and checked) on first use,
    into one sorted table that is searched with numpy (a million lookups in well under a
    second; a dictionary of a million keys would take seconds to build).
    """

    NAMESPACE = "embeddings"

    def __init__(self, embedder: Any, cache: Cache) -> None:
        self.inner = embedder
        self.cache = cache
        self.key = embedder.key
        self.dim = embedder.dim
        self._loaded = False
        self._names: list[str] = []
        self._keys = np.empty((0, 16), dtype=np.uint8)        # full 16-byte text hashes
        self._vectors = np.empty((0, self.dim), dtype=np.float32)
        self._order = np.empty(0, dtype=np.int64)             # rows sorted by key prefix
        self._sorted = np.empty(0, dtype=np.uint64)
        self.encoded = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _manifest_key(self) -> str:
        return content_key("manifest", self.key)

    @staticmethod
    def _prefix(keys: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(keys[:, :8]).view(np.uint64).reshape(-1)

    def _add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        self._keys = np.concatenate([self._keys, keys])
        self._vectors = np.concatenate([self._vectors, vectors.astype(np.float32, copy=False)])
        prefixes = self._prefix(self._keys)
        self._order = np.argsort(prefixes, kind="stable")
        self._sorted = prefixes[self._order]

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        names = self.cache.get_json(self.NAMESPACE, self._manifest_key()) or []
        keys, vectors = [], []
        for name in names:
            shard = self.cache.get_arrays(self.NAMESPACE, name)
            if (shard is None or shard["vectors"].shape[1:] != (self.dim,)
                    or shard["keys"].shape != (len(shard["vectors"]), 16)):
                continue
            keys.append(shard["keys"])
            vectors.append(shard["vectors"])
            self._names.append(name)
        if keys:
            self._add(np.concatenate(keys), np.concatenate(vectors))
        if self._names != names:
            self.cache.put_json(self.NAMESPACE, self._manifest_key(), self._names)

    def _lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, row of each found key in the table)."""
        if not len(self._sorted):
            return np.zeros(len(keys), dtype=bool), np.zeros(len(keys), dtype=np.int64)
        pos = np.searchsorted(self._sorted, self._prefix(keys))
        pos = np.minimum(pos, len(self._sorted) - 1)
        rows = self._order[pos]
        # The prefix finds the row; the whole hash must match (a prefix collision is a miss).
        found = (self._keys[rows] == keys).all(axis=1)
        return found, rows

    def encode(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        """The vectors of ``texts``: cached ones looked up, the others encoded once and cached."""
        if not self.cache.enabled:
            direct: np.ndarray = self.inner.encode(texts, **kwargs)
            return direct
        self._load()
        keys = text_keys(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        found, rows = self._lookup(keys)
        out[found] = self._vectors[rows[found]]
        missing: dict[bytes, list[int]] = {}
        for i in np.flatnonzero(~found):
            missing.setdefault(keys[i].tobytes(), []).append(int(i))
        if missing:
            first = [positions[0] for positions in missing.values()]
            vectors = np.asarray(self.inner.encode([texts[i] for i in first], **kwargs),
                                 dtype=np.float32)
            self.encoded += len(first)
            for positions, vector in zip(missing.values(), vectors):
                out[positions] = vector
            name = content_key("shard", self.key, keys[first].tobytes())
            self.cache.put_arrays(self.NAMESPACE, name, keys=keys[first], vectors=vectors)
            self._add(keys[first], vectors)
            self._names.append(name)
            self.cache.put_json(self.NAMESPACE, self._manifest_key(), self._names)
        return out
