"""Incremental overlap: reuse earlier results for rows that did not change; search the rest.

Overlap results are pairwise and deterministic, so an eval row's strongest match against a
train set can be kept for as long as neither the row nor the train set changes. Results are
cached per (overlap config, train set): re-running on an unchanged train set searches only the
eval rows it has not seen. When the train set changed since ``--base``, the base's results are
reused for unchanged eval rows, every eval row is searched against the new train rows only,
and rows whose match was deleted are searched again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .audits.overlap import Hit, ParaphraseFactory, TrainSide, find_overlaps
from .cache import Cache, content_key
from .config import OverlapConfig
from .progress import Progress
from .rows import Row
from .embeddings import Embedder
from .search.lexical import LexicalIndex
from .search.vectors import VectorIndex

RESULTS = "overlap-results"
INDEXES = "lexical-index"
VECTORS = "vector-index"


def text_digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


def texts_fingerprint(texts: Sequence[str], chunk: int = 10_000) -> str:
    """A content key for an ordered list of texts (hashed in chunks: fast, little memory)."""
    h = hashlib.blake2b(digest_size=20)
    for start in range(0, len(texts), chunk):
        piece = texts[start:start + chunk]
        h.update(",".join(map(str, map(len, piece))).encode())   # no two lists hash alike
        h.update("\x1e".join(piece).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


class Texts(list):
    """Texts that know their fingerprint (so a million of them are hashed once per run)."""

    @property
    def fingerprint(self) -> str:
        if not hasattr(self, "_fingerprint"):
            self._fingerprint = texts_fingerprint(self)
        return self._fingerprint


def fingerprint_of(texts: Sequence[str]) -> str:
    return texts.fingerprint if isinstance(texts, Texts) else texts_fingerprint(texts)


def train_fingerprint(train: Sequence[Row]) -> str:
    return texts_fingerprint([row.text for row in train])


@dataclass
class SearchStats:
    searched: int = 0        # eval rows searched against the whole train set
    reused: int = 0          # eval rows whose result came from the cache
    against_new_train: int = 0


def _config_key(cfg: OverlapConfig) -> str:
    from .audits.semantic import scoring_key   # a recalibrated model invalidates results
    return content_key(cfg.model_dump(mode="json", exclude={"distribution"}),
                       scoring_key(cfg.semantic))


def cached_vector_index(cache: Cache, build: Callable[[Sequence[str], Embedder], VectorIndex]
                        ) -> Callable[[Sequence[str], Embedder], VectorIndex]:
    """Wrap a train-index builder so the index is stored, keyed by retriever and train texts."""

    def cached(train_texts: Sequence[str], retriever: Embedder) -> VectorIndex:
        key = content_key(VECTORS, retriever.key, fingerprint_of(train_texts))
        arrays = cache.get_arrays(VECTORS, key)
        if arrays is not None and arrays["vectors"].shape[0] == len(train_texts):
            return VectorIndex(arrays["vectors"], storage=arrays["vectors"].dtype.type)
        index = build(train_texts, retriever)
        cache.put_arrays(VECTORS, key, vectors=index.vectors)
        return index

    return cached


def cached_train_side(train_norm: Sequence[str], train_text: Sequence[str], fingerprint: str,
                      cache: Cache, progress: Progress) -> TrainSide:
    """A TrainSide whose lexical index is loaded from the cache, or built and stored."""
    side = TrainSide(train_norm, train_text)
    arrays = cache.get_arrays(INDEXES, fingerprint)
    if arrays is not None and int(arrays["size"][0]) == len(train_norm):
        return TrainSide(train_norm, train_text, LexicalIndex.from_arrays(arrays))
    if cache.enabled:
        with progress.stage("build lexical index", total=len(train_norm)) as stage:
            index = side.lexical
            stage.advance(len(train_norm))
        cache.put_arrays(INDEXES, fingerprint, **index.to_arrays())
    return side


def overlap_hits(evals: Sequence[Row], eval_norm: Sequence[str], train: Sequence[Row],
                 train_norm: Sequence[str], cfg: OverlapConfig, cache: Cache, *,
                 base_train: Sequence[Row] | None = None,
                 paraphrases: ParaphraseFactory | None = None,
                 progress: Progress | None = None) -> tuple[dict[int, Hit], SearchStats]:
    """The strongest overlap of each eval row, searching only what the cache does not know."""
    progress = progress or Progress(enabled=False)
    stats = SearchStats()
    cfg_key = _config_key(cfg)
    train_text = Texts(row.text for row in train)
    fingerprint = train_text.fingerprint
    keys = [text_digest(r.text) for r in evals]
    known: dict[str, list | None] = {}

    entry = cache.get_json(RESULTS, content_key(cfg_key, fingerprint))
    if entry is not None:
        known = {k: v for k, v in entry.items()
                 if v is None or (isinstance(v, list) and 0 <= v[1] < len(train))}
    elif base_train is not None and (base := cache.get_json(
            RESULTS, content_key(cfg_key, train_fingerprint(base_train)))) is not None:
        known = _rebase(base, base_train, train, evals, eval_norm, keys, cfg, paraphrases,
                        stats, progress)

    hits: dict[int, Hit] = {}
    todo = []
    for i, key in enumerate(keys):
        if key in known:
            stats.reused += 1
            if known[key] is not None:
                rule, j, score = known[key]
                hits[i] = Hit(rule, j, score)
        else:
            todo.append(i)
    if todo:
        side = cached_train_side(train_norm, train_text, fingerprint, cache,
                                 progress)
        found = find_overlaps([eval_norm[i] for i in todo], [evals[i].text for i in todo],
                              side, cfg, paraphrases=paraphrases, progress=progress)
        stats.searched = len(todo)
        for local, i in enumerate(todo):
            hit = found.get(local)
            if hit is not None:
                hits[i] = hit
            known[keys[i]] = [hit.rule, hit.train, hit.score] if hit else None
    if todo or entry is None:
        cache.put_json(RESULTS, content_key(cfg_key, fingerprint), known)
    return hits, stats


def _rebase(base: dict, base_train: Sequence[Row], train: Sequence[Row], evals: Sequence[Row],
            eval_norm: Sequence[str], keys: list[str], cfg: OverlapConfig,
            paraphrases: ParaphraseFactory | None, stats: SearchStats,
            progress: Progress) -> dict[str, list | None]:
    """Results at the base train set, carried over to the current one.

    Kept: results whose matched train row still exists (re-indexed). Every eval row with a
    kept or empty result is then searched against the train rows that are new since the base.
    """
    from .normalize import normalize

    position: dict[str, int] = {}
    for j, row in enumerate(train):
        position.setdefault(row.text, j)
    before = {row.text for row in base_train}
    new_train = [j for j, row in enumerate(train) if row.text not in before]

    known: dict[str, list | None] = {}
    for key, value in base.items():
        if value is None:
            known[key] = None
        elif isinstance(value, list) and 0 <= value[1] < len(base_train):
            j = position.get(base_train[value[1]].text)
            if j is not None:          # the matched train row is still there
                known[key] = [value[0], j, value[2]]
    if not new_train:
        return known
    carried = [i for i, key in enumerate(keys) if key in known]
    side = TrainSide([normalize(train[j].text) for j in new_train],
                     [train[j].text for j in new_train])
    with progress.stage("search against new train rows", total=len(carried)) as stage:
        found = find_overlaps([eval_norm[i] for i in carried], [evals[i].text for i in carried],
                              side, cfg, paraphrases=paraphrases, progress=progress)
        stage.advance(len(carried))
    stats.against_new_train = len(carried)
    for local, i in enumerate(carried):
        hit = found.get(local)
        if hit is None:
            continue
        hit = Hit(hit.rule, new_train[hit.train], hit.score)
        current = known[keys[i]]
        if hit.beats(Hit(*current) if current else None):
            known[keys[i]] = [hit.rule, hit.train, hit.score]
    return known
