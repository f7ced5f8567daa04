"""Markdown through the Jinja2 templates in ``templates/``, always under a size limit.

Safe by default: the environment's ``finalize`` escapes every printed value for Markdown
(:func:`~eval_firewall.report.escape.escape_md`), so a template that prints a dataset's text,
a finding's message or anything a report file carries cannot forget to. Raw output takes an
explicit filter: ``| raw`` for Markdown the code built (the verdict, the comment marker, link
targets), ``| md(limit)`` for escaped text cut to a length, ``| figure`` and ``| percent`` for
numbers. Each returns :class:`~markupsafe.Markup`, the marker ``finalize`` lets through, as
macros' output is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from ..findings import AuditResult, Finding, Report, Severity
from ..rules import Pair
from .escape import escape_md
from .registry import open_figures, rules_of
from .verdict import verdict_line

MAX_CHARS = 65_000
INLINE_ROWS = 10
# How many findings per audit to list, tried in turn until the report fits.
LIST_LIMITS = (None, 1000, 400, 200, 100, 50, 20, 10, 5, 0)
MIN_ROW_CHARS = 25  # no findings table row is shorter

LinkFn = Callable[[str, "int | None"], "str | None"]


def templates_dir() -> Path:
    """The report templates, inside this package (the repository's top-level ``templates`` is a
    link to them)."""
    return Path(__file__).resolve().parent / "templates"


def escaping(escape: Callable[[object], str], raw: type[str]) -> Callable[[object], str]:
    """A Jinja ``finalize`` that passes every printed value through ``escape``, except those
    already of the ``raw`` type (what an explicit filter or a macro returned). Shared by the
    Markdown and the text templates."""
    def finalize(value: object) -> str:
        return value if isinstance(value, raw) else raw(escape(value))
    return finalize


def template_environment(finalize: Callable[[object], str], *, autoescape: bool = False
                         ) -> jinja2.Environment:
    """The environment of the report templates: every printed value goes through
    ``finalize``; an undefined name is an error, not an empty string."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())), autoescape=autoescape,
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.StrictUndefined, finalize=finalize)


def _md(value: object, limit: int | None = None) -> Markup:
    """Escaped for Markdown, cut to ``limit`` characters."""
    return Markup(escape_md(value, limit))


