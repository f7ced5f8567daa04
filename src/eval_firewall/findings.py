"""The findings model shared by every audit and every renderer."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .rows import Row
from .rules import Rule
from .rules import Severity as Severity  # defined with the rules, imported from here too


@dataclass(frozen=True, slots=True)
class Span:
    """Where in the matched row's text the shared text is: code-point offsets ``start``..``end``
    into the row's text (its text fields joined by a newline, before normalization), the text
    field it starts in (None when that is not known), and the share of the eval item covered
    (None for a paraphrase window, which shares meaning rather than words)."""

    start: int
    end: int
    field: str | None = None
    coverage: float | None = None
    window: bool = False      # a paraphrase found in a window of a long train row


@dataclass(frozen=True, slots=True)
class Match:
    """The other row of an overlap finding (a train row, or another eval row)."""

    dataset: str
    path: str
    line: int
    row_id: str
    text: str | None = None
    span: Span | None = None

    @classmethod
    def of(cls, row: Row, span: Span | None = None) -> "Match":
        """The match that is ``row`` (the part ``span`` of it, if given)."""
        return cls(row.dataset, row.path, row.line, row.row_id, row.text, span)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What an overlap decision rested on, with the numbers it compared (``eval-firewall
    explain`` prints the same ones).

    ``stage``: ``exact``, ``near-duplicate`` or ``paraphrase``. ``similarity``: the stage's
    score (1.0 for identical normalized text, the lexical similarity, or the full-model cosine).
    ``threshold``: the bar that score is held to (the near-duplicate ``threshold``, or the
    paraphrase cosine floor ``threshold``). ``probability``: the calibrated probability that
    the pair is a paraphrase, the number ``min_probability`` filters on (paraphrase stage,
    ``scoring: model``); ``min_probability``: that bar. ``features``: the scoring's features
    by name (``code`` 1 when the pair was scored as code). ``not_flagged``: why a close pair
    was not flagged (only in ``explain``; a finding is flagged).
    """

    stage: str
    similarity: float
    threshold: float | None = None
    probability: float | None = None
    min_probability: float | None = None
    features: Mapping[str, float] | None = field(default=None, hash=False)
    not_flagged: str | None = None


FINGERPRINT_CHARS = 32   # the full fingerprint: JSON `fingerprint`, SARIF partialFingerprints
SHORT_ID_CHARS = 8       # the short id shown in Markdown; `eval-firewall waive` accepts both


def content_hash(text: str) -> str:
    """A stable hash of a row's text (or any string): part of a finding's fingerprint."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Waiver:
    """A reviewed acceptance of one finding, from the waiver file (or ``waivers:`` key).

    ``new`` is true when the waiver was added by the change under audit (``--base``), so a
    pull request that waives findings says so in its comment.
    """

    fingerprint: str
    reason: str
    approved_by: str
    expires: str | None = None   # ISO date (YYYY-MM-DD); expired waivers waive nothing
    new: bool = False
    reviewer: str | None = None  # the login whose pull-request review approved it (policy)


@dataclass(frozen=True, slots=True)
class Finding:
    """One violation, warning or notice.

    Row-level findings carry ``path``/``line``/``row_id``; dataset-level ones (a shared
    generator, a dataset card, an aggregate count) may point at a file only, or nowhere.
    ``digest``: a hash of the bytes of a row that has no text (an unreadable row), which its
    fingerprint then depends on.
    """

    audit: str
    rule: str
    severity: Severity
    message: str
    dataset: str | None = None
    path: str | None = None
    line: int | None = None
    row_id: str | None = None
    text: str | None = None
    score: float | None = None
    match: Match | None = None
    count: int | None = None
    new: bool = True
    waived: Waiver | None = None   # set when a waiver accepts this finding: it does not fail
    evidence: Evidence | None = None   # overlap findings: the numbers the decision used
    # Overlap findings against train: "input" (the train row holds the eval item) or
    # "input+label" (it holds the eval row's label near the item too: the worse leak).
    leak: str | None = None
    digest: str | None = None

    @classmethod
    def for_row(cls, audit: str, rule: str, severity: Severity, message: str, row: Row,
                **extra: Any) -> "Finding":
        """A finding about ``row`` (its dataset, path, line, id and text)."""
        return cls(audit=audit, rule=rule, severity=severity, message=message,
                   dataset=row.dataset, path=row.path, line=row.line, row_id=row.row_id,
                   text=row.text, **extra)

    @property
    def fingerprint(self) -> str:
        """Stable identity for waivers and code scanning: rule + dataset + the row's content
        hash + the match's content hash. It survives lines moving; it changes when the row's
        or the match's text does. A finding with no row text uses the digest of the row's
        bytes (an unreadable row), else its row id or path."""
        own = self.text if self.text is not None else (self.digest or self.row_id or self.path
                                                       or "")
        other = ""
        if self.match is not None:
            other = self.match.text if self.match.text is not None else self.match.row_id
        parts = "\x1f".join((self.rule, self.dataset or "", content_hash(own),
                              content_hash(other) if other else ""))
        return hashlib.blake2b(parts.encode("utf-8"),
                               digest_size=FINGERPRINT_CHARS // 2).hexdigest()

    @property
    def short_id(self) -> str:
        """The fingerprint's first characters, as the Markdown report shows it."""
        return self.fingerprint[:SHORT_ID_CHARS]

    @property
    def key(self) -> tuple[object, ...]:
        """Identity of a finding across two runs (used to tell new from existing)."""
        match = (self.match.dataset, self.match.row_id) if self.match else None
        return (self.audit, self.rule, self.dataset, self.row_id or self.path, match)


