"""Renderers of a :class:`~eval_firewall.findings.Report`: Markdown, JSON, SARIF 2.1.0 and text.

The renderers are imported on first use, so that ``eval-firewall --help`` (which needs only
:data:`FORMATS`) stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..findings import Report

FORMATS = ("markdown", "json", "sarif", "text")

_NAMES = {"render_markdown": "markdown", "render_json": "json", "report_to_dict": "json",
          "load_report": "json", "render_sarif": "sarif", "render_text": "text"}


def render(report: Report, fmt: str, *, color: bool = False) -> str:
    """``color``: ANSI colour in the text format (for a terminal)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    renderer: Callable[..., str] = __getattr__(f"render_{fmt}")
    return renderer(report, color=color) if fmt == "text" else renderer(report)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FORMATS", "render", *_NAMES]
