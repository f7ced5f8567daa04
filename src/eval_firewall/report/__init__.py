"""Renderers of a :class:`~eval_firewall.findings.Report`: Markdown, JSON and SARIF 2.1.0."""

from .json import load_report, render_json, report_to_dict
from .markdown import render_markdown
from .sarif import render_sarif

FORMATS = ("markdown", "json", "sarif")


def render(report, fmt: str) -> str:
    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "json":
        return render_json(report)
    if fmt == "sarif":
        return render_sarif(report)
    raise ValueError(f"unknown format {fmt!r}")


__all__ = ["FORMATS", "render", "render_markdown", "render_json", "render_sarif",
           "report_to_dict", "load_report"]