def _figure(value: object) -> Markup:
    if isinstance(value, bool):
        return Markup("yes" if value else "no")
    if isinstance(value, int):
        return Markup(f"{value:,}")
    if isinstance(value, float):
        return Markup(f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}")
    return _md(value)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Markdown templates' environment. Jinja's own autoescaping is on only so that a
    macro's output comes back as :class:`~markupsafe.Markup` (already escaped); ``finalize``
    escapes for Markdown first and marks the result, so HTML escaping never applies twice."""
    env = template_environment(escaping(escape_md, Markup), autoescape=True)
    env.filters["raw"] = Markup
    env.filters["md"] = _md
    env.filters["figure"] = _figure
    env.filters["percent"] = _percent
    env.filters["no_match_reason"] = _no_match_reason
    env.globals["SNIPPET"] = SNIPPET_CHARS
    return env


SNIPPET_CHARS = 100


def pair_problems(report: Report) -> dict[str, Pair]:
    """Rule id -> how a pair finding's table row names it (:class:`~eval_firewall.rules.Pair`):
    findings that pair an eval row with another row show both texts side by side under that
    name, instead of the message (which repeats the match's path)."""
    return {rule.id: rule.pair for rule in rules_of(report).values() if rule.pair}


def _percent(f: Finding) -> Markup | None:
    """Similarity as a percent; none when the two texts are the same."""
    if f.score is None:
        return None
    if f.match is not None and f.match.text is not None and f.match.text == f.text:
        return None
    text = f"{f.score:.0%}"
    return Markup(">99%" if text == "100%" and f.score < 1 else text)


def _no_match_reason(f: Finding) -> str:
    if f.count:
        return f"{f.count:,} row{'' if f.count == 1 else 's'}"
    if not f.path:
        return "the whole dataset"
    if not f.line:
        return "the whole file"
    return "no row text"


@dataclass
class _Audit:
    """One audit's part of the health section."""

    result: AuditResult
    verdict: str
    existing: list[Finding] = field(default_factory=list)
    hidden: int = 0

    @property
    def has_body(self) -> bool:
        r = self.result
        return bool(r.skipped or r.verdict or r.stats or self.existing or self.hidden)


@dataclass
class _Lists:
    new: list[Finding]
    new_hidden: int
    waived: list[Finding]
    waived_hidden: int
    audits: list[_Audit]

    @property
    def listed(self) -> int:
        return len(self.new) + len(self.waived) + sum(len(a.existing) for a in self.audits)


def _order(f: Finding) -> tuple[int, str, int, str]:
    return (-f.severity.rank, f.path or "", f.line or 0, f.rule)


def _audit_verdict(result: AuditResult, failing: set[int], pr: bool) -> str:
    if result.skipped:
        return "not run"
    live = [f for f in result.findings if f.waived is None]
    if any(id(f) in failing for f in live):
        return "❌ fail"
    new = [f for f in live if f.new]
    if any(f.severity is not Severity.NOTICE for f in new):
        return "⚠️ warning"
    if pr and any(not f.new for f in live):
        return "pre-existing"
    return "✅ pass"


def _lists(report: Report, new_limit: int | None, existing_limit: int | None) -> _Lists:
    """The findings to list: new ones across all audits (and waived ones) up to
    ``new_limit``, those already present up to ``existing_limit`` per audit."""
    def cut(items: list[Finding], limit: int | None) -> tuple[list[Finding], int]:
        items = sorted(items, key=_order)
        shown = items if limit is None else items[:limit]
        return shown, len(items) - len(shown)

    failing = {id(f) for f in report.failing()}
    new, new_hidden = cut([f for f in report.new_findings if f.waived is None], new_limit)
    waived, waived_hidden = cut(report.waived_findings, new_limit)
    audits = []
    for a in report.audits:
        existing, hidden = cut([f for f in a.findings if f.waived is None and not f.new],
                               existing_limit)
        audits.append(_Audit(a, _audit_verdict(a, failing, report.base is not None),
                             existing, hidden))
    return _Lists(new, new_hidden, waived, waived_hidden, audits)


def _plans() -> list[tuple[int | None, int | None]]:
    """(new, existing) list limits, tried in turn: existing findings are shortened first."""
    return ([(None, limit) for limit in LIST_LIMITS]
            + [(limit, 0) for limit in LIST_LIMITS[1:]])


def base_label(base: str) -> str:
    """A commit as a short SHA; any other revision (``--base main``) as given."""
    return base[:7] if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", base) else base


def render_markdown(report: Report, *, link: LinkFn | None = None, marker: str | None = None,
                    max_chars: int = MAX_CHARS, changed_files: list[str] | None = None,
                    omitted_hint: str = "run with --format json for the full list",
                    template: str = "report.md.j2", fixed: bool = False,
                    commit: str | None = None, compare_url: str | None = None) -> str:
    """Render the report; lists are shortened until it fits in ``max_chars``, the findings
    already present at the base first, the new ones last.

    ``fixed``: an earlier report (the PR comment before this push) had findings, this one has
    none. ``commit``: the audited commit, named in the footer. ``compare_url``: where the
    base revision links to (GitHub's compare view of base and head).
    """
    env = environment()
    if changed_files is None and report.base is not None:
        changed_files = sorted({f for d in report.datasets for f in d.changed_files or ()})
    pairs, figures_open = pair_problems(report), open_figures(report)
    c = report.counts
    totals = {**c.by_severity, "all": c.findings, "new": c.new_unwaived,
              "existing": c.existing_unwaived, "waived": c.waived, "waived_here": c.waived_here}
    text, tried = "", None
    for new_limit, existing_limit in _plans():
        lists = _lists(report, new_limit, existing_limit)
        if lists.listed * MIN_ROW_CHARS > max_chars or lists.listed == tried:
            continue  # cannot fit, or the same lists as the last try: do not render it
        tried = lists.listed
        text = env.get_template(template).render(
            report=report, verdict=verdict_line(report), lists=lists,
            totals={**totals, "listed": lists.listed}, inline_rows=INLINE_ROWS, link=link,
            marker=marker, changed_files=changed_files, omitted=lists.listed < c.findings,
            omitted_hint=omitted_hint, max_chars=max_chars, fixed=fixed, commit=commit,
            base=base_label(report.base) if report.base is not None else None,
            compare_url=compare_url, pr=report.base is not None, pairs=pairs,
            open_figures=figures_open)
        if len(text) <= max_chars:
            return text
    # Even with no finding listed the report is too long (huge dataset list): cut it hard.
    note = f"\n\n> **Note:** report cut at {max_chars:,} characters; {omitted_hint}.\n"
    return text[: max_chars - len(note)] + note
