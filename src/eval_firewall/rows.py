"""Rows as the audits see them: text, label and provenance, with the location they came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


# Not frozen: rows are built by the million, and a frozen dataclass is much slower to
# construct. Treat them as immutable all the same.
@dataclass(slots=True)
class Provenance:
    """Where a row says it came from. Every value is optional."""

    label_source: str | None = None
    verified_by: str | None = None
    generator: str | None = None

    @property
    def is_empty(self) -> bool:
        """True when the row names no label source, verifier or generator."""
        return not (self.label_source or self.verified_by or self.generator)


@dataclass(slots=True)
class Row:
    """One dataset row.

    ``path`` is POSIX and relative to the repository root; ``line`` is the 1-based line of a
    text format (the header counts as line 1 in CSV) or the 1-based row number in Parquet.
    ``text`` is the configured text fields joined by a newline.
    """

    dataset: str
    role: str
    path: str
    line: int
    row_id: str
    text: str
    label: str | None = None
    provenance: Provenance = field(default_factory=Provenance)
    record: dict[str, Any] | None = None

    @property
    def location(self) -> str:
        """``path:line``, where the row is in its file."""
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A record that could not become a row: bad JSON, a missing or mistyped field."""

    dataset: str
    path: str
    line: int
    message: str
    field: str | None = None
