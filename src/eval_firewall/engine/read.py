"""The configured datasets of a run: read (from their files or the train index), and each
one's line of the report."""

from __future__ import annotations

from dataclasses import replace

from ..cache import Cache
from ..config import Config
from ..datasets import LoadedDataset, load_dataset
from ..datasets.check import check_fields
from ..findings import DatasetSummary
from ..incremental.changes import Changes
from ..index import IndexStore, load_train
from ..index.remote import remote_index
from ..progress import Progress


def load_all(config: Config, progress: Progress, cache: Cache | None = None
             ) -> dict[str, LoadedDataset]:
    """Read every configured dataset (and check its fields against the config), by name."""
    loaded = {}
    store = IndexStore(cache, progress, remote_index(config)) \
        if cache is not None and cache.enabled else None
    for ds in config.datasets:
        with progress.stage(f"read {ds.name}") as stage:
            if store is not None and ds.role == "train":      # from the train index
                loaded[ds.name] = load_train(config, ds, store, on_rows=stage.advance)
            else:
                loaded[ds.name] = load_dataset(config, ds, on_row=stage.advance, cache=cache)
            check_fields(config, loaded[ds.name], warn=progress.warn)
    return loaded


def summarize(d: LoadedDataset, changes: Changes | None = None) -> DatasetSummary:
    """A dataset's line of the report (with what changed since the base, if compared)."""
    summary = DatasetSummary(d.name, d.role, d.files, len(d.rows),
                             sum(p.count for p in d.problems))
    if changes is not None:
        summary = replace(summary, changed_files=changes.changed_files.get(d.name, []),
                          changed_rows=len(changes.new_rows.get(d.name, ())))
    return summary
