"""Orchestration: read the datasets, run each enabled audit, decide pass or fail.

The audits themselves are pure functions in :mod:`eval_firewall.audits`; this module is the
only place that reads files for them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from . import __version__, waivers
from .annotations import load_annotations
from .audits import disagreement, distribution, invariance, overlap, provenance, schema
from .audits import semantic
from .cache import Cache, CachedEmbedder
from .changes import Changes, auc_margin, inputs_at, load_base, mark_new, scratch_dir
from .incremental import cached_vector_index, overlap_hits
from .normalize import normalize
from .config import Config
from .datasets import LoadedDataset, load_dataset
from .datasets.check import check_fields
from .embeddings import Models
from .errors import UserError
from .findings import AuditResult, DatasetSummary, Finding, Report, Stat, status_of
from .perturb import Variant, perturb_rows
from .predictions import Prediction, load_predictions, read_predictions
from .progress import Progress
from .search.paraphrase import ParaphraseSearch, build_train_index


def load_all(config: Config, progress: Progress, cache: Cache | None = None
             ) -> dict[str, LoadedDataset]:
    loaded = {}
    for ds in config.datasets:
        with progress.stage(f"read {ds.name}") as stage:
            loaded[ds.name] = load_dataset(config, ds, on_row=stage.advance, cache=cache)
            check_fields(config, loaded[ds.name])
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
                    wrap=_caching(cache) if cache.enabled else None, announce=progress.stage)
    if audits.overlap.enabled:
        results.append(_overlap(config, loaded, changes, cache, progress, models))
    if audits.overlap.enabled and audits.overlap.distribution.enabled:
        with progress.stage("same-generator check"):
            results.append(distribution.audit(evals, train, audits.overlap.distribution,
                                              embedder=_distribution_embedder(config, models)))
    if audits.provenance.enabled:
        results.append(provenance.audit(list(loaded.values()), audits.provenance))
    if audits.disagreement.enabled:
        results.append(_disagreement(config, loaded))
    predictions = None
    if audits.invariance.enabled:
        result, predictions = _invariance(config, loaded, allow_commands)
        results.append(result)

    results = [apply_severity(config, r) for r in results]
    if changes is not None:
        with progress.stage(f"compare with {base}"):
            _mark_new(config, results, changes, loaded, models, predictions)
    results.extend(_waive(config, results, changes))
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


def _distribution_embedder(config: Config, models: Models):
    """The same-generator check's embedder, chosen by how many rows it compares the way the
    paraphrase search chooses (the full model for a small set, else the static one); the same
    choice at the head and at the base, so their AUCs are comparable."""
    cfg = config.audits.overlap.semantic
    return lambda rows: models.embedder() if semantic.use_exact(cfg, rows) else models.retriever()


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
        builder = build_train_index
        if cache.enabled:
            builder = cached_vector_index(cache, builder)
        paraphrases = ParaphraseSearch(cfg.semantic, embedder=models.embedder(),
                                       retriever=models.retriever, index_builder=builder,
                                       progress=progress)
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


Predicted = tuple[list[Variant], dict[str, Prediction], str]   # prompts, predictions, source


def _invariance(config: Config, loaded: dict[str, LoadedDataset], allow_commands: bool
                ) -> tuple[AuditResult, Predicted | None]:
    """The invariance result, and the prompts and predictions it used (with their source)."""
    cfg = config.audits.invariance
    if not (cfg.predictions or cfg.command):
        return AuditResult(invariance.AUDIT, "Invariance", skipped="no predictions file or "
                           "command configured (audits.invariance)"), None
    variants = perturb_rows(_eval_dataset(config, loaded, "invariance").rows, seed=cfg.seed,
                            kinds=cfg.kinds, preambles=cfg.preambles)
    predictions, source = load_predictions(config, variants, allow_commands=allow_commands)
    if predictions is None:
        return AuditResult(invariance.AUDIT, "Invariance", skipped=source), None
    return (invariance.audit(variants, predictions, cfg, source=source),
            (variants, predictions, source))


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


def _mark_new(config: Config, results: list[AuditResult], changes: Changes,
              loaded: dict[str, LoadedDataset], models: Models,
              predicted: Predicted | None) -> None:
    """Set each finding's ``new`` flag by comparing with the base revision.

    The cheap audits are re-run on the base (its datasets, annotation sheets and predictions
    file); the same-generator check only when it fails now and some dataset changed. Overlap
    is never re-run: its findings are judged by their rows' content (see :func:`mark_new`).
    """
    base = list(changes.base_datasets.values())
    ran = {r.audit for r in results if r.skipped is None}
    base_results: dict[str, AuditResult | None] = {
        schema.AUDIT: schema.audit(base, config.invalid_rows)}
    if provenance.AUDIT in ran:
        base_results[provenance.AUDIT] = provenance.audit(base, config.audits.provenance)
    with scratch_dir() as scratch:
        if disagreement.AUDIT in ran:
            base_results[disagreement.AUDIT] = _base_disagreement(config, changes, Path(scratch))
        missing_at_base: set[tuple[str, str]] = set()
        if invariance.AUDIT in ran and predicted is not None:
            base_results[invariance.AUDIT], missing_at_base = _base_invariance(
                config, changes, Path(scratch), predicted)
    margin = 0.0
    head_dist = next((r for r in results if r.audit == distribution.AUDIT), None)
    if head_dist is not None and head_dist.findings:
        rows = next((s.value for s in head_dist.stats if s.label.startswith("rows compared")), 0)
        margin = auc_margin(int(rows))
        if any(changes.changed_files.values()):
            evals = [r for d in base if d.role == "eval" for r in d.rows]
            train = [r for d in base if d.role == "train" for r in d.rows]
            base_results[distribution.AUDIT] = distribution.audit(
                evals, train, config.audits.overlap.distribution,
                embedder=_distribution_embedder(config, models))   # as at the head: comparable
        else:                    # nothing changed: the base figure is this one
            base_results[distribution.AUDIT] = AuditResult(
                distribution.AUDIT, "", list(head_dist.findings))
    found = {audit: (apply_severity(config, r).findings if r is not None else None)
             for audit, r in base_results.items()}
    for result in results:
        result.findings = mark_new(result.findings, changes, loaded, found, margin)
        if result.audit == invariance.AUDIT and predicted is not None and \
                found.get(invariance.AUDIT) is not None:
            result.findings = _split_missing(result.findings, predicted, missing_at_base)


def _base_disagreement(config: Config, changes: Changes, scratch: Path) -> AuditResult | None:
    """The disagreement audit on the base rows and sheets; None if it could not run there."""
    cfg = config.audits.disagreement
    names = [d.name for d in changes.base_datasets.values() if d.role == "eval"]
    rows = [r for name in names for r in changes.base_datasets[name].rows]
    try:
        sheets = load_annotations(inputs_at(config, changes.base_sha, list(cfg.annotations),
                                            scratch / "annotations"), names)
    except UserError:            # no sheets (or unreadable ones) at the base
        return None
    return disagreement.audit(rows, sheets, cfg)


def _missing(predicted: Predicted) -> list[Variant]:
    variants, predictions, _ = predicted
    return [v for v in variants if v.id not in predictions]


def _base_invariance(config: Config, changes: Changes, scratch: Path, predicted: Predicted
                     ) -> tuple[AuditResult | None, set[tuple[str, str]]]:
    """The invariance audit on the base rows, with the base's predictions file (or, when
    this run used the prediction command, this run's predictions), and the prompts (id, sha)
    that had no prediction there; None if it could not run at the base."""
    cfg = config.audits.invariance
    try:
        rows = _eval_dataset(config, changes.base_datasets, "invariance").rows
    except UserError:
        return None, set()
    variants = perturb_rows(rows, seed=cfg.seed, kinds=cfg.kinds)
    _, found, source = predicted
    if cfg.predictions and source == cfg.predictions:
        at_base = inputs_at(config, changes.base_sha, [cfg.predictions], scratch / "predictions")
        try:
            found = read_predictions(at_base.root / cfg.predictions, cfg.predictions)
        except UserError:        # no (or an unreadable) predictions file at the base
            return None, set()
    missing = {(v.id, v.sha) for v in _missing((variants, found, source))}
    return invariance.audit(variants, found, cfg, source=source), missing


def _split_missing(findings: list[Finding], predicted: Predicted,
                   missing_at_base: set[tuple[str, str]]) -> list[Finding]:
    """Split ``missing-prediction`` in two: prompts already without a prediction at the base
    (existing), and the others (rows this change added or edited, or predictions it removed),
    so the new finding points at this change's own row."""
    old = [f for f in findings if f.rule == "missing-prediction"]
    if not old:
        return findings
    variants, _, source = predicted
    missing = _missing(predicted)
    before = [v for v in missing if (v.id, v.sha) in missing_at_base]
    now = [v for v in missing if (v.id, v.sha) not in missing_at_base]
    split = []
    for group, which, new in ((before, " (missing at the base too)", False),
                              (now, " for rows this change added or edited", True)):
        if group:
            f = invariance.missing_prediction(group, len(variants), source, which)
            split.append(replace(f, severity=old[0].severity, new=new))
    return [f for f in findings if f.rule != "missing-prediction"] + split


