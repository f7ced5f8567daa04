"""How a finding is judged new: one judgement per rule's ``new_when``, against the base's findings.

Each rule says how its findings are judged (:attr:`eval_firewall.rules.Rule.new_when`); the
:class:`Judge` dispatches on that, so a new rule needs no entry here. docs/incremental.md
("What counts as new") is the user's account of the same table.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from ..datasets import LoadedDataset
from ..findings import Finding
from ..rows import Row
from ..rules import NewWhen, Rule
from .changes import Changes

# How much worse a dataset-level figure that already failed at the base must get for its
# finding to count as new (docs/incremental.md, "What counts as new").
RATE_MARGIN = 0.02          # disagreement and flip rates: 2 percentage points above the base
AUC_SE_MULTIPLE = 2 * math.sqrt(2)   # same-generator AUC: 2 standard errors of a difference


def auc_margin(rows_per_side: int, auc: float = 0.5) -> float:
    """How far the same-generator AUC must fall below the base's to be *materially* worse:
    AUC_SE_MULTIPLE x the Hanley-McNeil standard error at this sample size (the base and head
    samples are drawn independently, hence the sqrt(2) of a difference)."""
    n = max(rows_per_side, 1)
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n - 1) * (q1 - auc * auc) + (n - 1) * (q2 - auc * auc)) / (n * n)
    return AUC_SE_MULTIPLE * math.sqrt(max(var, 0.0))


def _generator_key(value: str) -> str:
    return " ".join(value.casefold().split())


def generator_counts(datasets: Iterable[LoadedDataset]) -> dict[str, tuple[int, int]]:
    """Generator -> (eval rows, train rows) it produced."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for d in datasets:
        for row in d.rows:
            if row.provenance.generator:
                counts[_generator_key(row.provenance.generator)][d.role != "eval"] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}


def _identity(f: Finding, by_message: bool) -> tuple[object, ...]:
    """What identifies a finding of a re-run audit across base and head: its rule and
    fingerprint, and (a "problem" rule's) its message."""
    return (f.rule, f.fingerprint, f.message if by_message else None)


def mark_new(findings: list[Finding], changes: Changes, head: dict[str, LoadedDataset],
             base_results: Mapping[str, list[Finding] | None], rules: Mapping[str, Rule],
             sample_sizes: Mapping[str, int] | None = None) -> list[Finding]:
    """Set ``new`` on each finding: did this change introduce it? (docs/incremental.md: What
    counts as new.)

    ``base_results``: audit -> its findings at the base, for the audits re-run there (None:
    it could not run at the base, e.g. its input did not exist yet, so all its findings are
    new). ``rules``: the catalogue, whose ``new_when`` says how each finding is judged (an
    unknown rule: "rerun"). ``sample_sizes``: audit -> the rows per side its figure rests on
    (:attr:`~eval_firewall.findings.AuditResult.sample_size`), which sizes the AUC's margin.
    """
    judge = Judge(changes, head, base_results, rules, sample_sizes or {})
    return [f if f.new == (new := judge.is_new(f)) else replace(f, new=new) for f in findings]


