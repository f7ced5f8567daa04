"""The overlap audit's input: the eval and train corpora and the hit search, set up with the
run's cache, train index and models."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..cache import Cache
from ..config import Config
from ..datasets import LoadedDataset
from ..embeddings import Embedder, Models
from ..incremental.changes import Changes
from ..index.corpus import train_corpus
from ..index.train import IndexedCorpus, base_index_fingerprint
from ..overlap.cached import CachedFinder, cached_vector_index
from ..overlap.corpus import Corpus
from ..overlap.finders import Overlaps, ParaphraseFactory, ParaphraseQuery, search_overlaps
from ..progress import Progress
from ..rows import texts_of
from ..search.paraphrase import ParaphraseSearch, build_train_index
from ..search.shards import Executor
from ..search.vectors import VectorIndex
from ..text.normalize import model_text


def _overlap(config: Config, loaded: dict[str, LoadedDataset], changes: Changes | None,
             cache: Cache, progress: Progress, models: Models,
             executor: Executor | None = None) -> Overlaps:
    """The overlap search, searching only rows the cache has no result for."""
    cfg = config.audits.overlap
    eval_sets = [d for d in loaded.values() if d.role == "eval"]
    train_sets = [d for d in loaded.values() if d.role == "train"]
    with progress.stage("normalize", total=sum(len(d.rows) for d in eval_sets + train_sets)
                        ) as stage:
        evals = Corpus.of_datasets(eval_sets)
        train = train_corpus(train_sets, progress.warn, executor) or \
            Corpus.of_datasets(train_sets)
        stage.advance(len(evals) + len(train))
    base_train = base_fingerprint = None
    if changes is not None and any(changes.changed_files.get(d.name) for d in train_sets):
        base_train = [model_text(t) for d in changes.base_datasets.values() if d.role == "train"
                      for t in texts_of(d.rows)]      # as Corpus.texts has them
        if isinstance(train, IndexedCorpus):
            base_fingerprint = base_index_fingerprint(changes, [d.config for d in train_sets])
    paraphrases = _paraphrases(config, cache, progress, models) if cfg.semantic.enabled else None
    finder = CachedFinder(cache, base_train=base_train, paraphrases=paraphrases,
                          progress=progress, base_fingerprint=base_fingerprint)
    fields = {ds.name: ds.text for ds in config.datasets if ds.role == "train"}
    return search_overlaps(evals, train, cfg, finder, text_fields=fields)


def _paraphrases(config: Config, cache: Cache, progress: Progress, models: Models
                 ) -> ParaphraseFactory:
    """The paraphrase search against a train corpus (its retrieval index cached by content):
    the one place the overlap pipeline calls :mod:`.search.paraphrase`."""
    cfg = config.audits.overlap.semantic

    def against(train: Corpus) -> ParaphraseQuery:
        # Called when eval rows need searching: every path ends in the full model (rescoring,
        # or exact search), whose import and load then overlap the searches before it.
        models.load_in_background()
        builder: Callable[[Sequence[str], Embedder], VectorIndex] = build_train_index
        if isinstance(train, IndexedCorpus):          # the static vectors live in the index
            builder = lambda _texts, retriever: train.search_index(retriever)  # noqa: E731
        elif cache.enabled:
            builder = cached_vector_index(cache, builder, train.fingerprint)
        search = ParaphraseSearch(cfg, embedder=models.embedder(), retriever=models.retriever,
                                  index_builder=builder, progress=progress)
        return search.for_train(train.texts)
    return against
