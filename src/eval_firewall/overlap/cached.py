"""The cached overlap hit finder: reuse earlier results for rows that did not change.

Overlap results are pairwise and deterministic, so an eval row's strongest match against a
train set can be kept for as long as neither the row nor the train set changes. Results are
cached per (overlap config, train set): re-running on an unchanged train set searches only the
eval rows it has not seen. When the train set changed since the base revision (``--base``, see
:mod:`.changes`), the base's results are reused for unchanged eval rows, every eval row is
searched against the new train rows only, and rows whose match was deleted are searched again.
The train side's lexical and retrieval indexes are cached too, keyed by the train texts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from ..cache import Cache, content_key
from ..config import OverlapConfig
from ..embeddings import Embedder
from ..findings import Evidence, Stat
from ..progress import Progress
from ..search.lexical import LexicalIndex
from ..search.vectors import VectorIndex
from ..search.windows import window_length
from .corpus import Corpus, text_digest, texts_fingerprint
from .finders import (
    STRENGTH,
    Found,
    Hit,
    ParaphraseFactory,
    TrainSide,
    find_overlaps,
    within_eval,
    within_threshold,
)
from .score import COLUMNS

RESULTS = "overlap-results"
WITHIN = "eval-duplicates"
INDEXES = "lexical-index"
VECTORS = "vector-index"

# A cached result: [rule, train index, score], or None for "no overlap".
Known = dict[str, list[Any] | None]
Within = dict[int, tuple[int, float]]


def _config_key(cfg: OverlapConfig) -> str:
    """Every overlap setting that can change a result (the same-generator check cannot), and
    the paraphrase scoring model's coefficients: a recalibrated model invalidates results."""
    from .semantic import scoring_key

    return content_key(cfg.model_dump(mode="json", exclude={"distribution"}),
                       scoring_key(cfg.semantic))


def cached_vector_index(cache: Cache, build: Callable[[Sequence[str], Embedder], VectorIndex],
                        fingerprint: str | None = None
                        ) -> Callable[[Sequence[str], Embedder], VectorIndex]:
    """Wrap a train-index builder so the index is stored, keyed by retriever and train texts
    (``fingerprint``: the texts' :func:`~.corpus.texts_fingerprint`, when already known)."""

    def cached(train_texts: Sequence[str], retriever: Embedder) -> VectorIndex:
        key = content_key(VECTORS, retriever.key, fingerprint or texts_fingerprint(train_texts))
        arrays = cache.get_arrays(VECTORS, key)
        if arrays is not None and arrays["vectors"].shape[0] == len(train_texts):
            return VectorIndex(arrays["vectors"], storage=arrays["vectors"].dtype.type)
        index = build(train_texts, retriever)
        cache.put_arrays(VECTORS, key, vectors=index.vectors)
        return index

    return cached


def cached_train_side(train: Corpus, cache: Cache, progress: Progress) -> TrainSide:
    """The train corpus' index, its lexical part loaded from the cache, or built and stored
    (a corpus read from the train index answers from its chunks)."""
    if isinstance(indexed := getattr(train, "side", None), TrainSide):
        return indexed
    arrays = cache.get_arrays(INDEXES, train.fingerprint)
    if arrays is not None and int(arrays["size"][0]) == len(train):
        return TrainSide(train.norm, train.texts, LexicalIndex.from_arrays(arrays))
    side = TrainSide(train.norm, train.texts)
    if cache.enabled:
        with progress.stage("build lexical index", total=len(train)) as stage:
            index = side.lexical
            stage.advance(len(train))
        cache.put_arrays(INDEXES, train.fingerprint, **index.to_arrays())
    return side


