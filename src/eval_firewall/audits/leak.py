"""Leak kinds: does the train row hold the eval row's answer as well as its question?

A train row holding an eval item teaches a model the question (``input``); holding the eval
row's own label next to it teaches the answer (``input+label``), the worse leak: a model can
score on that item by recall alone. The label counts when the eval row's configured ``label``
value (normalized) is found in the same train row:

- in its label field, or any other field the reader kept;
- or in its text within ``window`` words before or after the shared span (outside the span
  itself, so an option letter quoted inside the item is not its answer). For a whole-row match
  (exact, near or paraphrased copy) that is the train row's text, unless the label is inside
  the eval item's own text (then the text cannot tell).

A label of up to :data:`EXACT_WORDS` words must appear word for word; a longer one (a worked
solution) counts when at least half of its :data:`EXACT_WORDS`-word n-grams appear.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..rows import Row
from ..text.normalize import normalize

INPUT = "input"
INPUT_LABEL = "input+label"
EXACT_WORDS = 8


def _has(words: Sequence[str], label: Sequence[str]) -> bool:
    """Whether ``label`` (normalized words) is in ``words``: word for word when short, else at
    least half of its n-grams."""
    if not label or not words:
        return False
    if len(label) <= EXACT_WORDS:
        return f" {' '.join(label)} " in f" {' '.join(words)} "
    n = EXACT_WORDS
    wanted = {tuple(label[k:k + n]) for k in range(len(label) - n + 1)}
    have = {tuple(words[k:k + n]) for k in range(len(words) - n + 1)}
    return len(wanted & have) >= 0.5 * len(wanted)


def leak_kind(eval_row: Row, train_row: Row, span: tuple[int, int] | None, window: int) -> str:
    """``input+label`` when ``train_row`` holds ``eval_row``'s label near the shared text
    (``span``: its words in the train row's normalized text; None: the whole row), else
    ``input``."""
    label = normalize(eval_row.label or "").split()
    if not label:
        return INPUT
    fields = [train_row.label or ""]
    if train_row.record:
        fields += [v for v in train_row.record.values()        # its text fields are below
                   if isinstance(v, str) and v not in train_row.text]
    if any(_has(normalize(value).split(), label) for value in fields if value):
        return INPUT_LABEL
    words = normalize(train_row.text).split()
    if span is None:
        if _has(normalize(eval_row.text).split(), label):
            return INPUT
        return INPUT_LABEL if _has(words, label) else INPUT
    start, end = span
    before, after = words[max(0, start - window):start], words[end:end + window]
    return INPUT_LABEL if _has(before, label) or _has(after, label) else INPUT
