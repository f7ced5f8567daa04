"""Renderers of a :class:`~eval_firewall.findings.Report`: Markdown, JSON, SARIF 2.1.0 and text."""

from .json import load_report, render_json, report_to_dict
from .markdown import render_markdown
from .sarif import render_sarif
from .text import render_text

FORMATS = ("markdown", "json", "sarif", "text")


def render(report, fmt: str, *, color: bool = False) -> str:
    """``color``: ANSI colour in the text format (for a terminal)."""
    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "json":
        return render_json(report)
    if fmt == "sarif":
        return render_sarif(report)
    if fmt == "text":
        return render_text(report, color=color)
    raise ValueError(f"unknown format {fmt!r}")


__all__ = ["FORMATS", "render", "render_markdown", "render_json", "render_sarif",
           "render_text",
           "report_to_dict", "load_report"]
