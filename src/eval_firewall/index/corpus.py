"""The train corpus read from the index: :func:`train_corpus` opens it over the chunks of every
train dataset, and its long rows' paraphrase units come from the chunks' arrays
(:mod:`.units`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..search import shards
from .columns import IndexedRows, StringColumn
from .train import IndexedCorpus
from .units import indexed_windows


class TrainCorpus(IndexedCorpus):
    """An :class:`~.train.IndexedCorpus` of train rows, which answers ``windows_of`` itself."""

    def windows(self, window: int, min_ratio: float, max_windows: int) -> Any:
        """The paraphrase units (:func:`.units.indexed_windows`), from the chunks' arrays."""
        return indexed_windows(self, window, min_ratio, max_windows)


def train_corpus(datasets: Sequence[Any], warn: Any = None,
                 runner: shards.Executor | None = None) -> TrainCorpus | None:
    """The train corpus of ``datasets`` when every one was read from the index, else None;
    ``runner`` searches its shards (default: in this process)."""
    if not datasets or not all(isinstance(d.rows, IndexedRows) for d in datasets):
        return None
    chunks = [c for d in datasets for c in d.rows.chunks]
    names = [n for d in datasets for n in d.rows.names]
    displays = [p for d in datasets for p in d.rows.displays]
    rows = IndexedRows(chunks, names, datasets[0].role, displays)
    corpus = TrainCorpus(rows, StringColumn(chunks, "norm"))
    object.__setattr__(corpus, "warn", warn)
    object.__setattr__(corpus, "runner", runner)
    return corpus