class Judge:
    """Decides, finding by finding, whether this change introduced it (see :func:`mark_new`)."""

    def __init__(self, changes: Changes, head: dict[str, LoadedDataset],
                 base_results: Mapping[str, list[Finding] | None], rules: Mapping[str, Rule],
                 sample_sizes: Mapping[str, int]) -> None:
        self.changes, self.head, self.base_results = changes, head, base_results
        self.rules, self.sample_sizes = rules, sample_sizes
        self.new_locs = changes.new_locations(head)
        self._head_rows: dict[tuple[str | None, int | None], Row] | None = None
        self.base_by_rule: dict[tuple[str, str | None], list[Finding]] = defaultdict(list)
        self.base_seen: Counter[tuple[object, ...]] = Counter()
        for found in base_results.values():
            for f in found or ():
                self.base_by_rule[(f.rule, f.dataset)].append(f)
                self.base_seen[self.identity(f)] += 1
        self.head_seen: Counter[tuple[object, ...]] = Counter()
        self.generators: tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]] | None = None

    def identity(self, f: Finding) -> tuple[object, ...]:
        """What identifies ``f`` across base and head (see :func:`_identity`)."""
        return _identity(f, self.new_when(f) == "problem")

    def new_when(self, f: Finding) -> NewWhen:
        """How ``f`` is judged: its rule's ``new_when`` ("rerun" for a rule not catalogued)."""
        rule = self.rules.get(f.rule)
        return rule.new_when if rule is not None else "rerun"

    def is_new(self, f: Finding) -> bool:
        """Did this change introduce ``f``? (docs/incremental.md: What counts as new.)"""
        how = self.new_when(f)
        if how == "row" or (how == "share" and f.count is None):     # a finding per row
            return self.row_new(f)
        if f.audit in self.base_results and self.base_results[f.audit] is None:
            return True          # the audit could not run at the base: all of it is new
        return JUDGEMENTS[how](self, f)

    # --- what the judgements share ---

    def row_new(self, f: Finding) -> bool:
        """The finding's row or its match is new or changed (by content)."""
        return (f.path, f.line) in self.new_locs or bool(
            f.match and (f.match.path, f.match.line) in self.new_locs)

    def at_base(self, f: Finding, rules: tuple[str, ...] = (), same_path: bool = False
                ) -> Finding | None:
        """The base's finding of the same rule (or one of ``rules``) in the same dataset."""
        for rule in (f.rule, *rules):
            for b in self.base_by_rule.get((rule, f.dataset), ()):
                if not same_path or b.path == f.path:
                    return b
        return None

    def head_row(self, path: str | None, line: int | None) -> Row | None:
        """The head's row at ``path:line`` (the map is built on first use: a million rows
        take seconds, and only shared-generator findings need it)."""
        if self._head_rows is None:
            self._head_rows = {(r.path, r.line): r for d in self.head.values() for r in d.rows}
        return self._head_rows.get((path, line))

    # --- one judgement per NewWhen ---

    def rerun(self, f: Finding) -> bool:
        """The base run had no such finding (same rule and fingerprint, counted), or its row is
        new; an audit not re-run at the base: new unless it is about an unchanged row."""
        if f.audit not in self.base_results:
            return self.row_new(f) if f.line is not None else True
        key = self.identity(f)
        self.head_seen[key] += 1
        return self.row_new(f) or self.head_seen[key] > self.base_seen[key]

    def count(self, f: Finding, same_path: bool = False) -> bool:
        """The base had none in the dataset (in the same file: ``same_path``), or fewer."""
        b = self.at_base(f, same_path=same_path)
        return b is None or (f.count or 0) > (b.count or 0)

    def count_in_file(self, f: Finding) -> bool:
        """As :meth:`count`, in the same file (an annotation sheet)."""
        return self.count(f, same_path=True)

    def count_per_row(self, f: Finding) -> bool:
        """The row is new, the base had no finding about it, or its count grew."""
        b = next((b for b in self.base_by_rule.get((f.rule, f.dataset), ())
                  if b.fingerprint == f.fingerprint), None)
        return self.row_new(f) or b is None or (f.count or 0) > (b.count or 0)

    def share(self, f: Finding) -> bool:
        """A count of rows: the base had none, or it is a larger share of the dataset's rows."""
        b = self.at_base(f)
        now = len(self.head[f.dataset].rows) if f.dataset in self.head else 1
        base = self.changes.base_datasets
        was = len(base[f.dataset].rows) if f.dataset in base else 1
        return b is None or (f.count or 0) * was > (b.count or 0) * now

    def rate(self, f: Finding) -> bool:
        """The base had none, or the rate rose by more than :data:`RATE_MARGIN`."""
        b = self.at_base(f)
        return b is None or (f.score or 0.0) > (b.score or 0.0) + RATE_MARGIN

    def auc(self, f: Finding) -> bool:
        """The base had none, or the AUC fell by more than :func:`auc_margin` at the sample
        size of the audit's figure."""
        b = self.at_base(f)
        size = self.sample_sizes.get(f.audit)
        margin = auc_margin(size) if size else 0.0
        return b is None or (f.score or 0.0) < (b.score or 0.0) - margin

    def absent(self, f: Finding) -> bool:
        """The base had no finding of this rule, nor of the rules it is compared with."""
        rule = self.rules.get(f.rule)
        return self.at_base(f, rule.compare_with if rule is not None else ()) is None

    def generator(self, f: Finding) -> bool:
        """A shared generator is new when it was not shared at the base or has more rows now."""
        if self.generators is None:
            self.generators = (generator_counts(self.changes.base_datasets.values()),
                               generator_counts(self.head.values()))
        row = self.head_row(f.path, f.line)
        key = _generator_key(row.provenance.generator or "") if row else ""
        was = self.generators[0].get(key, (0, 0))
        now = self.generators[1].get(key, (0, 0))
        return not (was[0] and was[1]) or now[0] > was[0] or now[1] > was[1]


# NewWhen -> its judgement ("row" and a per-row "share" are decided in Judge.is_new).
JUDGEMENTS: dict[NewWhen, Callable[[Judge, Finding], bool]] = {
    "row": Judge.row_new, "rerun": Judge.rerun, "problem": Judge.rerun, "count": Judge.count,
    "count-in-file": Judge.count_in_file, "count-per-row": Judge.count_per_row,
    "share": Judge.share, "rate": Judge.rate, "auc": Judge.auc, "absent": Judge.absent,
    "generator": Judge.generator,
}
