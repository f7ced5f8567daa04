"""Answer matchers: does a human's (or a model's) answer say the same as the label?

Four kinds, and ``auto`` to pick one from a dataset's labels:

- ``exact``: equal after :func:`~eval_firewall.text.normalize.normalize` (case, punctuation, spaces).
- ``numeric``: the final number of each side is equal within a tolerance. The final number is
  the one after GSM8K's ``#### `` marker when there is one, else the last number in the text;
  thousands separators, currency signs and units are ignored (``$1,200`` is 1200), and simple
  fractions and percentages are read (``3/4``, ``50%`` is 50).
- ``fuzzy``: rapidfuzz similarity of the normalized texts at or above a threshold (free text).
- ``choice``: the same choice letter (``B``, ``(b)``, ``B) Paris``, ``Answer: B``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Hashable, Literal

from rapidfuzz import fuzz

from .normalize import normalize
from .numbers import NUMBER_IN_ANSWER

Kind = Literal["exact", "numeric", "fuzzy", "choice"]
KINDS: tuple[str, ...] = ("exact", "numeric", "fuzzy", "choice")

_FINAL = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)
_CHOICES = (
    re.compile(r"\(?([A-J])\)?[.:)]?", re.IGNORECASE),                   # "B", "(b)", "B."
    re.compile(r"\(?([A-J])[).:]\s+\S.*", re.IGNORECASE | re.DOTALL),     # "B) Paris"
    re.compile(r"(?:the\s+)?(?:correct\s+)?(?:answer|option|choice)(?:\s+is)?\s*[:\-]?\s*"
               r"\(?([A-J])\)?(?:[.:)]|\s.*)?", re.IGNORECASE | re.DOTALL),  # "Answer: B"
)


def final_number(text: str | None) -> float | None:
    """The answer's final number (see the module docstring); None when there is none."""
    if not text:
        return None
    final = _FINAL.search(text)
    scope = final.group(1) if final else text
    found = list(NUMBER_IN_ANSWER.finditer(scope))
    if not found:
        return None
    last = found[-1]
    sign, digits, denominator = last.groups()
    if sign and re.search(r"[\d)]\s*$", scope[:last.start()]):
        sign = None   # "16 - 4" is a subtraction, not minus four
    digits = digits.replace(",", "")
    try:
        value = float(digits)
        if denominator:
            value = value / float(denominator) if float(denominator) else math.nan
    except ValueError:
        return None
    if math.isnan(value):
        return None
    return -value if sign else value


def choice_letter(text: str | None) -> str | None:
    """The choice letter an answer names (upper case), or None."""
    if not text:
        return None
    final = _FINAL.search(text)
    scope = (final.group(1) if final else text).strip()
    for pattern in _CHOICES:
        m = pattern.fullmatch(scope)
        if m:
            return m.group(1).upper()
    return None


@dataclass(frozen=True, slots=True)
class Matcher:
    """One configured way of comparing an answer with a label."""

    kind: Kind = "exact"
    tolerance: float = 1e-6
    fuzzy_threshold: float = 0.85

    @property
    def categorical(self) -> bool:
        """Whether answers fall into a small set of categories (so kappa is meaningful)."""
        return self.kind in ("exact", "choice")

    def key(self, text: str | None) -> Hashable | None:
        """The canonical form compared by ``exact``, ``numeric`` and ``choice``."""
        if text is None:
            return None
        if self.kind == "numeric":
            number = final_number(text)
            return number if number is not None else normalize(text)
        if self.kind == "choice":
            letter = choice_letter(text)
            return letter if letter is not None else normalize(text)
        return normalize(_final_text(text))

    def same(self, answer: str | None, label: str | None) -> bool:
        """Whether ``answer`` says the same as ``label`` (False when either is missing)."""
        if answer is None or label is None:
            return False
        if self.kind == "fuzzy":
            a, b = normalize(_final_text(answer)), normalize(_final_text(label))
            return fuzz.ratio(a, b) / 100.0 >= self.fuzzy_threshold
        x, y = self.key(answer), self.key(label)
        if isinstance(x, float) and isinstance(y, float):
            return math.isclose(x, y, rel_tol=self.tolerance, abs_tol=self.tolerance)
        return x == y

    def show(self, text: str | None) -> str:
        """A short display of what the matcher compares ("18" for a GSM8K solution)."""
        if text is None:
            return ""
        key = self.key(text) if self.kind in ("numeric", "choice") else None
        if isinstance(key, float):
            return f"{key:g}" if abs(key) < 1e15 else str(key)
        if isinstance(key, str) and self.kind == "choice" and len(key) == 1:
            return key
        return _final_text(text).strip()


def _final_text(text: str) -> str:
    final = _FINAL.search(text)
    return final.group(1) if final else text


def pick_kind(labels: Iterable[str | None], *, share: float = 0.9) -> Kind:
    """``auto``: the matcher that fits a dataset's labels.

    Choice letters when (at least ``share`` of) the labels are one; numeric when they end in
    GSM8K's ``#### n`` or are plain numbers; exact for short labels; fuzzy for free text.
    """
    values = [v for v in labels if v and v.strip()]
    if not values:
        return "exact"

    def most(test: Callable[[str], object]) -> bool:
        return sum(1 for v in values if test(v)) >= share * len(values)

    if most(lambda v: re.fullmatch(r"\s*\(?[A-Ja-j][).]?\s*", v)):
        return "choice"
    if most(lambda v: _FINAL.search(v) and final_number(v) is not None):
        return "numeric"
    if most(lambda v: re.fullmatch(r"\s*[-−]?\$?\s*[\d,]*\.?\d+\s*%?\s*", v)):
        return "numeric"
    words = sum(len(v.split()) for v in values) / len(values)
    return "exact" if words <= 3 else "fuzzy"


def make_matcher(kind: str, labels: Iterable[str | None], *, tolerance: float = 1e-6,
                 fuzzy_threshold: float = 0.85) -> Matcher:
    """The matcher a config asks for; ``auto`` looks at ``labels``."""
    chosen = pick_kind(labels) if kind == "auto" else kind
    if chosen not in KINDS:
        raise ValueError(f"unknown matcher {kind!r}")
    return Matcher(chosen, tolerance, fuzzy_threshold)  # type: ignore[arg-type]
