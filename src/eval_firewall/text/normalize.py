"""Text normalization for matching: hidden characters, homoglyphs, Unicode NFKC, case,
whitespace, punctuation.

What every matcher sees, in two strengths (the ``contain`` search tokenizes through here too):

- :func:`model_text`: the text with Unicode's default-ignorable code points removed (U+200B,
  U+00AD, U+FE0F, ...: :func:`strip_ignorable`). What the semantic model reads: a train row
  copied with a zero-width space between every character is the same text to it.
- :func:`normalize`: the key of exact, near-duplicate and containment matching. On top of the
  above, letters of another script inside a word are folded to the word's script
  (:func:`fold_homoglyphs`: a Cyrillic "а" in a Latin word becomes "a"), then NFKC, case,
  punctuation and spaces. Only mixed-script words are folded: a whole skeleton (m -> rn,
  0 -> O) would garble what a model reads and the numbers a row quotes.

:func:`disguise` says what a text hid (for the ``disguised-text`` notice); reports always show
the original text.

Punctuation and whitespace do not make two questions different; arithmetic does. So words and
numbers are kept, punctuation goes, and the operators of arithmetic are kept as tokens of their
own ("What is 5 + 3?" is not the same question as "What is 5 - 3?"). A hyphen between two
letters ("deep-sea") is punctuation; between numbers or spaces it is a minus.

:func:`normalize_many` and :func:`normalize_array` give exactly ``normalize`` of each of many
texts, faster (the docs' Benchmarks page has the figures): ASCII texts in numpy over their
bytes, the others once joined (a property test holds both to :func:`normalize`).
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

import regex

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


# Bumped whenever normalize() or model_text() give other texts: cached rows, indexes and
# results keyed by texts include it (datasets/cached.py, corpus.texts_fingerprint).
NORMALIZATION_VERSION = 2

# Unicode's Default_Ignorable_Code_Point: invisible, and meant to be ignored when matching.
_IGNORABLE = regex.compile(r"\p{Default_Ignorable_Code_Point}+")
# Scripts whose letters are confusable with one another (Unicode's confusables.txt); a word
# mixing them is folded to its own script.
_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")
_LETTERS = {"LATIN": regex.compile(r"\p{Latin}"), "CYRILLIC": regex.compile(r"\p{Cyrillic}"),
            "GREEK": regex.compile(r"\p{Greek}")}
_NOT_LATIN = regex.compile(r"[\p{Cyrillic}\p{Greek}]")
_WORD = regex.compile(r"\w+")


def strip_ignorable(text: str) -> str:
    """``text`` without default-ignorable code points (zero-width spaces and joiners, soft
    hyphens, variation selectors, bidi marks...)."""
    if text.isascii():
        return text
    stripped: str = _IGNORABLE.sub("", text)
    return stripped


def model_text(text: str) -> str:
    """The text a model reads: :func:`strip_ignorable` (homoglyphs are kept: folding them
    would change the words the model sees)."""
    return strip_ignorable(text)


def _script(char: str) -> str | None:
    """LATIN, CYRILLIC or GREEK for a letter of one of them; None otherwise."""
    name = unicodedata.name(char, "")
    first = name.split(" ", 1)[0]
    return first if first in _SCRIPTS else None


@functools.cache
def _fold_table() -> dict[tuple[str, str], str]:
    """(letter, script) -> the letter of that script it is confusable with: single lowercase
    letters of the confusables data, both ways (Cyrillic "а" -> Latin "a" and back)."""
    import json
    from importlib.resources import files

    data = json.loads(files("confusable_homoglyphs").joinpath("confusables.json")
                      .read_text(encoding="utf-8"))
    table: dict[tuple[str, str], str] = {}
    for char, glyphs in data.items():
        for glyph in glyphs:
            other = glyph["c"]
            if len(char) != 1 or len(other) != 1:
                continue
            pair = [(char, _script(char)), (other, _script(other))]
            if any(s is None or not c.isalpha() or c.casefold() != c for c, s in pair):
                continue
            script_a, script_b = _script(char), _script(other)
            if script_a and script_b and script_a != script_b:
                table.setdefault((char, script_b), other)
                table.setdefault((other, script_a), char)
    return table


def _majority(counts: dict[str, int]) -> str:
    """The script most letters are in (Latin on a tie)."""
    return max(counts, key=lambda s: (counts[s], s == "LATIN"))


def _fold_word(word: str, dominant: str) -> str:
    counts: dict[str, int] = {}
    for char in word:
        script = _script(char)
        if script:
            counts[script] = counts.get(script, 0) + 1
    if not counts:
        return word
    table = _fold_table()
    # To the text's script when each letter of another script has a look-alike there
    # (Cyrillic "а" alone for the English article "a", or most of "purpose" swapped);
    # otherwise a mixed word goes to the script most of its letters are in.
    if all((c, dominant) in table for c in word if _script(c) not in (None, dominant)):
        own = dominant
    elif len(counts) > 1:
        own = _majority(counts)
    else:
        return word
    return "".join(table.get((c, own), c) if _script(c) not in (None, own) else c
                   for c in word)


def fold_homoglyphs(text: str) -> str:
    """Letters of another script in a text mixing Latin, Cyrillic and Greek, replaced by their
    look-alikes (Unicode's confusables): a word goes to the text's script (the one most of its
    letters are in) when each of its letters of another script has a look-alike there, else a
    word mixing scripts goes to the script most of its own letters are in. Expects casefolded
    text (:func:`normalize` folds after casefolding)."""
    if text.isascii() or not _NOT_LATIN.search(text):
        return text
    counts = {s: len(p.findall(text)) for s, p in _LETTERS.items()}
    if sum(1 for n in counts.values() if n) < 2:
        return text
    dominant = _majority({s: n for s, n in counts.items() if n})
    folded: str = _WORD.sub(lambda m: _fold_word(m.group(), dominant), text)
    return folded


def disguise(text: str) -> str | None:
    """What ``text`` hides from a reader, or None: invisible characters, letters of another
    script inside a word. Names the characters by code point, never quotes them."""
    if text.isascii():
        return None
    parts = []
    hidden = [c for run in _IGNORABLE.finditer(text) if not _in_emoji(text, run)
              for c in run.group()]
    if hidden:
        parts.append(f"{len(hidden):,} invisible character{'s' if len(hidden) != 1 else ''} "
                     f"({_names(hidden)})")
    folded = text.casefold()
    swapped = [a for a, b in zip(folded, fold_homoglyphs(folded)) if a != b]
    if swapped:
        parts.append(f"{len(swapped):,} look-alike letter{'s' if len(swapped) != 1 else ''} "
                     f"of another script ({_names(swapped)})")
    return " and ".join(parts) or None


def _in_emoji(text: str, run: regex.Match[str]) -> bool:
    """Whether invisible characters join or style symbols (an emoji's variation selector or
    zero-width joiner), where they hide nothing; next to letters and digits they can."""
    before = text[run.start() - 1] if run.start() else ""
    after = text[run.end()] if run.end() < len(text) else ""
    return any(unicodedata.category(c).startswith("S") for c in (before, after) if c)


def _names(chars: list[str], most: int = 3) -> str:
    seen = list(dict.fromkeys(chars))
    named = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, 'unnamed')}" for c in seen[:most])
    return named + (f" and {len(seen) - most} more" if len(seen) > most else "")


def normalize(text: str) -> str:
    """The matching key: hidden characters removed, mixed-script words folded, NFKC and
    casefolded; words, numbers and arithmetic operators, one space apart."""
    if text.isascii():
        lowered = text.lower()
        if "-" in lowered:
            lowered = _WORD_HYPHEN.sub(" ", lowered)
        return " ".join(lowered.translate(_ASCII).split())
    return _general(text)


def _general(text: str) -> str:
    folded = unicodedata.normalize("NFKC", _IGNORABLE.sub("", text)).casefold()
    folded = fold_homoglyphs(folded).translate(_SAME_OPERATOR)
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
    folded = unicodedata.normalize("NFKC", _IGNORABLE.sub("", _ROW.join(texts))).casefold()
    folded = _ROW.join(map(fold_homoglyphs, folded.split(_ROW)))    # each text's own scripts
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
