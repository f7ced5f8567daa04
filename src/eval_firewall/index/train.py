"""The train side of the overlap audit, served from index chunks.

:class:`IndexedCorpus` is a :class:`~eval_firewall.overlap.corpus.Corpus` whose rows, texts and
normalized texts are sequences over the mapped chunks, whose fingerprint is the chunks' keys
(no text is hashed), and whose :meth:`~IndexedCorpus.side` answers the three train-side
queries from the chunks' arrays: exact copies by normalized-text hash, lexical candidates by
the chunks' postings weighted with the whole train set's IDF, and the static vectors of the
paraphrase retrieval (float16, mapped; candidates are rescored by the full model as always).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

import numpy as np

from ..cache import content_key
from ..overlap.corpus import Corpus
from ..overlap.finders import TrainSide
from ..search import containment, lexical, shards
from ..search.vectors import VectorIndex
from .chunk import BadChunk, Chunk
from .columns import IndexedRows, StringColumn
from .store import NORM_HASH, vectors_name


class HashedExact:
    """Normalized text -> first train row with it, looked up by hash in the chunks (a
    read-only mapping with ``in`` and ``[]``, as :func:`~eval_firewall.overlap.finders.
    exact_matches` uses it)."""

    def __init__(self, chunks: Sequence[Chunk], norm: StringColumn, starts: np.ndarray) -> None:
        self.chunks, self.norm, self.starts = list(chunks), norm, starts
        self._sorted: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._last: tuple[str, int | None] | None = None

    def _table(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        if c not in self._sorted:
            order = self.chunks[c].array(f"{NORM_HASH}.order")
            self._sorted[c] = (self.chunks[c].array(NORM_HASH)[order], order)
        return self._sorted[c]

    def find(self, text: str) -> int | None:
        """The first train row whose normalized text is ``text``, or None."""
        if self._last is not None and self._last[0] == text:
            return self._last[1]
        h = np.uint64(int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"),
                                                     digest_size=8).digest(), "little"))
        found = None
        for c in range(len(self.chunks)):
            hashes, order = self._table(c)
            pos = int(np.searchsorted(hashes, h))
            while pos < len(hashes) and hashes[pos] == h:
                j = int(self.starts[c]) + int(order[pos])
                if self.norm[j] == text:          # a hash collision is no copy
                    found = j
                    break
                pos += 1
            if found is not None:
                break
        self._last = (text, found)
        return found

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and self.find(text) is not None

    def __getitem__(self, text: str) -> int:
        found = self.find(text)
        if found is None:
            raise KeyError(text)
        return found


def chunked_lexical(chunks: Sequence[Chunk]) -> lexical.LexicalIndex:
    """The lexical index of all chunks' rows, from their postings: the whole set's document
    frequencies and IDF, each chunk's rows L2-normalized under them, as
    :class:`~eval_firewall.search.lexical.LexicalIndex` builds them from the texts."""
    from scipy import sparse

    n_features = lexical.N_FEATURES
    size = sum(c.rows for c in chunks)
    df = np.zeros(n_features, dtype=np.int64)
    for c in chunks:
        df[c.array("lexical.features")] += np.diff(c.array("lexical.starts"))
    keep = (df > 0) & (df <= lexical.max_postings(size))
    idf = np.zeros(n_features, dtype=np.float32)
    idf[keep] = np.log((1 + size) / (1 + df[keep])) + 1.0
    del df, keep
    mats = []
    for c in chunks:
        features, rows = c.array("lexical.features"), c.array("lexical.rows")
        counts = np.diff(c.array("lexical.starts"))
        weight = idf[features]
        kept = weight > 0
        kept_counts = np.where(kept, counts, 0)
        select = np.repeat(kept, counts)
        local = rows[select]
        values = np.repeat(weight[kept], counts[kept])
        norms = np.sqrt(np.bincount(local, weights=np.square(values).astype(np.float64),
                                    minlength=c.rows))
        norms[norms == 0.0] = 1.0
        data = (values / norms[local]).astype(np.float32)
        indptr = np.zeros(n_features + 1, dtype=np.int64)
        indptr[features.astype(np.int64) + 1] = kept_counts
        np.cumsum(indptr, out=indptr)
        mats.append(sparse.csr_matrix((data, local, indptr), shape=(n_features, c.rows)))
    index = lexical.LexicalIndex.__new__(lexical.LexicalIndex)
    index.size = size
    index.idf = idf
    index._matrix_t = (mats[0] if len(mats) == 1 else
                       sparse.hstack(mats, format="csr") if mats else
                       sparse.csr_matrix((n_features, 0), dtype=np.float32))
    return index


class IndexedTrainSide(TrainSide):
    """The train side of index chunks: containment scans each chunk's stored word hashes
    (memory-mapped, the ``containment`` postings) with the chunk's row offset, so no train
    text is tokenized again. The eval items' n-grams are counted over every chunk, so
    boilerplate (an n-gram in more than ``max_train_rows`` rows) is judged on the whole set."""

    def __init__(self, norm: Sequence[str], texts: Sequence[str], index: lexical.LexicalIndex,
                 chunks: Sequence[Chunk], offsets: np.ndarray,
                 runner: shards.Executor | None = None) -> None:
        super().__init__(norm, texts, index)
        self.chunks, self.offsets, self.runner = list(chunks), offsets, runner

    def _postings(self, c: int) -> dict[str, np.ndarray]:
        """Chunk ``c``'s containment arrays (:func:`~eval_firewall.search.shards.stored_postings`)."""
        return shards.stored_postings(self.chunks[c])

    def contained(self, eval_norm: Sequence[str], settings: containment.Settings,
                  only: Sequence[int], advance: Callable[[int], None] | None = None
                  ) -> dict[int, containment.Contained]:
        """As :meth:`TrainSide.contained`, from the chunks' stored postings."""
        items = containment.EvalItems(eval_norm, settings, only)
        if not len(items):
            if advance is not None:
                advance(int(self.offsets[-1]))
            return {}
        runner = self.runner or shards.LocalExecutor()     # one shard at a time, or on Ray
        answers = runner.map(shards.containment_shard, self.chunks, items)
        return shards.merge_containment(answers, items, self.offsets, advance)


