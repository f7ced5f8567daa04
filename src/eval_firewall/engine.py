"""Orchestration: read the datasets, run each enabled audit, decide pass or fail.

The audits themselves are pure functions in :mod:`eval_firewall.audits`; this module is the
only place that reads files for them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from . import __version__
from .annotations import load_annotations
from .audits import disagreement, distribution, invariance, overlap, provenance, schema
from .audits import semantic
from .cache import Cache, CachedEmbedder
from .changes import Changes, changed_inputs, load_base, mark_new, scratch_dir
from .incremental import cached_vector_index, overlap_hits
from .normalize import normalize
from .config import Config
from .datasets import LoadedDataset, load_dataset
from .embeddings import Models
from .errors import UserError
from .findings import AuditResult, DatasetSummary, Report, Stat, status_of
from .perturb import perturb_rows
from .predictions import load_predictions
from .progress import Progress
from .rows import Row


def load_all(config: Config, progress: Progress, cache: Cache | None = None
             ) -> dict[str, LoadedDataset]:
    loaded = {}
    for ds in config.datasets:
        with progress.stage(f"read {ds.name}") as stage:
            loaded[ds.name] = load_dataset(config, ds, on_row=stage.advance, cache=cache)
    return loaded


# ``run_audits``' default cache directory, in the config's folder (the CLI's is the current
# directory); ``cache_dir=None`` runs without a cache.
DEFAULT_CACHE = ".eval-firewall-cache"
_DEFAULT = object()


def run_audits(config: Config, *, progress: Progress | None = None,
               cache_dir: Path | None | object = _DEFAULT, base: str | None = None,
               allow_commands: bool = False) -> Report:
    """Run every enabled audit on the configured datasets and return the report.

    The cache is ``.eval-firewall-cache`` in the config's folder unless ``cache_dir`` names
    another one; ``cache_dir=None`` neither reads nor writes a cache.

    With ``base`` (a git revision), each finding says whether this change introduced it.
    ``allow_commands`` lets the invariance audit run the configured prediction command: only
    for a trusted configuration, never a pull request's own (see :mod:`.predictions`).
    """
    progress = progress or Progress(enabled=False)
    if cache_dir is _DEFAULT:
        cache_dir = Path(config.root) / DEFAULT_CACHE
    cache = Cache(cache_dir, progress)
    loaded = load_all(config, progress, cache)
    changes = None
    if base is not None:
        with progress.stage(f"read datasets at {base}"), scratch_dir() as scratch:
            changes = load_base(config, loaded, base, Path(scratch))
    train = [r for d in loaded.values() if d.role == "train" for r in d.rows]
    evals = [r for d in loaded.values() if d.role == "eval" for r in d.rows]

    results: list[AuditResult] = [schema.audit(list(loaded.values()), config.invalid_rows)]
    audits = config.audits
    semantic_cfg = audits.overlap.semantic
    models = Models(semantic_cfg.model, semantic_cfg.batch_size, config_path=config.source,
                    wrap=_caching(cache) if cache.enabled else None)
    if audits.overlap.enabled:
        results.append(_overlap(config, loaded, changes, cache, progress, models))
    if audits.overlap.enabled and audits.overlap.distribution.enabled:
        with progress.stage("same-generator check"):
            results.append(distribution.audit(evals, train, audits.overlap.distribution,
                                              embedder=lambda rows: models.embedder()
                                              if semantic.use_exact(semantic_cfg, rows)
                                              else models.retriever()))
    if audits.provenance.enabled:
        results.append(provenance.audit(list(loaded.values()), audits.provenance))
    if audits.disagreement.enabled:
        results.append(_disagreement(config, loaded))
    if audits.invariance.enabled:
        results.append(_invariance(config, loaded, allow_commands))

    results = [apply_severity(config, r) for r in results]
    if changes is not None:
        _mark_new(config, results, changes, loaded)
    findings = [f for r in results for f in r.findings]
    return Report(
        status=status_of(findings, config.fail_on, config.fail_on_existing),
        fail_on=config.fail_on,
        fail_on_existing=config.fail_on_existing,
        audits=results,
        datasets=[summarize(d, changes) for d in loaded.values()],
        base=base,
        version=__version__,
        config_path=config.source,
    )


def _caching(cache: Cache):
    """Wrap the run's embedders in the cache; the static one only for large batches."""
    def wrap(embedder, cheap: bool):
        return CachedEmbedder(embedder, cache, direct_below=4096 if cheap else 0)
    return wrap


def _normalized(datasets: list[LoadedDataset]) -> list[str]:
    out: list[str] = []
    for d in datasets:
        out.extend(d.norm if d.norm is not None else (normalize(r.text) for r in d.rows))
    return out