@dataclass(frozen=True, slots=True)
class Stat:
    """One line of an audit's summary table."""

    label: str
    value: Any


def _store(obj: object, *names: str) -> None:
    """Store the named sequence fields of a frozen dataclass as tuples (callers may pass
    lists): what a report holds cannot be changed after the fact."""
    for name in names:
        value = getattr(obj, name)
        if value is not None and not isinstance(value, tuple):
            object.__setattr__(obj, name, tuple(value))


@dataclass(frozen=True, slots=True)
class AuditResult:
    """What one audit returns: its findings and a few summary figures."""

    audit: str
    title: str
    findings: Sequence[Finding] = ()   # stored as a tuple
    stats: Sequence[Stat] = ()         # stored as a tuple
    verdict: str | None = None
    skipped: str | None = None   # why the audit did not run, if it did not
    # The rows (per side) a dataset-level figure was computed from: ``--base`` sizes the margin
    # by which that figure must worsen to count as new (not in the JSON report).
    sample_size: int | None = None

    def __post_init__(self) -> None:
        """Store findings and stats as tuples."""
        _store(self, "findings", "stats")

    def counts(self) -> dict[str, int]:
        """Findings per severity (every severity present, zero if none)."""
        out = {s.value: 0 for s in Severity}
        for f in self.findings:
            out[f.severity.value] += 1
        return out


