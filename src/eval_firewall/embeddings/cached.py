"""An embedder that encodes each text once, ever: vectors kept in the cache by the text's hash."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..cache.store import content_key, text_keys

if TYPE_CHECKING:
    from ..cache.store import Cache


class CachedEmbedder:
    """Wraps any embedder (``key``, ``dim``, ``encode``) so each text is encoded once, ever.

    Vectors are stored in shards: one npz per call that had cache misses, holding the new
    texts' hashes and vectors. All shards of a model are loaded (and checked) on first use,
    into one sorted table that is searched with numpy (no dictionary of every key to build on
    each load).
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