class CachedFinder:
    """A :class:`~.finders.HitFinder` that searches only what the cache does not know.

    ``base_train`` (the train texts at the base revision) lets a changed train set start from
    the base's results.
    """

    def __init__(self, cache: Cache, *, base_train: Sequence[str] | None = None,
                 paraphrases: ParaphraseFactory | None = None,
                 progress: Progress | None = None, base_fingerprint: str | None = None) -> None:
        """A finder storing its results in ``cache``; ``base_fingerprint``: the base train
        corpus' fingerprint when known otherwise than from its texts (the train index's)."""
        self.cache = cache
        self.base_train = base_train
        self.base_fingerprint = base_fingerprint
        self.paraphrases = paraphrases
        self.progress = progress or Progress(enabled=False)

    def find(self, evals: Corpus, train: Corpus, cfg: OverlapConfig) -> Found:
        """The strongest overlap of each eval row, searching only rows with no cached result."""
        cache = self.cache
        cfg_key = _config_key(cfg)
        keys = [text_digest(text) for text in evals.texts]
        known: Known = {}
        reused = searched = 0

        entry = cache.get_json(RESULTS, content_key(cfg_key, train.fingerprint))
        if isinstance(entry, dict):
            known = {k: v for k, v in entry.items() if _valid(v, len(train))}
        elif self.base_train is not None and isinstance(base := cache.get_json(
                RESULTS, content_key(cfg_key, self.base_fingerprint
                                     or texts_fingerprint(self.base_train))), dict):
            known = self._rebase(base, self.base_train, evals, train, keys, cfg)

        hits: dict[int, Hit] = {}
        todo = []
        for i, key in enumerate(keys):
            if key in known:
                reused += 1
                value = known[key]
                if value is not None:
                    hits[i] = _hit(value)
            else:
                todo.append(i)
        if todo:
            side = cached_train_side(train, cache, self.progress)
            found = find_overlaps(evals.subset(todo), train, cfg, side=side,
                                  paraphrases=self.paraphrases, progress=self.progress,
                                  window=window_length(evals.norm))
            searched = len(todo)
            for local, i in enumerate(todo):
                hit = found.get(local)
                if hit is not None:
                    hits[i] = hit
                known[keys[i]] = _entry(hit) if hit else None
        if todo or not isinstance(entry, dict):
            cache.put_json(RESULTS, content_key(cfg_key, train.fingerprint), known)
        stats: tuple[Stat, ...] = ()
        if cache.enabled:
            stats = (Stat("eval rows searched in this run", searched),
                     Stat("eval rows with a cached result", reused))
        with self.progress.stage("duplicates inside the eval set", total=len(evals)) as stage:
            within = self._within(evals, cfg, cfg_key)
            stage.advance(len(evals))
        return Found(hits, within, stats)

    def _within(self, evals: Corpus, cfg: OverlapConfig, cfg_key: str) -> Within:
        """Eval rows repeating an earlier one, cached per eval set.

        A changed eval set is searched whole: searching only its changed rows (and comparing
        the others with them) measured slower at 10,000 rows, and could differ from a full
        search where candidate lists differ.
        """
        threshold = within_threshold(cfg)
        if threshold is None or len(evals) < 2 or not self.cache.enabled:
            return within_eval(evals.norm, cfg)      # identical rows only: a dictionary pass
        key = content_key(WITHIN, cfg_key, evals.fingerprint)
        found = _within_entry(self.cache.get_json(WITHIN, key), len(evals))
        if found is None:
            found = within_eval(evals.norm, cfg)
            self.cache.put_json(WITHIN, key, [[i, j, score] for i, (j, score) in found.items()])
        return found

    def _rebase(self, base: dict[str, Any], base_train: Sequence[str], evals: Corpus,
                train: Corpus, keys: list[str], cfg: OverlapConfig) -> Known:
        """Results at the base train set, carried over to the current one.

        Kept: results whose matched train row still exists (re-indexed). Every eval row with a
        kept or empty result is then searched against the train rows that are new since the
        base.
        """
        position: dict[str, int] = {}
        for j, text in enumerate(train.texts):
            position.setdefault(text, j)
        before = set(base_train)
        new_train = [j for j, text in enumerate(train.texts) if text not in before]

        known: Known = {}
        for key, value in base.items():
            if value is None:
                known[key] = None
            elif _valid(value, len(base_train)):
                moved = position.get(base_train[value[1]])
                if moved is not None:      # the matched train row is still there
                    known[key] = _entry(_hit(value, moved))
        if not new_train:
            return known
        carried = [i for i, key in enumerate(keys) if key in known]
        with self.progress.stage("search against new train rows", total=len(carried)) as stage:
            found = find_overlaps(evals.subset(carried), train.subset(new_train), cfg,
                                  paraphrases=self.paraphrases, progress=self.progress,
                                  window=window_length(evals.norm))
            stage.advance(len(carried))
        for local, i in enumerate(carried):
            hit = found.get(local)
            if hit is None:
                continue
            hit = dataclasses.replace(hit, train=new_train[hit.train])
            current = known[keys[i]]
            if hit.beats(_hit(current) if current else None):
                known[keys[i]] = _entry(hit)
        return known


