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
from .chunk import Chunk
from .columns import IndexedRows, StringColumn
from .digests import BadChunk
from .store import NORM_HASH, chunk_key, vectors_name

ENCODE_ROWS = 65536        # texts encoded at once (bounds the float32 output's memory)


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
        c.release("lexical.rows")             # copied into the matrix: its pages may go
    index = lexical.LexicalIndex.__new__(lexical.LexicalIndex)
    index.size = size
    index.idf = idf
    index._matrix_t = (mats[0] if len(mats) == 1 else
                       sparse.hstack(mats, format="csr") if mats else
                       sparse.csr_matrix((n_features, 0), dtype=np.float32))
    return index


# The row norms a chunk keeps, of as many train sets (the last computed): a train file changed
# on a branch and then on the default branch makes two; more are computed again when needed.
NORMS_KEPT = 4


class ChunkedLexical(lexical.LexicalIndex):
    """The lexical index of all chunks' rows, as :func:`chunked_lexical` builds it, but whose
    matrix holds only the features of the queries asked: a few changed eval rows read the
    postings of their own words, not the whole index. The whole set's IDF comes from the
    chunks' document frequencies (small arrays); each chunk's row norms under it are computed
    once and stored in the chunk (``lexical.norms.<IDF hash>``; the last :data:`NORMS_KEPT`).
    Candidates are the same, in the same order, as from the whole matrix (the same products,
    summed in the same order)."""

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        self.chunks = list(chunks)
        self.size = sum(c.rows for c in self.chunks)
        df = np.zeros(lexical.N_FEATURES, dtype=np.int64)
        for c in self.chunks:
            df[c.array("lexical.features")] += np.diff(c.array("lexical.starts"))
        keep = (df > 0) & (df <= lexical.max_postings(self.size))
        self.idf = np.zeros(lexical.N_FEATURES, dtype=np.float32)
        self.idf[keep] = np.log((1 + self.size) / (1 + df[keep])) + 1.0
        self._norms_name = f"lexical.norms.{hashlib.blake2b(self.idf.tobytes(), digest_size=8).hexdigest()}"
        self.offsets = np.cumsum([0] + [c.rows for c in self.chunks])

    def prepare(self) -> None:
        """Compute (and store) every chunk's row norms under the whole set's IDF now: the
        build of an index kept in object storage does, so that a pull request's run fetches
        the postings of its queries' words only, never a chunk's whole postings."""
        for c in self.chunks:
            self._norms(c)

    def _norms(self, c: Chunk) -> np.ndarray:
        """Chunk ``c``'s row norms under the whole set's IDF (stored in it the first time)."""
        name = self._norms_name
        if c.has(name):
            try:
                norms = c.array(name)
                if norms.shape == (c.rows,) and norms.dtype == np.float64:
                    return norms
            except BadChunk:
                pass
        features, rows = c.array("lexical.features"), c.array("lexical.rows")
        counts = np.diff(c.array("lexical.starts"))
        weight = self.idf[features]
        kept = weight > 0
        local = rows[np.repeat(kept, counts)]
        values = np.repeat(weight[kept], counts[kept])
        norms = np.sqrt(np.bincount(local, weights=np.square(values).astype(np.float64),
                                    minlength=c.rows))
        norms[norms == 0.0] = 1.0
        c.release("lexical.rows")
        c.add(name, norms, kept=NORMS_KEPT)
        return c.array(name)

    def _matrix(self, features: np.ndarray) -> Any:
        """Rows ``features`` (sorted) of the whole set's feature x row matrix."""
        from scipy import sparse

        lengths = np.zeros(len(features), dtype=np.int64)
        parts: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in features]
        for c, offset in zip(self.chunks, self.offsets):
            have = c.array("lexical.features")
            starts, rows = c.array("lexical.starts"), c.array("lexical.rows")
            at = np.searchsorted(have, features)
            found = (at < len(have)) & (have[np.minimum(at, len(have) - 1)] == features) \
                if len(have) else np.zeros(len(features), dtype=bool)
            norms = None
            for i in np.flatnonzero(found & (self.idf[features] > 0)):
                if norms is None:
                    norms = self._norms(c)
                local = rows[starts[at[i]]:starts[at[i] + 1]]
                data = (self.idf[features[i]] / norms[local]).astype(np.float32)
                parts[i].append((local.astype(np.int64) + offset, data))
                lengths[i] += len(local)
        indptr = np.zeros(len(features) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        flat = [piece for row in parts for piece in row]
        indices = np.concatenate([r for r, _ in flat]) if flat else np.empty(0, np.int64)
        data = np.concatenate([d for _, d in flat]) if flat else np.empty(0, np.float32)
        return sparse.csr_matrix((data, indices, indptr), shape=(len(features), self.size))

    def candidates(self, queries: lexical.Texts, k: int) -> list[np.ndarray]:
        """As :meth:`~eval_firewall.search.lexical.LexicalIndex.candidates`."""
        if self.size == 0:
            return [np.empty(0, dtype=np.int64) for _ in range(len(queries))]
        featured = lexical.hashed_words(queries)
        featured.data = self.idf[featured.indices]
        lexical.l2_normalize_rows(featured)
        from scipy import sparse

        needed = np.unique(featured.indices)          # the queries' words, as matrix rows
        featured = sparse.csr_matrix(
            (featured.data, np.searchsorted(needed, featured.indices).astype(featured.indices.dtype),
             featured.indptr), shape=(featured.shape[0], len(needed)))
        self._matrix_t = self._matrix(needed)
        try:
            return super().candidates_of(featured, k)
        finally:
            del self._matrix_t


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
        side = IndexedTrainSide(self.norm, self.texts, ChunkedLexical(self.chunks),
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
        model needs them; mapped, one part per chunk, never copied."""
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
                array = np.empty((c.rows, retriever.dim), dtype=np.float16)
                column = c.table().column("text")
                for r0 in range(0, c.rows, ENCODE_ROWS):     # bounded float32 output
                    texts = column.slice(r0, ENCODE_ROWS).to_pylist()
                    array[r0:r0 + len(texts)] = retriever.encode(texts)
                c.add(name, array, about=retriever.key)
                array = c.array(name)                    # mapped, not kept resident
            parts.append(array)
        chunks = self.chunks
        return VectorIndex(parts, storage=np.float16,
                           release=lambda c, lo, hi: chunks[c].release(name, lo, hi))

    warn: Any = None
    runner: shards.Executor | None = None     # how shards are searched (default: here)

    def _warn(self, c: Chunk, why: str) -> None:
        if self.warn is not None:
            self.warn(f"index chunk {c.key[:12]} ({c.manifest['source'].get('path')}) {why}: "
                      "recomputing its vectors")


def index_fingerprint(keys: Sequence[str]) -> str:
    """A train corpus' fingerprint from its chunks' keys, in row order."""
    return content_key("index", list(keys))


def base_index_fingerprint(changes: Any, datasets: Sequence[Any]) -> str | None:
    """The fingerprint the train corpus had at the base revision (its chunks' keys, from the
    base's file versions), so the base's cached results are found; None if unknown."""
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
