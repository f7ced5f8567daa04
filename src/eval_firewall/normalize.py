"""Text normalization for exact matching: Unicode NFKC, case, whitespace, punctuation.

Punctuation and whitespace do not make two questions different; arithmetic does. So words and
numbers are kept, punctuation goes, and the operators of arithmetic are kept as tokens of their
own ("What is 5 + 3?" is not the same question as "What is 5 - 3?"). A hyphen between two
letters ("deep-sea") is punctuation; between numbers or spaces it is a minus.
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
_WORD_HYPHEN = re.compile(r"(?<=[^\W\d_])-(?=[^\W\d_])")
_TOKENS = re.compile(r"[^\W_]+|[-+*/=<>%^]")


_OPERATORS = "-+*/=<>%^"
# ASCII text (most rows) takes a path about three times faster, with the same result (a
# property test checks it): NFKC and casefold are lowercasing, and str.translate replaces the
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


def normalize_array(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """:func:`normalize` of every string in an Arrow array (no nulls), as a large_string array."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    texts = texts.cast(pa.large_string())
    if texts.null_count:
        raise ValueError("normalize_array: null texts")
    ascii_mask = pc.string_is_ascii(texts)
    n_ascii = pc.sum(ascii_mask).as_py() or 0
    if n_ascii == len(texts):
        return _normalize_ascii(texts)
    out = _normalize_ascii(pc.filter(texts, ascii_mask))
    others = pc.filter(texts, pc.invert(ascii_mask)).to_pylist()
    general = pa.array([_general(t) for t in others], pa.large_string())
    # Put both back in order: each row's position in (ASCII results + the others' results).
    mask = ascii_mask.to_numpy(zero_copy_only=False)
    order = np.empty(len(texts), np.int64)
    order[mask] = np.arange(n_ascii)
    order[~mask] = np.arange(n_ascii, len(texts))
    return pa.concat_arrays([out, general]).take(pa.array(order))


def _normalize_ascii(texts: pa.Array) -> pa.Array:
    import numpy as np
    import pyarrow as pa

    n = len(texts)
    if n == 0:
        return pa.array([], pa.large_string())
    _, offsets_buf, data_buf = texts.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64, count=n + 1, offset=texts.offset * 8)
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    starts = np.searchsorted(offsets, np.arange(offsets[0], offsets[-1], _CHUNK_BYTES),
                             side="right") - 1
    bounds = sorted({0, n, *np.maximum(starts, 0).tolist()})
    pieces = [_ascii_rows(data, offsets[a:b + 1]) for a, b in zip(bounds, bounds[1:])]
    return pa.concat_arrays(pieces) if len(pieces) > 1 else pieces[0]


def _ascii_rows(data: np.ndarray, offsets: np.ndarray) -> pa.Array:
    """The normalized texts of the rows whose bytes lie at ``offsets`` in ``data``."""
    import numpy as np
    import pyarrow as pa

    n = len(offsets) - 1
    lower, kind, letter = _byte_tables()
    low = lower[data[offsets[0]:offsets[-1]]]
    offsets = offsets - offsets[0]
    classes = kind[low]
    hyphens = np.flatnonzero(low == ord("-"))
    if len(hyphens):
        inner = hyphens[(hyphens > 0) & (hyphens < len(low) - 1)]
        inner = inner[letter[low[inner - 1]] & letter[low[inner + 1]]]
        # Not across two texts: the letter before must be in the hyphen's text, and the one after.
        inner = inner[~np.isin(inner, offsets) & ~np.isin(inner + 1, offsets)]
        classes[inner] = 0
    kept = np.flatnonzero(classes)
    cls = classes[kept]
    first = np.searchsorted(kept, offsets)         # each text's first kept byte, and the end
    space = np.zeros(len(kept), bool)
    space[1:] = (np.diff(kept) > 1) | (cls[1:] == 2) | (cls[:-1] == 2)
    space[first[:-1][first[:-1] < len(kept)]] = False
    spaces = np.zeros(len(kept) + 1, np.int64)
    np.cumsum(space, out=spaces[1:])
    out = np.full(len(kept) + int(spaces[-1]), ord(" "), np.uint8)
    out[np.arange(len(kept)) + spaces[1:]] = low[kept]
    new_offsets = first + spaces[first]
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(new_offsets), pa.py_buffer(out))
