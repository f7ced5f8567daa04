"""Rows as the audits see them: text, label and provenance, with the location they came from."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload


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


# The problem of a row whose text fields are there but empty: not unreadable, its own rule
# (``empty-text``) in the schema audit.
EMPTY_TEXT = "text field is empty"


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A record that could not become a row: bad JSON, a missing or mistyped field.

    ``digest``: a hash of the record's bytes (or of its parsed content), so that a waiver of
    one broken row covers no other. ``count`` > 1: the problem stands for that many rows of
    the file past the ones listed one by one (``digest`` then covers all of them).
    """

    dataset: str
    path: str
    line: int
    message: str
    field: str | None = None
    digest: str | None = None
    count: int = 1


def row_ids(rows: Sequence[Row]) -> list[str]:
    """Every row's id; rows kept as columns (the train index's) give them without building
    rows, and none at all when their ids are known distinct (the common case)."""
    distinct = getattr(rows, "distinct", None)
    if distinct is not None and distinct("row_id"):
        return []
    column = getattr(rows, "column", None)
    if column is not None:
        ids: list[str] = column("row_id")
        return ids
    return [r.row_id for r in rows]


def rows_with_generator(rows: Sequence[Row]) -> Iterator[Row]:
    """The rows that name a generator; rows kept as columns build only those."""
    present = getattr(rows, "indices_with", None)
    if present is not None:
        return (rows[int(i)] for i in present("generator"))
    return (r for r in rows if r.provenance.generator)


def none_has(rows: Sequence[Row], name: str) -> bool:
    """Whether no row has a value for ``name`` (``label``, or a provenance field); rows kept
    as columns answer from the column."""
    all_null = getattr(rows, "all_null", None)
    if all_null is not None:
        answer: bool = all_null(name)
        return answer
    if name == "label":
        return all(r.label is None for r in rows)
    return all(getattr(r.provenance, name) is None for r in rows)


def texts_of(rows: Sequence[Row]) -> list[str]:
    """Every row's text; rows kept as columns give them without building rows."""
    column = getattr(rows, "column", None)
    if column is not None:
        texts: list[str] = column("text")
        return texts
    return [r.text for r in rows]


class RowSegments(Sequence[Row]):
    """Several row sequences read as one (e.g. a train index's rows of unchanged files, and
    rows read from the files a change touched), none of them copied."""

    def __init__(self, segments: Sequence[Sequence[Row]]) -> None:
        self.segments = [s for s in segments if len(s)]
        self._starts = [0]
        for segment in self.segments:
            self._starts.append(self._starts[-1] + len(segment))

    def __len__(self) -> int:
        return self._starts[-1]

    @overload
    def __getitem__(self, j: int) -> Row: ...
    @overload
    def __getitem__(self, j: slice) -> list[Row]: ...

    def __getitem__(self, j: int | slice) -> Row | list[Row]:
        if isinstance(j, slice):
            return [self[i] for i in range(*j.indices(len(self)))]
        import bisect

        if j < 0:
            j += len(self)
        if not 0 <= j < len(self):
            raise IndexError(j)
        s = bisect.bisect_right(self._starts, j) - 1
        return self.segments[s][j - self._starts[s]]

    def __iter__(self) -> Iterator[Row]:
        for segment in self.segments:
            yield from segment

    def column(self, name: str) -> list[Any]:
        """One field of every row (``text``, ``row_id``), by segment."""
        out: list[Any] = []
        for segment in self.segments:
            column = getattr(segment, "column", None)
            out.extend(column(name) if column is not None else
                       [getattr(r, name) for r in segment])
        return out
