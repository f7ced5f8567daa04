"""Rows from parsed records: the configured fields (text, label, id, provenance) picked out of a
record into a :class:`~eval_firewall.rows.Row`, or the :class:`~eval_firewall.rows.RowProblem`
that stops it."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from ..config.model import DatasetConfig
from ..rows import EMPTY_TEXT, Provenance, Row, RowProblem
from .fields import MISSING, as_scalar_text, get_path
from .lines import line_digest


def row_from_record(ds: DatasetConfig, record: dict[str, Any], display: str, line: int,
                    keep_record: bool) -> Row | RowProblem:
    """The row a parsed record makes, or the problem that stops it (with the record's
    digest: :func:`record_digest`)."""
    made = _row_from_record(ds, record, display, line, keep_record)
    if isinstance(made, RowProblem):
        return replace(made, digest=record_digest(record))
    return made


def record_digest(record: dict[str, Any]) -> str:
    """A hash of a parsed record's content (keys sorted): an unreadable row's identity."""
    return line_digest(json.dumps(record, sort_keys=True, ensure_ascii=True, default=repr))


def _row_from_record(ds: DatasetConfig, record: dict[str, Any], display: str, line: int,
                     keep_record: bool) -> Row | RowProblem:
    parts = []
    for text_field in ds.text:
        value = get_path(record, text_field)
        if value is MISSING or value is None:
            return RowProblem(ds.name, display, line, "text field is missing", text_field)
        if not isinstance(value, str):
            return RowProblem(ds.name, display, line,
                              f"text field must be a string, got {type(value).__name__}",
                              text_field)
        parts.append(value)
    text = "\n".join(parts)
    if not text.strip():
        return RowProblem(ds.name, display, line, EMPTY_TEXT, ds.text[0])
    label = None
    if ds.label:
        label = as_scalar_text(get_path(record, ds.label))
    row_id = f"{display}:{line}"
    if ds.id:
        value = get_path(record, ds.id)
        if value is MISSING or value is None or value == "":
            return RowProblem(ds.name, display, line, "id field is missing", ds.id)
        if isinstance(value, (dict, list)):
            return RowProblem(ds.name, display, line, "id must be a string or a number", ds.id)
        row_id = str(value)
    provenance = Provenance()
    if ds.provenance:
        provenance = Provenance(**{
            key: as_scalar_text(get_path(record, path)) if path else None
            for key, path in ds.provenance.model_dump().items()
        })
    broken = _not_unicode(ds, parts, label, row_id if ds.id else None, provenance)
    if broken is not None:
        return RowProblem(ds.name, display, line, "holds an unpaired surrogate escape (\\ud800 "
                          "to \\udfff alone): not Unicode text", broken)
    return Row(ds.name, ds.role, display, line, row_id, text, label, provenance,
               record if keep_record else None)


# A code point JSON can escape ("\ud800") but no UTF-8 text can hold: half of a surrogate pair
# (a whole pair decodes to one character). Such a string cannot be written, hashed as UTF-8 or
# put in an Arrow column, so its row is a problem, not a row.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _not_unicode(ds: DatasetConfig, texts: list[str], label: str | None, row_id: str | None,
                 provenance: Provenance) -> str | None:
    """The configured field of a row whose value holds an unpaired surrogate, if any."""
    named: list[tuple[str | None, str | None]] = [*zip(ds.text, texts), (ds.label, label),
                                                   (ds.id, row_id)]
    if ds.provenance:
        paths = ds.provenance.model_dump()
        named += [(paths[key], getattr(provenance, key)) for key in paths]
    return next((f for f, v in named if f and v is not None and _SURROGATE.search(v)), None)
