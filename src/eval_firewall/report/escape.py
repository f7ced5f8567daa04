"""Dataset text is untrusted: make it inert in Markdown, in JSON and on one line.

No HTML, no links or images (not even GitHub's autolinks of ``https://``, ``www.`` and e-mail
addresses), no @-mentions or #-references, no table breakage, no control or bidi character
(shown as a visible escape such as ``\\u202e``), no line that starts a workflow command: the
text reads the same to a person and does nothing else. A fork's report artifact is rendered
through the same functions.
"""

from __future__ import annotations

import html
import re

from ..safeio.terminal import BIDI, inert

ZWSP = "\u200b"
_SPECIAL = re.compile(r"([\\`*_\[\]()!|~{}#+\-=^$])")
_AUTOLINK = re.compile(r"(?i)(://|www\.)")
_MENTION = re.compile(r"([@#])(?=\w)")
_SPACE = re.compile(r"\s+")
# Left raw by json.dumps(ensure_ascii=False): DEL, C1, bidi controls, line separators.
_JSON_RAW = re.compile(f"[\x7f-\x9f{BIDI}\u2028\u2029]")


def escape_plain(text: object, limit: int | None = None) -> str:
    """One line of plain text (check run titles, annotations): no mentions, no autolinks,
    no control or bidi character."""
    if text is None:
        return ""
    value = inert(_SPACE.sub(" ", str(text)).strip())
    if limit is not None and len(value) > limit:
        value = value[: limit - 1].rstrip() + "…"
    value = _MENTION.sub(lambda m: m.group(1) + ZWSP, value)
    return _AUTOLINK.sub(lambda m: m.group(1)[0] + ZWSP + m.group(1)[1:], value)


def escape_md(text: object, limit: int | None = None) -> str:
    """One line of inert Markdown (safe in a table cell, a list item, a heading or a summary)."""
    if text is None:
        return ""
    value = _SPECIAL.sub(r"\\\1", escape_plain(text, limit))
    if value.startswith(":"):     # a line of its own must not read as ``::command::``
        value = "\\" + value
    return html.escape(value, quote=False)


def escape_json(text: str) -> str:
    """Rendered JSON (or SARIF) with the characters ``json.dumps`` leaves raw escaped as
    ``\\uXXXX``: the same data, but no bidi or C1 control in the file. They can only occur
    inside JSON strings, where the escape means the same character."""
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
