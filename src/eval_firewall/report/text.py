"""Plain text for a terminal, through ``templates/report.txt.j2``.

The verdict comes first, then the counts per audit, then the findings as
``path:line  rule  message`` lines (grep and editors understand them), then a summary of what
was not listed. Nothing is Markdown-escaped, but dataset text is hostile input on a terminal
too: every printed value goes through :func:`terminal_safe` (the template's ``finalize``), which
removes escape sequences and control characters, so a row cannot recolour, move the cursor,
retitle the window or reorder the line it is printed on.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import click
import jinja2

from ..findings import Finding, Report, Severity
from ..safeio.terminal import no_command
from .markdown import escaping, template_environment

# Findings listed before the rest is summarized: about a screenful.
MAX_LISTED = 30
MESSAGE_CHARS = 240

# ANSI/VT escape sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), other ESC pairs;
# and their 8-bit C1 forms (CSI U+009B, OSC U+009D).
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?")
# C0 and C1 controls, DEL, and the bidirectional controls (embeddings, overrides, isolates,
# marks) that can make a line read differently from what it holds.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_BREAKS = re.compile(r"[\t\n\v\f\r\x1c-\x1e\x85\u2028\u2029]")
_SPACE = re.compile(r"\s+")


def terminal_safe(value: object) -> str:
    """Inert text on one line: no escape sequences, no control characters, no line breaks, and
    (the same rule as every log line, :func:`eval_firewall.safeio.terminal.no_command`) no workflow
    command: a text report printed in a CI log is read by the runner too."""
    if value is None:
        return ""
    text = _ESCAPES.sub("", str(value))
    return no_command(_CONTROLS.sub("", _BREAKS.sub(" ", text)))


def one_line(value: object, limit: int | None = None) -> str:
    """:func:`terminal_safe`, with runs of whitespace collapsed and cut to ``limit``."""
    text = _SPACE.sub(" ", terminal_safe(value)).strip()
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


class _Styled(str):
    """Text already made safe and styled: ``finalize`` lets it through unchanged."""


STYLES: dict[str, dict[str, Any]] = {
    "pass": {"fg": "green", "bold": True}, "fail": {"fg": "red", "bold": True},
    "error": {"fg": "red"}, "warning": {"fg": "yellow"}, "notice": {"fg": "cyan"},
    "where": {"bold": True}, "dim": {"dim": True}, "heading": {"bold": True},
}


@lru_cache(maxsize=2)
def _environment(color: bool) -> jinja2.Environment:
    def style(value: object, name: str, pad: int = 0) -> _Styled:
        """Styled text, padded to ``pad`` characters (the padding stays unstyled)."""
        text = value if isinstance(value, _Styled) else one_line(value)
        padding = " " * max(0, pad - len(text))
        return _Styled((click.style(text, **STYLES[name]) if color and text else text) + padding)

    def clip(value: object, limit: int) -> _Styled:
        return _Styled(one_line(value, limit))

    def plural(count: int, word: str) -> str:
        return f"{count:,} {word}{'' if count == 1 else 's'}"

    env = template_environment(escaping(terminal_safe, _Styled))
    env.filters["style"] = style
    env.filters["clip"] = clip
    env.filters["plural"] = plural
    return env


def _order(f: Finding) -> tuple[int, bool, str, int, str]:
    return (-f.severity.rank, not f.new, f.path or "", f.line or 0, f.rule)


def notes(f: Finding, base: str | None) -> str:
    """What follows a finding's message: whether it is old or waived. (Its score is not
    repeated: the message of a pair finding says how similar it is, a rate finding's states
    the rate.)"""
    out = ""
    if base and not f.new:
        out += " (already present at the base)"
    return out + (" (waived)" if f.waived else "")


def where(f: Finding) -> str:
    """``path:line`` of a finding; the dataset name when it has no file."""
    if f.path:
        return f"{f.path}:{f.line}" if f.line else f.path
    return f.dataset or "-"


def render_text(report: Report, *, color: bool = False, max_listed: int = MAX_LISTED) -> str:
    """The report for a terminal. ``color``: ANSI styles (only for a terminal that wants them)."""
    findings = sorted(report.findings, key=_order)
    listed = findings[:max_listed]
    rest = findings[max_listed:]
    totals = report.counts_by_severity
    rest_totals = {s.value: sum(1 for f in rest if f.severity is s) for s in Severity}
    width = min(max((len(one_line(where(f))) for f in listed), default=0), 60)
    rule_width = max((len(f.rule) for f in listed), default=0)
    title_width = max((len(a.title) for a in report.audits), default=0)
    return _environment(color).get_template("report.txt.j2").render(
        report=report, failing=report.failing(), counts=report.counts, totals=totals, listed=listed,
        rest=rest, rest_totals=rest_totals, where=where, notes=notes, width=width, rule_width=rule_width,
        title_width=title_width, message_chars=MESSAGE_CHARS)
