"""One side of the overlap audit: its rows, their normalized texts and a content fingerprint.

A :class:`Corpus` is built once per side (eval, train) and handed to the overlap audit and its
hit finders, so no stage normalizes or hashes the texts again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from ..rows import Row
from ..text.normalize import NORMALIZATION_VERSION, model_text, normalize_many


class Normalized(Protocol):
    """A dataset's rows and, when a cache provided them, their normalized texts."""

    @property
    def rows(self) -> list[Row]:
        """The rows."""

    @property
    def norm(self) -> list[str] | None:
        """Normalized texts, one per row, or None."""


def text_digest(text: str) -> str:
    """A short content hash of one text (a cache key for one eval row's result)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


def texts_fingerprint(texts: Sequence[str], chunk: int = 10_000) -> str:
    """A content key for an ordered list of texts (hashed in chunks: fast, little memory)."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"normalization/{NORMALIZATION_VERSION}\n".encode())   # keys change with it
    for start in range(0, len(texts), chunk):
        piece = texts[start:start + chunk]
        h.update(",".join(map(str, map(len, piece))).encode())   # no two lists hash alike
        h.update("\x1e".join(piece).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class Corpus:
    """Rows with their normalized texts (same length, same order); derived values on demand."""

    rows: Sequence[Row]
    norm: Sequence[str]

    def __post_init__(self) -> None:
        """Check that every row has its normalized text."""
        if len(self.rows) != len(self.norm):
            raise ValueError(f"{len(self.rows)} rows but {len(self.norm)} normalized texts")

    @classmethod
    def of(cls, rows: Sequence[Row]) -> Corpus:
        """A corpus of rows, normalizing their texts."""
        return cls(rows, normalize_many([r.text for r in rows]))

    @classmethod
    def of_datasets(cls, datasets: Iterable[Normalized]) -> Corpus:
        """The rows of several datasets in order, reusing normalized texts a cache provided."""
        rows: list[Row] = []
        norm: list[str] = []
        for d in datasets:
            rows.extend(d.rows)
            norm.extend(d.norm if d.norm is not None else normalize_many([r.text for r in d.rows]))
        return cls(rows, norm)

    def __len__(self) -> int:
        """The number of rows."""
        return len(self.rows)

    @cached_property
    def texts(self) -> list[str]:
        """The rows' texts as a model reads them (:func:`~.normalize.model_text`: no
        invisible characters); reports show ``rows[i].text``, the original."""
        return [model_text(r.text) for r in self.rows]

    @cached_property
    def fingerprint(self) -> str:
        """A content key of the rows' texts, in order (computed once)."""
        return texts_fingerprint(self.texts)

    def subset(self, indices: Sequence[int]) -> Corpus:
        """The rows at ``indices``, in that order."""
        return Corpus([self.rows[i] for i in indices], [self.norm[i] for i in indices])
