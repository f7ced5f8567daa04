"""Spans: where the normalized words of a text lie in the text itself (code-point offsets), so a
match found on normalized words points at the original text."""

from __future__ import annotations

import re

from .normalize import normalize

_CHUNK = re.compile(r"\S+")


def word_offsets(text: str) -> list[tuple[int, int]]:
    """For each word of ``normalize(text)``, the code-point offsets (start, end) in ``text`` of
    the whitespace-delimited piece it came from."""
    out: list[tuple[int, int]] = []
    for m in _CHUNK.finditer(text):
        out.extend([(m.start(), m.end())] * len(normalize(m.group()).split()))
    return out


def char_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Code-point offsets in ``text`` of its normalized words ``start``..``end`` (exclusive).

    Normalizing piece by piece gives the same words as normalizing the whole text except where
    Unicode compatibility forms span whitespace (rare); there the span is clamped to the text.
    """
    offsets = word_offsets(text)
    if not offsets or start >= len(offsets):
        return 0, len(text)
    return offsets[start][0], offsets[min(end, len(offsets)) - 1][1]
