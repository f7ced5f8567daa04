"""Markdown through the Jinja2 templates in ``templates/``, always under a size limit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jinja2

from ..findings import Finding, Report, Severity
from .escape import escape_md

MAX_CHARS = 65_000
INLINE_ROWS = 10
# How many findings per audit to list, tried in turn until the report fits.
LIST_LIMITS = (None, 1000, 400, 200, 100, 50, 20, 10, 5, 0)
MIN_ROW_CHARS = 25  # no findings table row is shorter

LinkFn = Callable[[str, "int | None"], "str | None"]


def templates_dir() -> Path:
    """Templates ship inside the package; in a source checkout they are at the top level."""
    packaged = Path(__file__).resolve().parent.parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "templates"


def _figure(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return escape_md(value)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.StrictUndefined)
    env.filters["md"] = escape_md
    env.filters["figure"] = _figure
    return env


@dataclass
class _Section:
    new: list[Finding] = field(default_factory=list)
    existing: list[Finding] = field(default_factory=list)
    hidden: int = 0


def _order(f: Finding) -> tuple:
    return (-f.severity.rank, f.path or "", f.line or 0, f.rule)


def _sections(report: Report, limit: int | None) -> tuple[dict[str, _Section], int]:
    sections, listed = {}, 0
    for a in report.audits:
        ordered = sorted(a.findings, key=_order)
        new = [f for f in ordered if f.new]
        existing = [f for f in ordered if not f.new]
        section = _Section()
        budget = len(ordered) if limit is None else limit
        section.new = new[:budget]
        section.existing = existing[:max(0, budget - len(section.new))]
        section.hidden = len(ordered) - len(section.new) - len(section.existing)
        listed += len(section.new) + len(section.existing)
        sections[a.audit] = section
    return sections, listed


def render_markdown(report: Report, *, link: LinkFn | None = None, marker: str | None = None,
                    max_chars: int = MAX_CHARS, changed_files: list[str] | None = None,
                    omitted_hint: str = "run with --format json for the full list",
                    template: str = "report.md.j2", fixed: bool = False,
                    commit: str | None = None) -> str:
    """Render the report; lists are shortened until it fits in ``max_chars``.

    ``fixed``: an earlier report (the PR comment before this push) had findings, this one has
    none. ``commit``: the audited commit, named in the footer.
    """
    env = environment()
    if changed_files is None and report.base is not None:
        changed_files = sorted({f for d in report.datasets for f in d.changed_files or ()})
    findings = report.findings
    totals = {s.value: sum(1 for f in findings if f.severity is s) for s in Severity}
    totals.update(all=len(findings), new=sum(1 for f in findings if f.new))
    totals["existing"] = totals["all"] - totals["new"]
    text = ""
    for limit in LIST_LIMITS:
        sections, listed = _sections(report, limit)
        if listed * MIN_ROW_CHARS > max_chars:
            continue  # cannot fit: do not spend time rendering it
        text = env.get_template(template).render(
            report=report, failing=report.failing(), totals={**totals, "listed": listed},
            sections=sections, inline_rows=INLINE_ROWS, link=link, marker=marker,
            changed_files=changed_files, omitted=listed < len(findings),
            omitted_hint=omitted_hint, max_chars=max_chars, fixed=fixed, commit=commit)
        if len(text) <= max_chars:
            return text
    # Even with no finding listed the report is too long (huge dataset list): cut it hard.
    note = f"\n\n> **Note:** report cut at {max_chars:,} characters; {omitted_hint}.\n"
    return text[: max_chars - len(note)] + note