class IndexedCorpus(Corpus):
    """A train corpus over index chunks (see the module's docstring)."""

    @property
    def chunks(self) -> list[Chunk]:
        """The chunks, in row order."""
        rows = self.rows
        assert isinstance(rows, IndexedRows)
        return rows.chunks

    @cached_property
    def texts(self) -> StringColumn:  # type: ignore[override]
        """The rows' original texts, read from the chunks on demand."""
        return StringColumn(self.chunks, "text")

    @cached_property
    def fingerprint(self) -> str:
        """The chunks' keys: each names its file's content and settings."""
        return index_fingerprint([c.key for c in self.chunks])

    @cached_property
    def side(self) -> TrainSide:
        """The train side's queries, answered from the chunks."""
        rows = self.rows
        assert isinstance(rows, IndexedRows) and isinstance(self.norm, StringColumn)
        side = IndexedTrainSide(self.norm, self.texts, chunked_lexical(self.chunks),
                                self.chunks, rows.offsets(), self.runner)
        side._exact = HashedExact(self.chunks, self.norm, rows.offsets())  # type: ignore[assignment]
        return side

    def search_index(self, retriever: Any) -> VectorIndex:
        """The static vectors' index as :attr:`runner` searches it: :meth:`vector_index` in
        this process, or its shards each searched by a task of another executor (Ray's), the
        k best merged (:class:`~eval_firewall.search.shards.ShardedVectorIndex`)."""
        index = self.vector_index(retriever)
        if self.runner is None or self.runner.name == "local":
            return index
        return shards.ShardedVectorIndex(self.chunks, vectors_name(retriever.key), index.dim,
                                         self.runner)

    def vector_index(self, retriever: Any) -> VectorIndex:
        """The static vectors of every row (float16), encoded into a chunk the first time a
        model needs them; mapped, never copied when there is one chunk."""
        name = vectors_name(retriever.key)
        parts = []
        for c in self.chunks:
            array = None
            if c.has(name):
                try:
                    array = c.array(name)
                    if array.shape != (c.rows, retriever.dim):
                        raise BadChunk(f"has {name} of the wrong shape")
                except BadChunk as exc:     # the chunk stays; its vectors are replaced
                    self._warn(c, str(exc))
                    array = None
            if array is None:
                texts = c.table().column("text").to_pylist()
                array = np.asarray(retriever.encode(texts), dtype=np.float16) if texts else \
                    np.empty((0, retriever.dim), dtype=np.float16)
                c.add(name, array, about=retriever.key)
            parts.append(array)
        vectors = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return VectorIndex(vectors, storage=np.float16)

    warn: Any = None
    runner: shards.Executor | None = None     # how shards are searched (default: here)

    def _warn(self, c: Chunk, why: str) -> None:
        if self.warn is not None:
            self.warn(f"index chunk {c.key[:12]} ({c.manifest['source'].get('path')}) {why}: "
                      "recomputing its vectors")


def train_corpus(datasets: Sequence[Any], warn: Any = None,
                 runner: shards.Executor | None = None) -> IndexedCorpus | None:
    """The train corpus of ``datasets`` when every one was read from the index, else None;
    ``runner`` searches its shards (default: in this process)."""
    if not datasets or not all(isinstance(d.rows, IndexedRows) for d in datasets):
        return None
    chunks = [c for d in datasets for c in d.rows.chunks]
    names = [n for d in datasets for n in d.rows.names]
    displays = [p for d in datasets for p in d.rows.displays]
    rows = IndexedRows(chunks, names, datasets[0].role, displays)
    corpus = IndexedCorpus(rows, StringColumn(chunks, "norm"))
    object.__setattr__(corpus, "warn", warn)
    object.__setattr__(corpus, "runner", runner)
    return corpus


def index_fingerprint(keys: Sequence[str]) -> str:
    """A train corpus' fingerprint from its chunks' keys, in row order."""
    return content_key("index", list(keys))


def base_index_fingerprint(changes: Any, datasets: Sequence[Any]) -> str | None:
    """The fingerprint the train corpus had at the base revision (its chunks' keys, from the
    base's file versions), so the base's cached results are found; None if unknown."""
    from .store import chunk_key

    keys = []
    for ds in datasets:
        base = changes.base_datasets.get(ds.name)
        versions = changes.base_versions.get(ds.name, {})
        if base is None:
            return None
        for rel in base.files:
            if rel not in versions:
                return None
            keys.append(chunk_key(ds, rel, versions[rel]))
    return index_fingerprint(keys)