def _entry(hit: Hit) -> list[Any]:
    """A hit as the cache stores it: [rule, train index, score, evidence or None, start, end,
    coverage]."""
    evidence = dataclasses.asdict(hit.evidence) if hit.evidence is not None else None
    return [hit.rule, hit.train, hit.score, evidence, hit.start, hit.end, hit.coverage]


def _hit(value: list[Any], train: int | None = None) -> Hit:
    """The hit :func:`_entry` stored (at train row ``train`` if it moved); ``value`` passed
    :func:`_valid`."""
    return Hit(value[0], value[1] if train is None else train, value[2], value[4], value[5],
               value[6], evidence=_evidence(value))


_EVIDENCE_FLOATS = ("similarity", "threshold", "probability", "min_probability")


def _evidence(value: list[Any]) -> Evidence | None:
    """The evidence of a cached hit, if it has a well-formed one (a cache is hostile input:
    anything else is dropped, and the finding reports its score alone)."""
    data = value[3] if len(value) > 3 else None
    if not isinstance(data, dict) or set(data) - {"stage", "features", "not_flagged",
                                                   *_EVIDENCE_FLOATS}:
        return None
    if data.get("stage") not in ("exact", "near-duplicate", "contained", "paraphrase"):
        return None
    for name in _EVIDENCE_FLOATS:
        if not (data.get(name) is None or (isinstance(data[name], (int, float))
                                           and not isinstance(data[name], bool)
                                           and math.isfinite(data[name]))):
            return None
    features = data.get("features")
    if features is not None and not (
            isinstance(features, dict) and len(features) <= 32
            and all(k in COLUMNS and isinstance(v, (int, float)) and not isinstance(v, bool)
                    and math.isfinite(v) for k, v in features.items())):
        return None
    if data.get("similarity") is None or data.get("not_flagged") is not None:
        return None
    return Evidence(**data)


def _valid(value: object, train_rows: int) -> bool:
    """Whether a cached result is well formed: None, or [rule, train index in range, score,
    evidence (checked when read, :func:`_evidence`), start word, end word, coverage], the last
    three None for a hit without a span."""
    if value is None:
        return True
    if not (isinstance(value, list) and len(value) == 7 and value[0] in STRENGTH
            and isinstance(value[1], int) and 0 <= value[1] < train_rows
            and isinstance(value[2], (int, float))):
        return False
    start, end, coverage = value[4:]
    if start is None:
        return end is None and coverage is None
    return (isinstance(start, int) and isinstance(end, int) and 0 <= start < end
            and (coverage is None or isinstance(coverage, (int, float))))


def _within_entry(value: object, rows: int) -> Within | None:
    """A cached eval-duplicate result, if well formed: [[row, earlier row, score], ...]."""
    if not isinstance(value, list):
        return None
    found: Within = {}
    for item in value:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], int)
                and isinstance(item[1], int) and 0 <= item[1] < item[0] < rows
                and isinstance(item[2], (int, float)) and 0.0 <= item[2] <= 1.0):
            return None
        found[item[0]] = (item[1], float(item[2]))
    return found
