"""``run_audits``: read the datasets, run each enabled audit of the registry on its prepared
inputs, attribute and waive the findings, and return the report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from ..audits import AUDITS, Audit, rule_catalogue
from ..cache import Cache
from ..config import Config, check_severity_rules
from ..findings import Report
from ..home import DEFAULT_CACHE
from ..incremental.attribution import BaseSide, attribute
from ..incremental.changes import load_base, scratch_dir
from ..policy import waivers
from ..progress import Progress
from ..search.shards import Executor
from ..version import __version__
from .prepare import _eval_dataset, _variants, head_inputs, models_of
from .read import load_all, summarize
from .severity import _run, enabled_in
from .waive import _waive


def run_audits(config: Config, *, progress: Progress | None = None,
               cache_dir: Path | Literal["default"] | None = "default", base: str | None = None,
               allow_commands: bool = False, audits: Sequence[Audit] = AUDITS,
               waivers: list[waivers.Listed] | None = None,
               executor: Executor | None = None) -> Report:
    """Run every enabled audit on the configured datasets and return the report.

    ``cache_dir``: ``"default"`` is :data:`~eval_firewall.home.DEFAULT_CACHE` in the config's
    folder; a path names another cache; None neither reads nor writes a cache.

    With ``base`` (a git revision), each finding says whether this change introduced it.
    ``allow_commands`` lets the invariance audit run the configured prediction command: only
    for a trusted configuration, never a pull request's own (see :mod:`.predictions`).
    ``audits``: the registry to run (default: every audit, :data:`eval_firewall.audits.AUDITS`).
    ``waivers``: the waivers to apply (the gate's policy, :mod:`.policy`) instead of those of
    the config's waiver file and ``waivers:`` key. ``executor`` searches the train index's
    shards (default: in this process; :mod:`eval_firewall.search.shards`).
    """
    rules = rule_catalogue(audits)
    check_severity_rules(config, rules)
    progress = progress or Progress(enabled=False)
    cache = Cache(config.root / DEFAULT_CACHE if cache_dir == "default" else cache_dir, progress)
    loaded = load_all(config, progress, cache)
    changes = None
    if base is not None:
        with progress.stage(f"read datasets at {base}"), scratch_dir() as scratch:
            changes = load_base(config, loaded, base, Path(scratch))
    models = models_of(config, cache, progress)
    prepared = head_inputs(config, loaded, changes, cache, progress, models, allow_commands,
                           executor)
    enabled = [a for a in audits if enabled_in(config, a, audits)]
    results = [_run(config, audit, prepared.for_audit(audit), rules, progress)
               for audit in enabled]
    if changes is not None:
        with progress.stage(f"compare with {base}"):
            results = attribute(results, enabled, rules, BaseSide(
                config, changes, loaded, prepared.values,
                run=lambda audit, inputs: _run(config, audit, inputs, rules),
                variants=lambda datasets: _variants(
                    config, _eval_dataset(config, datasets, "invariance").rows)))
    results = _waive(config, results, changes, rules, waivers)
    return Report(fail_on=config.fail_on, fail_on_existing=config.fail_on_existing,
                  audits=results, datasets=[summarize(d, changes) for d in loaded.values()],
                  base=base, version=__version__, config_path=config.source, rules=rules,
                  open_figures=frozenset(a.name for a in enabled if a.figures_open))
