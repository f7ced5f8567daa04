"""Text normalization for exact matching: Unicode NFKC, case, whitespace, punctuation.

Punctuation and whitespace do not make two questions different; arithmetic does. So words and
numbers are kept, punctuation goes, and the operators of arithmetic are kept as tokens of their
own ("What is 5 + 3?" is not the same question as "What is 5 - 3?"). A hyphen between two
letters ("deep-sea") is punctuation; between numbers or spaces it is a minus.

:func:`normalize_many` and :func:`normalize_array` give exactly ``normalize`` of each of many
texts, faster (about 3x for an Arrow column of a million): ASCII texts in numpy over their
bytes, the others once joined (a property test holds both to :func:`normalize`).
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

# After NFKC, the symbols that spell the same operator are made one.
_SAME_OPERATOR = str.maketrans({"−": "-", "–": "-", "×": "*", "÷": "/", "∕": "/"})
_SAME_OPERATOR_PAIRS = [(chr(k), v) for k, v in _SAME_OPERATOR.items()]
_WORD_HYPHEN = re.compile(r"(?<=[^\W\d_])-(?=[^\W\d_])")
_TOKENS = re.compile(r"[^\W_]+|[-+*/=<>%^]")


_OPERATORS = "-+*/=<>%^"
# ASCII text (most rows) takes a faster path with the same result (a property test checks
# it): NFKC and casefold are lowercasing, and str.translate replaces the
# regular expression.
_ASCII = {ord(c): " " for c in string.punctuation + "".join(map(chr, range(32))) + chr(127)}
_ASCII.update({ord(c): f" {c} " for c in _OPERATORS})


def normalize(text: str) -> str:
    """NFKC and casefolded; words, numbers and arithmetic operators, one space apart."""
    if text.isascii():
        lowered = text.lower()
        if "-" in lowered:
            lowered = _WORD_HYPHEN.sub(" ", lowered)
        return " ".join(lowered.translate(_ASCII).split())
    return _general(text)


def _general(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_SAME_OPERATOR)
    return " ".join(_TOKENS.findall(_WORD_HYPHEN.sub(" ", folded)))



# --- many texts at once ---------------------------------------------------------------------------
# The ASCII rule above on the bytes of an Arrow string array, a few megabytes at a time, in numpy:
# each byte is lowered and classed (0: a separator, 1: part of a word or number, 2: an operator);
# a hyphen with a letter either side in the same text is a separator (the lookaround, exactly);
# the kept bytes are written out with one space where a separator run or an operator split them.
_CHUNK_BYTES = 1 << 20     # small enough for the index arrays to stay in cache


@functools.cache
def _byte_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import numpy as np

    lower = np.arange(256, dtype=np.uint8)
    lower[ord("A"):ord("Z") + 1] += 32
    kind = np.zeros(256, np.uint8)
    for c in string.ascii_lowercase + string.digits:
        kind[ord(c)] = 1
    for c in _OPERATORS:
        kind[ord(c)] = 2
    letter = np.zeros(256, bool)
    letter[ord("a"):ord("z") + 1] = True
    return lower, kind, letter


def normalize_many(texts: Sequence[str]) -> list[str]:
    """``[normalize(t) for t in texts]``, with the ASCII texts normalized in bulk."""
    import pyarrow as pa

    result: list[str] = normalize_array(pa.array(texts, pa.large_string())).to_pylist()
    return result


def normalize_array(texts: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """:func:`normalize` of every string in an Arrow array (no nulls), as large strings."""
    import pyarrow as pa

    pieces: list[pa.Array] = []
    for chunk in texts.chunks if isinstance(texts, pa.ChunkedArray) else [texts]:
        chunk = chunk.cast(pa.large_string())
        if chunk.null_count:
            raise ValueError("normalize_array: null texts")
        pieces.extend(_normalize_large(chunk))
    return pa.chunked_array(pieces, pa.large_string())


_ROW = "\x00"
_TOKENS_AND_ROWS = re.compile(r"[^\W_]+|[-+*/=<>%^]|\x00")


def _general_many(texts: list[str]) -> list[str]:
    """``[_general(t) for t in texts]``, done once over the texts joined by NUL: NUL decomposes
    and composes with nothing, is no letter (so no hyphen rule reaches across it) and no
    token, so each text comes out as it would alone. Texts holding a NUL go one by one."""
    if not texts or any(_ROW in t for t in texts):
        return [_general(t) for t in texts]
    folded = unicodedata.normalize("NFKC", _ROW.join(texts)).casefold()
    for symbol, operator in _SAME_OPERATOR_PAIRS:     # str.translate, but faster on long text
        folded = folded.replace(symbol, operator)
    folded = _WORD_HYPHEN.sub(" ", folded)
    parts = " ".join(_TOKENS_AND_ROWS.findall(folded)).split(_ROW)
    return [p.strip(" ") for p in parts]


def _normalize_large(texts: pa.Array) -> list[pa.Array]:
    """:func:`normalize` of a large_string array, a megabyte of text at a time: every text as
    if it were ASCII, then the texts that are not put in (:func:`_general_many`)."""
    import numpy as np
    import pyarrow.compute as pc

    n = len(texts)
    if n == 0:
        return []
    _, offsets_buf, data_buf = texts.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64, count=n + 1, offset=texts.offset * 8)
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    ascii_text = pc.string_is_ascii(texts).to_numpy(zero_copy_only=False)
    starts = np.searchsorted(offsets, np.arange(offsets[0], offsets[-1], _CHUNK_BYTES),
                             side="right") - 1
    bounds = sorted({0, n, *np.maximum(starts, 0).tolist()})
    pieces = []
    for a, b in zip(bounds, bounds[1:]):
        piece = _ascii_rows(data, offsets[a:b + 1])
        others = np.flatnonzero(~ascii_text[a:b])
        if len(others):
            general = _general_many([texts[a + i].as_py() for i in others.tolist()])
            piece = _put_in(piece, others.tolist(), general)
        pieces.append(piece)
    return pieces


def _put_in(texts: pa.Array, rows: list[int], replacements: list[str]) -> pa.Array:
    """``texts`` (large strings) with those at ``rows`` (ascending) replaced."""
    import numpy as np
    import pyarrow as pa

    _, offsets_buf, data_buf = texts.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64, count=len(texts) + 1, offset=texts.offset * 8)
    data = memoryview(data_buf) if data_buf is not None else memoryview(b"")
    encoded = [r.encode("utf-8") for r in replacements]
    bounds = offsets.tolist()
    parts: list[bytes | memoryview] = []
    previous = 0
    for row, new in zip(rows, encoded):
        parts += [data[bounds[previous]:bounds[row]], new]
        previous = row + 1
    parts.append(data[bounds[previous]:bounds[-1]])
    sizes = np.diff(offsets)
    sizes[rows] = [len(e) for e in encoded]
    new_offsets = np.zeros(len(texts) + 1, np.int64)
    np.cumsum(sizes, out=new_offsets[1:])
    return pa.LargeStringArray.from_buffers(len(texts), pa.py_buffer(new_offsets),
                                            pa.py_buffer(b"".join(parts)))


def _first_kept(keep: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The first kept byte of each text [start, end) that has one. Most texts start with one;
    the others are stepped through a few bytes at a time, then searched one by one."""
    import numpy as np

    found = [starts[keep[starts]]]
    pending, stop = starts[~keep[starts]], ends[~keep[starts]]
    for _ in range(8):
        pending = pending + 1
        inside = pending < stop
        pending, stop = pending[inside], stop[inside]
        hit = keep[pending]
        found.append(pending[hit])
        pending, stop = pending[~hit], stop[~hit]
    for start, end in zip(pending.tolist(), stop.tolist()):
        at = int(np.argmax(keep[start:end]))
        if keep[start + at]:
            found.append(np.array([start + at]))
    return np.concatenate(found)