def waiver_file(config: Config) -> tuple[Path, str]:
    """The waiver file next to the config: its path and its name in messages."""
    display = (Path(config.source).parent / waivers.WAIVERS_FILE).as_posix()
    return config.root / display, display


def _read_waiver_file(config: Config, path: Path, display: str) -> str:
    """The waiver file's text: a file the pull request may have committed, so it must be inside
    the repository (not a link out of it, nor into .git/) and no larger than a config."""
    from .config import MAX_CONFIG_BYTES
    from .paths import check_file, repository_root

    check_file(path, repository_root(config.root), source=display, line=None,
               field="waiver file", display=display)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise UserError(f"the waiver file is larger than {MAX_CONFIG_BYTES:,} bytes",
                            path=display)
        return raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8"
        raise UserError(f"cannot read the waiver file: {why}", path=display) from None


def load_waivers(config: Config) -> list[waivers.Listed]:
    """The waiver file's entries, then those of the config's ``waivers:`` key."""
    path, display = waiver_file(config)
    listed = []
    if path.is_file():
        listed = waivers.parse_waivers(_read_waiver_file(config, path, display), source=display)
    listed += [waivers.Listed(e, config.source) for e in config.waivers]
    waivers.check_duplicates(listed)
    return listed


def _waivers_at_base(config: Config, changes: Changes) -> set[str]:
    """The fingerprints waived at the base (waiver file and config key), to tell new waivers."""
    from .config import MAX_CONFIG_BYTES

    names = [n for n in (waiver_file(config)[1], config.source) if not Path(n).is_absolute()]
    found: set[str] = set()
    with scratch_dir() as scratch:
        at_base = inputs_at(config, changes.base_sha, names, Path(scratch))
        for name in names:
            path = at_base.root / name
            if path.is_file():
                with open(path, "rb") as fh:      # the base's file: compared, never enforced
                    raw = fh.read(MAX_CONFIG_BYTES + 1)[:MAX_CONFIG_BYTES]
                found |= waivers.written_fingerprints(raw.decode("utf-8", "replace"))
    return found


