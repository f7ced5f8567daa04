"""A content-addressed cache of expensive work, in a directory a CI cache step can persist.

Entries are keyed by what they were computed from (model, text, config), written atomically,
and stored with a checksum: an entry that fails its checksum, or was written by another
version of the format, is deleted and recomputed, never trusted. Nothing is pickled, so a
tampered cache can at worst cost a recomputation.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .progress import Progress

FORMAT = "eval-firewall-cache/1"


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
    """``Cache(None)`` keeps nothing; ``Cache(path)`` stores entries under ``path``."""

    def __init__(self, directory: Path | None, progress: Progress | None = None) -> None:
        self.directory = Path(directory) if directory else None
        self.progress = progress or Progress(enabled=False)
        self.hits = 0
        self.misses = 0
        self.rebuilt = 0

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    def _file(self, namespace: str, key: str, suffix: str) -> Path:
        assert self.directory is not None
        return self.directory / namespace / key[:2] / f"{key}{suffix}"

    def _discard(self, path: Path, why: str) -> None:
        self.rebuilt += 1
        self.progress.warn(f"cache entry {path.name} {why}: recomputing it")
        for p in (path, path.with_name(path.name + ".sum")):
            p.unlink(missing_ok=True)

    def _read_verified(self, path: Path) -> bytes | None:
        summary = path.with_name(path.name + ".sum")
        if not path.exists():
            self.misses += 1
            return None
        try:
            meta = json.loads(summary.read_text())
            data = path.read_bytes()
        except (OSError, ValueError):
            self._discard(path, "has no valid checksum")
            self.misses += 1
            return None
        if meta.get("format") != FORMAT:
            self._discard(path, "was written by another cache format")
            self.misses += 1
            return None
        if meta.get("blake2b") != hashlib.blake2b(data).hexdigest():
            self._discard(path, "is corrupt")
            self.misses += 1
            return None
        self.hits += 1
        return data

    def _ignore_in_git(self) -> None:
        """The default cache lives in the user's repository: keep it out of ``git status``."""
        assert self.directory is not None
        marker = self.directory / ".gitignore"
        if not marker.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            marker.write_text("# Created by eval-firewall: this cache is not for committing.\n*\n")

    def _write(self, path: Path, data: bytes) -> None:
        self._ignore_in_git()
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"format": FORMAT, "blake2b": hashlib.blake2b(data).hexdigest()})
        for target, payload in ((path, data), (path.with_name(path.name + ".sum"),
                                               meta.encode())):
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            os.replace(tmp, target)

    # Arrays (npz, no pickles).
    def get_arrays(self, namespace: str, key: str) -> dict[str, np.ndarray] | None:
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
        if not self.enabled:
            return
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        self._write(self._file(namespace, key, ".npz"), buffer.getvalue())

    # Opaque bytes (e.g. an Arrow IPC file).
    def get_bytes(self, namespace: str, key: str) -> bytes | None:
        if not self.enabled:
            return None
        return self._read_verified(self._file(namespace, key, ".bin"))

    def put_bytes(self, namespace: str, key: str, data: bytes) -> None:
        if self.enabled:
            self._write(self._file(namespace, key, ".bin"), data)

    def discard_bytes(self, namespace: str, key: str, why: str) -> None:
        self._discard(self._file(namespace, key, ".bin"), why)

    # JSON documents.
    def get_json(self, namespace: str, key: str) -> Any | None:
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

    def __init__(self, embedder: Any, cache: Cache, *, direct_below: int = 0) -> None:
        self.inner = embedder
        self.cache = cache
        # For a cheap embedder (a static model), a small batch is faster to encode than the
        # cache is to load: batches under this size skip the cache.
        self.direct_below = direct_below
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
        if not self.cache.enabled or (len(texts) < self.direct_below and not self._loaded):
            return self.inner.encode(texts, **kwargs)
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