def _among(values: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """Which of ``values`` are in ``sorted_values``."""
    import numpy as np

    at = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    found: np.ndarray = sorted_values[at] == values
    return found


def _ascii_rows(data: np.ndarray, offsets: np.ndarray) -> pa.Array:
    """The normalized texts of the rows whose bytes lie at ``offsets`` in ``data``, as if they
    were ASCII (bytes past 0x7f are separators)."""
    import numpy as np
    import pyarrow as pa

    n = len(offsets) - 1
    lower, kind, letter = _byte_tables()
    low = np.take(lower, data[offsets[0]:offsets[-1]])
    offsets = offsets - offsets[0]
    classes = np.take(kind, low)
    hyphens = np.flatnonzero(low == ord("-"))
    if len(hyphens):
        inner = hyphens[(hyphens > 0) & (hyphens < len(low) - 1)]
        inner = inner[letter[low[inner - 1]] & letter[low[inner + 1]]]
        # Not across two texts: the letter before must be in the hyphen's text, and the one after.
        inner = inner[~_among(inner, offsets) & ~_among(inner + 1, offsets)]
        classes[inner] = 0
    keep = classes != 0
    # A space goes before a kept byte after a separator or an operator, or before an operator;
    # but not before the first kept byte of a text.
    space = np.zeros(len(low), bool)
    space[1:] = keep[1:] & ((classes[:-1] != 1) | (classes[1:] == 2))
    starts = offsets[:-1][offsets[:-1] < offsets[1:]]
    if not len(starts):
        return pa.array([""] * n, pa.large_string())
    space[_first_kept(keep, starts, offsets[1:][offsets[:-1] < offsets[1:]])] = False
    slots = np.empty(2 * len(low), np.uint8)
    slots[0::2] = ord(" ")
    slots[1::2] = low
    emitted = np.empty(2 * len(low), bool)
    emitted[0::2] = space
    emitted[1::2] = keep
    out = np.compress(emitted, slots)      # (faster than slots[emitted])
    sizes = np.zeros(n, np.int64)
    sizes[offsets[:-1] < offsets[1:]] = np.add.reduceat(keep.view(np.uint8) + space, starts,
                                                        dtype=np.int64)
    new_offsets = np.zeros(n + 1, np.int64)
    np.cumsum(sizes, out=new_offsets[1:])
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(new_offsets), pa.py_buffer(out))
