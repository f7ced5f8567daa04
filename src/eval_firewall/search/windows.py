"""Windows of long train rows, so the paraphrase search can find a rephrasing quoted inside one.

One embedding of a long document is diluted by everything else in it, so a train row far longer
than the eval rows (``min_ratio`` times the window) is replaced, for the paraphrase search only,
by its paragraphs (split at blank lines), and a paragraph that is itself that long by overlapping
windows of about the eval rows' median length (:func:`window_length`; half a window apart, the
last one ending at the paragraph's end). Every passage of up to half a window is then whole inside
one window, and a passage of one window's length is at least three quarters inside one. Rows
no longer than that stay whole. A hit on a window is a hit on its row, naming the window.
"""

from __future__ import annotations

import bisect
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..overlap.corpus import Corpus
from ..rows import Row
from ..text.spans import word_offsets

MIN_WINDOW = 8      # words: no window is shorter
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n")


@dataclass(frozen=True)
class Windows:
    """The units the paraphrase search indexes: whole rows and windows of long rows."""

    corpus: Corpus                          # one row per unit (a window's row holds its text)
    row: list[int]                          # unit -> train row
    words: list[tuple[int, int] | None]     # unit -> its words in the row (None: the whole row)
    unit_of: dict[int, int]                 # train row kept whole -> its unit

    @property
    def windowed_rows(self) -> int:
        """How many train rows are searched in windows."""
        return len(set(self.row)) - len(self.unit_of)


def word_count(norm: str) -> int:
    """Words of a normalized text."""
    return norm.count(" ") + 1 if norm else 0


def window_length(eval_norm: Sequence[str]) -> int:
    """The window, in words: the eval rows' median length rounded to a power of two (at least
    :data:`MIN_WINDOW`). Rounded, so a few changed eval rows do not change the windows (and
    the train side's cached vectors with them)."""
    counts = [word_count(t) for t in eval_norm if t]
    if not counts:
        return MIN_WINDOW
    return max(MIN_WINDOW, 1 << round(math.log2(max(1.0, statistics.median(counts)))))


def starts(words: int, window: int) -> list[int]:
    """First words of the windows over a row of ``words`` words."""
    step = max(1, window // 2)
    out = list(range(0, max(1, words - window + 1), step))
    if out[-1] + window < words:
        out.append(words - window)
    return out


def units_of(text: str, offsets: Sequence[tuple[int, int]], window: int, limit: float
             ) -> list[tuple[int, int]]:
    """Word ranges of one long row: its paragraphs (split at blank lines), each one whole when
    at most ``limit`` words long, else in sliding windows of ``window`` words."""
    breaks = [m.start() for m in _PARAGRAPH.finditer(text)]
    out: list[tuple[int, int]] = []
    first = 0
    for k in range(1, len(offsets) + 1):
        if k < len(offsets) and bisect.bisect(breaks, offsets[k][0]) == bisect.bisect(
                breaks, offsets[first][0]):
            continue
        if k - first <= limit:
            out.append((first, k))
        else:
            out.extend((first + s, min(first + s + window, k)) for s in starts(k - first, window))
        first = k
    return out


def windows_of(train: Corpus, window: int, min_ratio: float, max_windows: int) -> Windows | None:
    """The train corpus as paraphrase-search units, windows of ``window`` words; None when no
    row is long enough to window (or the windows would exceed ``max_windows``: then rows stay
    whole). A corpus with its own ``windows`` method (the train index's) answers itself,
    from arrays."""
    own = getattr(train, "windows", None)
    if callable(own):
        found: Windows | None = own(window, min_ratio, max_windows)
        return found
    limit = min_ratio * window
    long_rows = [j for j, norm in enumerate(train.norm) if word_count(norm) > limit]
    if not long_rows:
        return None
    total = sum(len(starts(word_count(train.norm[j]), window)) for j in long_rows)  # about
    if total + len(train) - len(long_rows) > max_windows:
        return None
    is_long = set(long_rows)
    rows: list[Row] = []
    norms: list[str] = []
    unit_row: list[int] = []
    unit_words: list[tuple[int, int] | None] = []
    unit_of: dict[int, int] = {}
    for j, (row, norm) in enumerate(zip(train.rows, train.norm)):
        if j not in is_long:
            unit_of[j] = len(unit_row)
            rows.append(row)
            norms.append(norm)
            unit_row.append(j)
            unit_words.append(None)
            continue
        offsets = word_offsets(row.text)
        words = norm.split()
        count = min(len(words), len(offsets))
        for first, last in units_of(row.text, offsets[:count], window, limit):
            text = row.text[offsets[first][0]:offsets[last - 1][1]]
            rows.append(replace(row, text=text))
            norms.append(" ".join(words[first:last]))
            unit_row.append(j)
            unit_words.append((first, last))
    return Windows(Corpus(rows, norms), unit_row, unit_words, unit_of)
