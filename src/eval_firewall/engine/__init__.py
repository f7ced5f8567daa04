"""Orchestration: read the datasets, run each enabled audit, decide pass or fail.

The audits themselves are pure functions in :mod:`eval_firewall.audits`; this module is the
only place that reads files for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, cast

from ..audits import AUDITS, Audit, overlap, rule_catalogue
from ..audits.overlap import ParaphraseFactory, ParaphraseQuery
from ..cache import Cache, CachedEmbedder
from ..config import Config, check_severity_rules
from ..datasets import LoadedDataset, load_dataset
from ..datasets.check import check_fields
from ..embeddings import Embedder, Models
from ..errors import UserError
from ..findings import AuditResult, DatasetSummary, Report, Stat
from ..incremental.attribution import BaseSide, attribute, waivers_at_base
from ..incremental.changes import Changes, load_base, scratch_dir
from ..index import IndexStore, load_train
from ..index.train import IndexedCorpus, base_index_fingerprint, train_corpus
from ..inputs import Input, Inputs, Predicted
from ..inputs.annotations import load_annotations
from ..inputs.perturb import perturb_rows
from ..inputs.predictions import load_predictions
from ..overlap import semantic
from ..overlap.cached import CachedFinder, cached_vector_index
from ..overlap.corpus import Corpus
from ..policy import waivers
from ..progress import Progress
from ..records import Annotation, Variant
from ..rows import Row, texts_of
from ..rules import Rule
from ..search.paraphrase import ParaphraseSearch, build_train_index
from ..search.vectors import VectorIndex
from ..text.normalize import model_text
from ..version import __version__


def load_all(config: Config, progress: Progress, cache: Cache | None = None
             ) -> dict[str, LoadedDataset]:
    """Read every configured dataset (and check its fields against the config), by name."""
    loaded = {}
    store = IndexStore(cache, progress) if cache is not None and cache.enabled else None
    for ds in config.datasets:
        with progress.stage(f"read {ds.name}") as stage:
            if store is not None and ds.role == "train":      # from the train index
                loaded[ds.name] = load_train(config, ds, store, on_rows=stage.advance)
            else:
                loaded[ds.name] = load_dataset(config, ds, on_row=stage.advance, cache=cache)
            check_fields(config, loaded[ds.name], warn=progress.warn)
    return loaded


# ``run_audits``' default cache directory, in the config's folder (the CLI's is the current
# directory); ``cache_dir=None`` runs without a cache.
DEFAULT_CACHE = ".eval-firewall-cache"
_DEFAULT = object()


def run_audits(config: Config, *, progress: Progress | None = None,
               cache_dir: Path | None | object = _DEFAULT, base: str | None = None,
               allow_commands: bool = False, audits: Sequence[Audit] = AUDITS,
               waivers: list[waivers.Listed] | None = None) -> Report:
    """Run every enabled audit on the configured datasets and return the report.

    The cache is ``.eval-firewall-cache`` in the config's folder unless ``cache_dir`` names
    another one; ``cache_dir=None`` neither reads nor writes a cache.

    With ``base`` (a git revision), each finding says whether this change introduced it.
    ``allow_commands`` lets the invariance audit run the configured prediction command: only
    for a trusted configuration, never a pull request's own (see :mod:`.predictions`).
    ``audits``: the registry to run (default: every audit, :data:`eval_firewall.audits.AUDITS`).
    ``waivers``: the waivers to apply (the gate's policy, :mod:`.policy`) instead of those of
    the config's waiver file and ``waivers:`` key.
    """
    rules = rule_catalogue(audits)
    check_severity_rules(config, rules)
    progress = progress or Progress(enabled=False)
    if cache_dir is _DEFAULT:
        cache_dir = Path(config.root) / DEFAULT_CACHE
    cache = Cache(cast("Path | None", cache_dir), progress)
    loaded = load_all(config, progress, cache)
    changes = None
    if base is not None:
        with progress.stage(f"read datasets at {base}"), scratch_dir() as scratch:
            changes = load_base(config, loaded, base, Path(scratch))

    semantic_cfg = config.audits.overlap.semantic
    models = Models(semantic_cfg.model, semantic_cfg.batch_size, config_path=config.source,
                    wrap=_caching(cache) if cache.enabled else None, announce=progress.stage)
    prepare: dict[Input, Callable[[], Any]] = {
        "annotations": lambda: _annotations(config, loaded),
        "predictions": lambda: _predicted(config, loaded, allow_commands),
        "embedder": lambda: _distribution_embedder(config, models),
        "overlap": lambda: partial(_overlap, config, loaded, changes, cache, progress, models),
    }
    prepared: dict[Input, Any] = {}
    results: list[AuditResult] = []
    enabled = [a for a in audits if enabled_in(config, a, audits)]
    for audit in enabled:
        for name in sorted(audit.inputs - {"datasets"} - prepared.keys()):
            prepared[name] = prepare[name]()
        inputs = _inputs(list(loaded.values()), prepared)
        results.append(_run(config, audit, inputs, rules, progress))

    if changes is not None:
        with progress.stage(f"compare with {base}"):
            results = attribute(results, enabled, rules, BaseSide(
                config, changes, loaded, prepared,
                run=lambda audit, inputs: _run(config, audit, inputs, rules),
                variants=lambda datasets: _variants(
                    config, _eval_dataset(config, datasets, "invariance").rows)))
    results.extend(_waive(config, results, changes, rules, waivers))
    return Report(
        fail_on=config.fail_on,
        fail_on_existing=config.fail_on_existing,
        audits=results,
        datasets=[summarize(d, changes) for d in loaded.values()],
        base=base,
        version=__version__,
        config_path=config.source,
        rules=rules,
        open_figures=frozenset(a.name for a in enabled if a.figures_open),
    )


def section_of(config: Config, audit: Audit) -> Any:
    """The audit's config section (None when it has none)."""
    value: Any = config
    for part in (audit.section or "").split(".") if audit.section else ():
        value = getattr(value, part)
    return value if audit.section else None


def enabled_in(config: Config, audit: Audit, audits: Sequence[Audit] = AUDITS) -> bool:
    """Whether the config turns the audit on (and the audit it requires, if any)."""
    if not getattr(section_of(config, audit), "enabled", True):
        return False
    required = next((a for a in audits if a.name == audit.requires), None)
    return required is None or enabled_in(config, required, audits)


def _inputs(datasets: list[LoadedDataset], prepared: Mapping[Input, Any]) -> Inputs:
    return Inputs(datasets, annotations=prepared.get("annotations"),
                  predicted=prepared.get("predictions"), embedder=prepared.get("embedder"),
                  overlap=prepared.get("overlap"))


def _run(config: Config, audit: Audit, inputs: Inputs, rules: Mapping[str, Rule],
         progress: Progress | None = None) -> AuditResult:
    """One audit on these inputs, its findings at their configured severity."""
    cfg = section_of(config, audit)
    if audit.stage and progress is not None:
        with progress.stage(audit.stage):
            return apply_severity(config, audit.run(inputs, cfg), rules)
    return apply_severity(config, audit.run(inputs, cfg), rules)


def _distribution_embedder(config: Config, models: Models) -> Callable[[int], Embedder]:
    """The same-generator check's embedder, chosen by how many rows it compares the way the
    paraphrase search chooses (the full model for a small set, else the static one); the same
    choice at the head and at the base, so their AUCs are comparable."""
    cfg = config.audits.overlap.semantic
    return lambda rows: models.embedder() if semantic.use_exact(cfg, rows) else models.retriever()


def _caching(cache: Cache) -> Callable[[Embedder, bool], Embedder]:
    """Wrap the full model in the cache (each text encoded once, ever). The static model is not
    wrapped: it encodes about as fast as cached vectors are hashed, looked up and verified, so
    caching it cost a cold audit time and memory and saved nothing (the train side's whole
    static index is cached anyway, see :mod:`.overlap_cache`; the docs' Benchmarks page)."""
    def wrap(embedder: Embedder, cheap: bool) -> Embedder:
        return embedder if cheap else CachedEmbedder(embedder, cache)
    return wrap


def _overlap(config: Config, loaded: dict[str, LoadedDataset], changes: Changes | None,
             cache: Cache, progress: Progress, models: Models) -> AuditResult:
    """The overlap audit, searching only rows the cache has no result for."""
    cfg = config.audits.overlap
    eval_sets = [d for d in loaded.values() if d.role == "eval"]
    train_sets = [d for d in loaded.values() if d.role == "train"]
    with progress.stage("normalize", total=sum(len(d.rows) for d in eval_sets + train_sets)
                        ) as stage:
        evals = Corpus.of_datasets(eval_sets)
        train = train_corpus(train_sets, progress.warn) or Corpus.of_datasets(train_sets)
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
    return overlap.audit(evals, train, cfg, finder, text_fields=fields)


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
            builder = lambda _texts, retriever: train.vector_index(retriever)  # noqa: E731
        elif cache.enabled:
            builder = cached_vector_index(cache, builder, train.fingerprint)
        search = ParaphraseSearch(cfg, embedder=models.embedder(), retriever=models.retriever,
                                  index_builder=builder, progress=progress)
        return search.for_train(train.texts)
    return against


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


# --- the input layer: what the audits read, prepared before they run --------------------------

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
    return variants, predictions, source


def apply_severity(config: Config, result: AuditResult, rules: Mapping[str, Rule]
                   ) -> AuditResult:
    """Each finding at its rule's severity (:meth:`Config.severity_for`), the one place it is
    decided; findings of rules turned 'off' are dropped."""
    kept = []
    for finding in result.findings:
        rule = rules.get(finding.rule)
        level = (config.severity_for(rule) if rule is not None
                 else config.severity_of(finding.rule, finding.severity))
        if level is not None:
            kept.append(finding if level == finding.severity else replace(finding, severity=level))
    return replace(result, findings=kept)


def waiver_file(config: Config) -> tuple[Path, str]:
    """The waiver file next to the config: its path and its name in messages."""
    display = (Path(config.source).parent / waivers.WAIVERS_FILE).as_posix()
    return config.root / display, display


def _read_waiver_file(config: Config, path: Path, display: str) -> str:
    """The waiver file's text: a file the pull request may have committed, so it must be inside
    the repository (not a link out of it, nor into .git/) and no larger than a config."""
    from ..safeio.paths import check_file, repository_root
    from ..safeio.read import read_committed
    from ..safeio.yaml import MAX_CONFIG_BYTES

    check_file(path, repository_root(config.root), source=display, line=None,
               field="waiver file", display=display)
    return read_committed(path, MAX_CONFIG_BYTES, what="waiver file", display=display)


def load_waivers(config: Config) -> list[waivers.Listed]:
    """The waiver file's entries, then those of the config's ``waivers:`` key."""
    path, display = waiver_file(config)
    listed = []
    if path.is_file():
        listed = waivers.parse_waivers(_read_waiver_file(config, path, display), source=display)
    listed += [waivers.Listed(e, config.source) for e in config.waivers]
    waivers.check_duplicates(listed)
    return listed


def _waive(config: Config, results: list[AuditResult], changes: Changes | None,
           rules: Mapping[str, Rule], listed: list[waivers.Listed] | None = None
           ) -> list[AuditResult]:
    """Mark waived findings (in ``results``, in place); report stale waivers. Nothing without
    waivers. ``listed``: the waivers to apply (default: the config's, :func:`load_waivers`)."""
    listed = load_waivers(config) if listed is None else listed
    if not listed:
        return []
    findings = [f for r in results for f in r.findings]
    at_base = (waivers_at_base(config, changes, [waiver_file(config)[1], config.source])
               if changes is not None else None)
    applied = waivers.apply(findings, listed, today=datetime.now(timezone.utc).date(),
                            at_base=at_base)
    results[:] = [replace(r, findings=[replace(f, waived=applied.waivers[f.fingerprint])
                                       if f.fingerprint in applied.waivers else f
                                       for f in r.findings]) for r in results]
    waived = sum(1 for r in results for f in r.findings if f.waived is not None)
    stats = [Stat("waivers", len(listed)), Stat("findings waived", waived),
             Stat("stale waivers", len(applied.stale))]
    if changes is not None:
        stats.append(Stat("waivers added by this change", applied.new))
    result = AuditResult(waivers.AUDIT, "Waivers", applied.stale, stats)
    return [apply_severity(config, result, rules)]


def summarize(d: LoadedDataset, changes: Changes | None = None) -> DatasetSummary:
    """A dataset's line of the report (with what changed since the base, if compared)."""
    summary = DatasetSummary(d.name, d.role, d.files, len(d.rows),
                             sum(p.count for p in d.problems))
    if changes is not None:
        summary = replace(summary, changed_files=changes.changed_files.get(d.name, []),
                          changed_rows=len(changes.new_rows.get(d.name, ())))
    return summary