def _overlap(config: Config, loaded: dict[str, LoadedDataset], changes: Changes | None,
             cache: Cache, progress: Progress, models: Models) -> AuditResult:
    """The overlap audit, searching only rows the cache has no result for."""
    cfg = config.audits.overlap
    eval_sets = [d for d in loaded.values() if d.role == "eval"]
    train_sets = [d for d in loaded.values() if d.role == "train"]
    evals = [r for d in eval_sets for r in d.rows]
    train = [r for d in train_sets for r in d.rows]
    with progress.stage("normalize", total=len(evals) + len(train)) as stage:
        eval_norm = _normalized(eval_sets)
        train_norm = _normalized(train_sets)
        stage.advance(len(evals) + len(train))
    base_train = None
    if changes is not None:
        base_train = [r for d in changes.base_datasets.values() if d.role == "train"
                      for r in d.rows]
    paraphrases = None
    if cfg.semantic.enabled:
        builder = semantic.build_train_index
        if cache.enabled:
            builder = cached_vector_index(cache, builder)
        paraphrases = semantic.paraphrase_search(cfg.semantic, embedder=models.embedder(),
                                                 retriever=models.retriever,
                                                 index_builder=builder, progress=progress)
    hits, searched = overlap_hits(evals, eval_norm, train, train_norm, cfg, cache,
                                  base_train=base_train, paraphrases=paraphrases,
                                  progress=progress)
    result = overlap.audit(evals, train, cfg, eval_norm=eval_norm, hits=hits,
                           paraphrases=paraphrases, progress=progress)
    if cache.enabled:
        result.stats.append(Stat("eval rows searched in this run", searched.searched))
        result.stats.append(Stat("eval rows with a cached result", searched.reused))
    return result


def _eval_dataset(config: Config, loaded: dict[str, LoadedDataset], which: str) -> LoadedDataset:
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


def _disagreement(config: Config, loaded: dict[str, LoadedDataset]) -> AuditResult:
    cfg = config.audits.disagreement
    if not cfg.annotations:
        return AuditResult(disagreement.AUDIT, "Disagreement", skipped="no annotation sheets "
                           "configured (audits.disagreement.annotations)")
    names = [d.name for d in loaded.values() if d.role == "eval"]
    rows = [r for name in names for r in loaded[name].rows]
    return disagreement.audit(rows, load_annotations(config, names), cfg)


def _invariance(config: Config, loaded: dict[str, LoadedDataset],
                allow_commands: bool) -> AuditResult:
    cfg = config.audits.invariance
    if not (cfg.predictions or cfg.command):
        return AuditResult(invariance.AUDIT, "Invariance", skipped="no predictions file or "
                           "command configured (audits.invariance)")
    variants = perturb_rows(_eval_dataset(config, loaded, "invariance").rows, seed=cfg.seed,
                            kinds=cfg.kinds)
    predictions, source = load_predictions(config, variants, allow_commands=allow_commands)
    if predictions is None:
        return AuditResult(invariance.AUDIT, "Invariance", skipped=source)
    return invariance.audit(variants, predictions, cfg, source=source)


def apply_severity(config: Config, result: AuditResult) -> AuditResult:
    """Apply the config's per-rule severity overrides; rules set to 'off' are dropped."""
    if not config.severity:
        return result
    kept = []
    for finding in result.findings:
        level = config.severity_of(finding.rule, finding.severity)
        if level is not None:
            kept.append(finding if level == finding.severity else replace(finding, severity=level))
    result.findings = kept
    return result


# Audits too costly to re-run on the base revision just to tell new findings from old ones.
EXPENSIVE_AUDITS = {"overlap", "distribution", "disagreement", "invariance"}


def _mark_new(config: Config, results: list[AuditResult], changes: Changes,
              loaded: dict[str, LoadedDataset]) -> None:
    """Set each finding's ``new`` flag by comparing with the base revision."""
    base = list(changes.base_datasets.values())
    base_results = [schema.audit(base, config.invalid_rows)]
    if config.audits.provenance.enabled:
        base_results.append(provenance.audit(base, config.audits.provenance))
    base_findings = [f for r in base_results for f in apply_severity(config, r).findings]
    other_inputs = {"disagreement": list(config.audits.disagreement.annotations),
                    "invariance": [p for p in (config.audits.invariance.predictions,) if p]}
    inputs_changed = {audit: changed_inputs(config, changes.base_sha, patterns)
                      for audit, patterns in other_inputs.items()}
    for result in results:
        result.findings = mark_new(result.findings, changes, loaded, base_findings,
                                   EXPENSIVE_AUDITS, inputs_changed)


def summarize(d: LoadedDataset, changes: Changes | None = None) -> DatasetSummary:
    summary = DatasetSummary(d.name, d.role, d.files, len(d.rows), len(d.problems))
    if changes is not None:
        summary.changed_files = changes.changed_files.get(d.name, [])
        summary.changed_rows = len(changes.new_rows.get(d.name, ()))
    return summary