def _waive(config: Config, results: list[AuditResult], changes: Changes | None
           ) -> list[AuditResult]:
    """Mark waived findings; report stale waivers. Nothing without waivers."""
    listed = load_waivers(config)
    if not listed:
        return []
    findings = [f for r in results for f in r.findings]
    at_base = _waivers_at_base(config, changes) if changes is not None else None
    applied = waivers.apply(findings, listed, today=datetime.now(timezone.utc).date(),
                            at_base=at_base)
    for r in results:
        r.findings = [replace(f, waived=applied.waivers[f.fingerprint])
                      if f.fingerprint in applied.waivers else f for f in r.findings]
    waived = sum(1 for r in results for f in r.findings if f.waived is not None)
    stats = [Stat("waivers", len(listed)), Stat("findings waived", waived),
             Stat("stale waivers", len(applied.stale))]
    if changes is not None:
        stats.append(Stat("waivers added by this change", applied.new))
    result = AuditResult(waivers.AUDIT, "Waivers", applied.stale, stats)
    return [apply_severity(config, result)]


def summarize(d: LoadedDataset, changes: Changes | None = None) -> DatasetSummary:
    summary = DatasetSummary(d.name, d.role, d.files, len(d.rows), len(d.problems))
    if changes is not None:
        summary.changed_files = changes.changed_files.get(d.name, [])
        summary.changed_rows = len(changes.new_rows.get(d.name, ()))
    return summary
