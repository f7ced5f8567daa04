"""Dataset text is untrusted: make it inert in Markdown.

No HTML, no links or images, no @-mentions or #-references, no table breakage: the text
reads the same to a person and does nothing else.
"""

from __future__ import annotations

import html
import re

ZWSP = "\u200b"
_SPECIAL = re.compile(r"([\\`*_\[\]()!|~{}#+\-=^$])")
_AUTOLINK = re.compile(r"(?i)(://|www\.)")
_MENTION = re.compile(r"([@#])(?=\w)")
_SPACE = re.compile(r"\s+")


def escape_plain(text: object, limit: int | None = None) -> str:
    """One line of plain text (check run titles, annotations): no mentions, no autolinks."""
    if text is None:
        return ""
    value = _SPACE.sub(" ", str(text)).strip()
    if limit is not None and len(value) > limit:
        value = value[: limit - 1].rstrip() + "…"
    value = _MENTION.sub(lambda m: m.group(1) + ZWSP, value)
    return _AUTOLINK.sub(lambda m: m.group(1)[0] + ZWSP + m.group(1)[1:], value)


def escape_md(text: object, limit: int | None = None) -> str:
    """One line of inert Markdown (safe in a table cell, a list item or a summary)."""
    if text is None:
        return ""
    value = _SPECIAL.sub(r"\\\1", escape_plain(text, limit))
    return html.escape(value, quote=False)
