"""The input layer: what the audits read (annotation sheets, predictions, an embedder, the
overlap search), prepared before they run, at the head and (for ``--base``) at the base.

Each input is prepared once, when the first audit asking for it (its registry entry's
``inputs``) runs, so a disabled audit costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..audits import Audit
from ..cache import Cache, CachedEmbedder
from ..config import Config
from ..datasets import LoadedDataset
from ..embeddings import Embedder, Models
from ..errors import UserError
from ..incremental.changes import Changes
from ..inputs import Input, Inputs, Predicted
from ..inputs.annotations import load_annotations
from ..inputs.perturb import perturb_rows
from ..inputs.predictions import load_predictions
from ..overlap import semantic
from ..progress import Progress
from ..records import Annotation, Variant
from ..rows import Row
from ..search.shards import Executor
from .overlap_search import _overlap


class Prepared:
    """The head's inputs, each made by its source on first demand and kept for later audits."""

    def __init__(self, datasets: list[LoadedDataset], sources: Mapping[Input, Callable[[], Any]]
                 ) -> None:
        """``sources``: input name -> how to make it."""
        self.datasets = datasets
        self.sources = sources
        self.values: dict[Input, Any] = {}

    def for_audit(self, audit: Audit) -> Inputs:
        """The inputs ``audit`` asks for (and those prepared before it), made if not yet."""
        for name in sorted(audit.inputs - {"datasets"} - self.values.keys()):
            self.values[name] = self.sources[name]()
        return _inputs(self.datasets, self.values)


def head_inputs(config: Config, loaded: dict[str, LoadedDataset], changes: Changes | None,
                cache: Cache, progress: Progress, models: Models, allow_commands: bool,
                executor: Executor | None = None) -> Prepared:
    """The inputs of this run, prepared as the audits ask for them (``executor``: how the
    train index's shards are searched)."""
    return Prepared(list(loaded.values()), {
        "annotations": lambda: _annotations(config, loaded),
        "predictions": lambda: _predicted(config, loaded, allow_commands),
        "embedder": lambda: _distribution_embedder(config, models),
        "overlap": lambda: _overlap(config, loaded, changes, cache, progress, models, executor),
    })


def models_of(config: Config, cache: Cache, progress: Progress) -> Models:
    """The run's models (loaded on first use), the full one's vectors cached."""
    semantic_cfg = config.audits.overlap.semantic
    return Models(semantic_cfg.model, semantic_cfg.batch_size, config_path=config.source,
                  wrap=_caching(cache) if cache.enabled else None, announce=progress.stage)


def _caching(cache: Cache) -> Callable[[Embedder, bool], Embedder]:
    """Wrap the full model in the cache (each text encoded once, ever). The static model is not
    wrapped: it encodes about as fast as cached vectors are hashed, looked up and verified, so
    caching it cost a cold audit time and memory and saved nothing (the train side's whole
    static index is cached anyway, see :mod:`eval_firewall.overlap.cached`; the docs' Benchmarks page)."""
    def wrap(embedder: Embedder, cheap: bool) -> Embedder:
        return embedder if cheap else CachedEmbedder(embedder, cache)
    return wrap


def _inputs(datasets: list[LoadedDataset], prepared: Mapping[Input, Any]) -> Inputs:
    return Inputs(datasets, annotations=prepared.get("annotations"),
                  predicted=prepared.get("predictions"), embedder=prepared.get("embedder"),
                  overlap=prepared.get("overlap"))


def _distribution_embedder(config: Config, models: Models) -> Callable[[int], Embedder]:
    """The same-generator check's embedder, chosen by how many rows it compares the way the
    paraphrase search chooses (the full model for a small set, else the static one); the same
    choice at the head and at the base, so their AUCs are comparable."""
    cfg = config.audits.overlap.semantic
    return lambda rows: models.embedder() if semantic.use_exact(cfg, rows) else models.retriever()


def _eval_dataset(config: Config, loaded: Mapping[str, LoadedDataset], which: str
                  ) -> LoadedDataset:
    """The dataset an audit names, else the only eval dataset."""
    name = getattr(config.audits, which).dataset
    if name and loaded[name].role != "eval":
        raise UserError(f"'{name}' is a {loaded[name].role} dataset, not an eval dataset",
                        path=config.source, field=f"audits.{which}.dataset")
    if name:
        return loaded[name]
    evals = [d for d in loaded.values() if d.role == "eval"]
    if len(evals) != 1:
        raise UserError("several eval datasets: name the one to audit", path=config.source,
                        field=f"audits.{which}.dataset")
    return evals[0]


def _annotations(config: Config, loaded: Mapping[str, LoadedDataset]) -> list[Annotation] | None:
    """The configured annotation sheets' lines; None when none are configured."""
    if not config.audits.disagreement.annotations:
        return None
    names = [d.name for d in loaded.values() if d.role == "eval"]
    return load_annotations(config, names)


def _variants(config: Config, rows: Sequence[Row]) -> list[Variant]:
    """The prompts of ``rows`` as the config builds them (seed, kinds, preambles): the one
    place both sides of an incremental run make them, so base and head agree."""
    cfg = config.audits.invariance
    return perturb_rows(rows, seed=cfg.seed, kinds=cfg.kinds, preambles=cfg.preambles)


def _predicted(config: Config, loaded: Mapping[str, LoadedDataset], allow_commands: bool
               ) -> Predicted | str | None:
    """The prompts, the predictions for them and their source; None when none are configured,
    or why there are none (e.g. the prediction command was not allowed)."""
    cfg = config.audits.invariance
    if not (cfg.predictions or cfg.command):
        return None
    variants = _variants(config, _eval_dataset(config, loaded, "invariance").rows)
    predictions, source = load_predictions(config, variants, allow_commands=allow_commands)
    if predictions is None:
        return source
    return Predicted(variants, predictions, source)