@dataclass(frozen=True, slots=True)
class DatasetSummary:
    """One dataset as the report lists it."""

    name: str
    role: str
    files: Sequence[str]                          # stored as a tuple
    rows: int
    invalid_rows: int = 0
    changed_files: Sequence[str] | None = None    # set by an incremental (--base) run
    changed_rows: int | None = None

    def __post_init__(self) -> None:
        """Store the file lists as tuples."""
        _store(self, "files", "changed_files")


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """One change a pull request makes to the gate's policy (its config or waiver file),
    compared with the base revision's (:mod:`eval_firewall.policy`).

    ``direction``: "loosen" (the gate lets more through, or a key with no order changed) or
    "tighten". ``status``: "pending" (a loosening not applied: it fails the run), "approved"
    (a loosening applied on ``reviewer``'s approval), "applied" (a tightening), "trusted"
    (applied because the head's policy was trusted: a push, ``--trust-head-policy``).
    """

    key: str
    before: str
    after: str
    direction: str
    path: str
    line: int | None = None
    status: str = "pending"
    reviewer: str | None = None

    @property
    def location(self) -> str:
        """``path:line``, or the path alone."""
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass(frozen=True)   # no slots: then setting ``status`` is a FrozenInstanceError too
class Report:
    """Everything one run found; what every renderer and the GitHub layer consume.

    Frozen: ``status`` is derived from the findings and the fail settings, so a different
    fail level is a new report (:meth:`with_fail_on`), never an edited one.
    """

    fail_on: str                             # "error" | "warning" | "notice" | "never"
    audits: Sequence[AuditResult]            # stored as a tuple
    datasets: Sequence[DatasetSummary]       # stored as a tuple
    fail_on_existing: bool = False
    base: str | None = None
    version: str = ""
    config_path: str | None = None
    policy: Sequence[PolicyChange] = ()      # the change's policy diff (stored as a tuple)
    new_policy: bool = False                 # no config at the base: the head's is new policy
    # What the registry that ran knows (not in the JSON report; None: the default registry's,
    # as for a report read back from JSON): every rule by id, and the audits whose figures the
    # Markdown report shows open in a local run.
    rules: Mapping[str, Rule] | None = field(default=None, compare=False)
    open_figures: frozenset[str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        """Store audits, datasets and policy changes as tuples."""
        _store(self, "audits", "datasets", "policy")

    @property
    def status(self) -> str:
        """``"fail"`` when a finding fails at the report's fail settings, else ``"pass"``."""
        return status_of(self.findings, self.fail_on, self.fail_on_existing)

    def with_fail_on(self, fail_on: str, fail_on_existing: bool | None = None) -> Report:
        """The same findings judged at another fail level (and, if given, fail-on-existing)."""
        if fail_on_existing is None:
            fail_on_existing = self.fail_on_existing
        return replace(self, fail_on=fail_on, fail_on_existing=fail_on_existing)

    @property
    def findings(self) -> list[Finding]:
        """Every audit's findings, in audit order."""
        return [f for a in self.audits for f in a.findings]

    def failing(self) -> list[Finding]:
        """The findings that make the report fail."""
        return failing_findings(self.findings, self.fail_on, self.fail_on_existing)

    # --- derived counts: the one definition every renderer and the action outputs use -------
    # "New" means introduced by the change under audit (every finding without a base), waived
    # or not; "existing": present at the base already. A waiver changes whether a finding
    # fails, never whether it is new.

    @property
    def new_findings(self) -> list[Finding]:
        """The findings the change under audit introduced (all of them without a base),
        waived or not."""
        return [f for f in self.findings if f.new]

    @property
    def existing_findings(self) -> list[Finding]:
        """The findings already present at the base revision, waived or not."""
        return [f for f in self.findings if not f.new]

    @property
    def waived_findings(self) -> list[Finding]:
        """The findings a waiver accepts (they never fail)."""
        return [f for f in self.findings if f.waived is not None]

    @property
    def waived_here(self) -> list[Finding]:
        """The findings waived by a waiver the change under audit adds."""
        return [f for f in self.findings if f.waived is not None and f.waived.new]

    @property
    def not_blocking(self) -> list[Finding]:
        """The findings that are neither waived nor failing (below the fail level, or already
        present without fail-on-existing)."""
        failing = {id(f) for f in self.failing()}
        return [f for f in self.findings if f.waived is None and id(f) not in failing]

    @property
    def counts_by_severity(self) -> dict[str, int]:
        """Findings per severity (every severity present, zero if none)."""
        out = {s.value: 0 for s in Severity}
        for f in self.findings:
            out[f.severity.value] += 1
        return out

    @property
    def counts(self) -> Counts:
        """How many findings there are of each kind the reports and action outputs name."""
        findings = self.findings
        new = sum(1 for f in findings if f.new)
        new_waived = sum(1 for f in findings if f.new and f.waived is not None)
        waived = sum(1 for f in findings if f.waived is not None)
        return Counts(findings=len(findings), new=new, existing=len(findings) - new,
                      failing=len(self.failing()), waived=waived,
                      waived_here=len(self.waived_here), new_unwaived=new - new_waived,
                      existing_unwaived=len(findings) - new - (waived - new_waived),
                      by_severity=self.counts_by_severity)


@dataclass(frozen=True, slots=True)
class Counts:
    """A report's derived counts (:attr:`Report.counts`): every renderer and the action's
    outputs read these, so "new" means one thing everywhere (introduced by the change, waived
    or not; docs/incremental.md, "What counts as new")."""

    findings: int
    new: int                  # introduced by the change (all without a base), waived or not
    existing: int             # present at the base, waived or not
    failing: int              # make the report fail
    waived: int
    waived_here: int          # waived by a waiver the change adds
    new_unwaived: int         # new and not waived (the Markdown summary's "new findings")
    existing_unwaived: int    # present at the base and not waived ("already present")
    by_severity: Mapping[str, int] = field(default_factory=dict)


def failing_findings(findings: Sequence[Finding], fail_on: str, fail_on_existing: bool
                     ) -> list[Finding]:
    """The findings at or above ``fail_on`` that count: new (or any, with
    ``fail_on_existing``) and not waived."""
    if fail_on == "never":
        return []
    level = Severity(fail_on)
    return [f for f in findings
            if f.severity.at_least(level) and (f.new or fail_on_existing) and f.waived is None]


def status_of(findings: Sequence[Finding], fail_on: str, fail_on_existing: bool) -> str:
    """``"fail"`` if any finding fails at these settings, else ``"pass"``."""
    return "fail" if failing_findings(findings, fail_on, fail_on_existing) else "pass"
