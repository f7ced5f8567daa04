"""Dotted-path access to nested record fields ("meta.label_source", "choices.0")."""

from __future__ import annotations

import json
from typing import Any

MISSING = object()


def get_path(record: Any, path: str) -> Any:
    """The value at a dotted ``path`` in a record (dict keys, list indexes); MISSING when absent."""
    node = record
    for part in path.split("."):
        if isinstance(node, dict):
            if part in node:
                node = node[part]
                continue
            return MISSING
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            continue
        return MISSING
    return node


def as_scalar_text(value: Any) -> str | None:
    """A label or provenance value as text; None for null/empty."""
    if value is None or value is MISSING:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value.strip() or None
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def top_level(path: str) -> str:
    """The first part of a dotted path (``meta`` of ``meta.label_source``)."""
    return path.split(".", 1)[0]


# How much of a name taken from a file an error message may show: short and printable only, so
# a message never quotes a file's contents (a secret read by mistake, an environment dump).
MAX_SHOWN_NAME = 64
MAX_SHOWN_NAMES = 8


def shown(value: object) -> str | None:
    """``value`` as text, if it is short and printable enough for an error message; else None."""
    text = str(value)
    if not text or len(text) > MAX_SHOWN_NAME or not text.isprintable():
        return None
    return text


def describe_columns(names: list[str]) -> str:
    """The columns of a header as an error message may show them: a few short printable
    names, else only how many there are."""
    quoted = [shown(n) for n in names]
    if len(names) <= MAX_SHOWN_NAMES and all(quoted):
        return "columns: " + ", ".join(q for q in quoted if q)
    return f"{len(names)} column{'s' if len(names) != 1 else ''}"
