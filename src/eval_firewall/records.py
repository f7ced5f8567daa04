"""Data the human and model audits read: annotation sheet lines, perturbed prompts and the
model's predictions for them. Values only: reading and writing them is done elsewhere
(:mod:`.annotations`, :mod:`.predictions`, :mod:`.perturb`)."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass

from .rows import Row


@dataclass(frozen=True, slots=True)
class Annotation:
    """One filled (or empty) line of a sheet."""

    path: str           # the sheet, POSIX, relative to the repository root
    line: int           # 1-based line of the sheet
    dataset: str | None
    row_id: str
    annotator: str
    answer: str | None  # None when empty
    sha: str | None     # content hash at sampling time; None when the sheet has none

    @property
    def location(self) -> str:
        """``path:line`` of the sheet line."""
        return f"{self.path}:{self.line}"


def row_sha(row: Row) -> str:
    """Content hash of a row's text and label (Unicode- and whitespace-insensitive)."""
    def canon(value: str | None) -> str:
        return " ".join(unicodedata.normalize("NFKC", value or "").split())
    data = canon(row.text) + "\x1f" + canon(row.label)
    return hashlib.blake2b(data.encode("utf-8"), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class Variant:
    """A prompt sent to the model: an original row's text, or one perturbation of it."""

    id: str                   # "<row id>~<kind>"
    row: Row
    kind: str                 # "original" or one of KINDS
    prompt: str
    label: str | None         # the row's label, remapped for ``options``
    letters: tuple[tuple[str, str], ...] = ()   # options: (variant letter, original letter)

    @property
    def sha(self) -> str:
        """The prompt's content hash."""
        return prompt_sha(self.prompt)

    def original_letter(self, letter: str) -> str:
        """The original option letter of a letter chosen in this variant."""
        return dict(self.letters).get(letter, letter)


def prompt_sha(prompt: str) -> str:
    """Content hash of a prompt's text, as a predictions file echoes it."""
    return hashlib.blake2b(prompt.encode("utf-8"), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class Prediction:
    """One line of a predictions file: the model's answer to one prompt."""

    id: str
    prediction: str | None
    sha: str | None
    path: str
    line: int
