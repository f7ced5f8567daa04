"""JSON Lines read by pyarrow's JSON reader, when that provably gives today's rows.

:func:`~eval_firewall.datasets.jsonl.read_jsonl` plus ``row_from_record`` parse a line at a
time in Python: exact, with a one-line problem for every bad record, but slow at a million rows.
:func:`read_columns` reads the needed top-level fields of a whole file as Arrow columns instead,
and only when cheap, vectorized checks show that the result equals the Python path's: every
non-empty line one JSON object (starting with ``{``, ending with ``}``), none too long or too
deeply bracketed, the file UTF-8 without ``\\r`` line breaks, no literal Python's JSON refuses,
and every row a row (text present, a non-blank string; id present and not empty; label, id and
provenance of a type whose text is reproduced exactly). Anything else returns None and the file
goes the exact way, which names each problem.
"""

from __future__ import annotations

import codecs
import json
import mmap
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..config import DatasetConfig, LimitsConfig
from ..rows import Provenance, Row
from .lines import BOM

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

COLUMNS = ("line", "row_id", "text", "label", "label_source", "verified_by", "generator")
_SCAN_BYTES = 1 << 22
# Two values on one line ("}{"), and the literals pyarrow takes but Python's json refuses; each
# tried only where a "}", "Inf" or "NaN" is.
_TWO_VALUES = re.compile(rb"\}[ \t]*\{")
_LITERAL_BEFORE = re.compile(rb"[:,\[][ \t]*-?\Z")
_CONTEXT = 256
_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)
_LF, _CR, _OPENING, _CLOSING = 1, 2, 3, 4      # kinds of byte the scan marks ("I", "N": theirs)
# Python's str.isspace() characters, for str.strip() and "is the text blank".
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
              "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def read_columns(path: Path, ds: DatasetConfig, limits: LimitsConfig, display: str
                 ) -> pa.Table | None:
    """A JSONL file's rows as columns (:data:`COLUMNS`), or None when only the exact path may
    read it (its rows or problems could differ)."""
    fields = _fields(ds)
    if fields is None or path.suffix.lower() == ".gz":
        return None
    try:
        size = path.stat().st_size
        if not 0 < size <= int(limits.max_file_bytes):
            return None
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            lines = _lines(mm, limits)
    except (OSError, ValueError):
        return None
    if lines is None:
        return None
    table = _parse(path, lines, fields, ds.text)
    if table is None:
        return None
    return _rows_table(table, lines.numbers, ds, display)


def _fields(ds: DatasetConfig) -> list[str] | None:
    """The top-level fields a row needs; None when one is a dotted path."""
    paths = [*ds.text, *(p for p in (ds.label, ds.id) if p)]
    if ds.provenance:
        paths.extend(p for p in ds.provenance.model_dump().values() if p)
    if any("." in p for p in paths):
        return None
    return list(dict.fromkeys(paths))


class _Lines(NamedTuple):
    numbers: np.ndarray     # the 1-based numbers of the non-empty lines
    head: int               # where line 1 starts (after a byte-order mark)
    longest: int            # the longest line's length in bytes
    first: bytes            # the first non-empty line


def _lines(mm: mmap.mmap, limits: LimitsConfig) -> _Lines | None:
    """The non-empty lines, when every line passes the checks; else None. Scanned a few
    megabytes at a time, each let go of once scanned (a huge file never sits in memory), with
    at most one index entry (8 bytes) per 8 bytes read (a file of tiny lines goes the exact
    way)."""
    import numpy as np

    raw = np.frombuffer(mm, np.uint8)
    head = len(BOM) if bytes(raw[:len(BOM)]) == BOM else 0
    decoder = codecs.getincrementaldecoder("utf-8")()
    breaks: list[np.ndarray] = []
    brackets: list[np.ndarray] = []
    last = head - 1                 # the last line break so far
    codes = _scan_codes()
    for start in range(0, len(raw), _SCAN_BYTES):
        chunk = raw[start:start + _SCAN_BYTES]
        marks = np.take(codes, chunk)           # one pass finds every byte the checks look at
        at = np.flatnonzero(marks)
        kinds = marks[at]
        at += start
        where, opening = at[kinds == _LF], at[kinds == _OPENING]
        if len(where) + len(opening) > len(chunk) // 8 + 1 or (kinds == _CR).any():
            return None
        ends = np.concatenate([where, [start + len(chunk)]])
        if (np.diff(ends, prepend=last) - 1 > int(limits.max_row_bytes)).any():
            return None
        try:
            if chunk.max() >= 0x80 or decoder.getstate()[0]:
                decoder.decode(chunk.tobytes())
        except UnicodeDecodeError:
            return None
        if _refused(raw, at[kinds == _CLOSING], at[kinds == ord("I")], at[kinds == ord("N")]):
            return None
        breaks.append(where)
        brackets.append(opening)
        last = int(where[-1]) if len(where) else last
        if _DONTNEED is not None and start >= _SCAN_BYTES:
            mm.madvise(_DONTNEED, start - _SCAN_BYTES, _SCAN_BYTES)   # the one before: done
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    return _checked_lines(raw, head, breaks, brackets, limits)


def _checked_lines(raw: np.ndarray, head: int, breaks: list[np.ndarray],
                   brackets: list[np.ndarray], limits: LimitsConfig) -> _Lines | None:
    """The non-empty lines between the scan's line breaks, when each is short enough, not
    bracketed too deeply, and one ``{...}``; else None."""
    import numpy as np

    newlines = np.concatenate(breaks)
    starts = np.concatenate([[head], newlines + 1])
    ends = np.concatenate([newlines, [len(raw)]])
    per_line = np.bincount(np.searchsorted(newlines, np.concatenate(brackets)),
                           minlength=len(starts))
    used = ends > starts
    starts, ends, per_line = starts[used], ends[used], per_line[used]
    if not len(starts):
        return None
    lengths = ends - starts
    if (lengths > int(limits.max_row_bytes)).any() or (per_line > limits.max_json_depth).any():
        return None
    if (raw[starts] != ord("{")).any() or (raw[ends - 1] != ord("}")).any():
        return None
    first = raw[starts[0]:ends[0]].tobytes()
    return _Lines(np.flatnonzero(used) + 1, head, int(lengths.max()), first)


def _scan_codes() -> np.ndarray:
    """A byte -> kind table for the scan (0: a byte no check looks at)."""
    import numpy as np

    codes = np.zeros(256, np.uint8)
    for byte, kind in ((b"\n", _LF), (b"\r", _CR), (b"{", _OPENING), (b"[", _OPENING),
                       (b"}", _CLOSING), (b"I", ord("I")), (b"N", ord("N"))):
        codes[byte[0]] = kind
    return codes


def _refused(raw: np.ndarray, closing: np.ndarray, capital_i: np.ndarray, capital_n: np.ndarray
             ) -> bool:
    """Do the bytes around these "}", "I" and "N" hold two values on one line, or a literal
    (``Inf``, ``-Inf``, ``-NaN``) that pyarrow reads and Python's json refuses?"""
    import numpy as np

    after = raw[np.minimum(closing + 1, len(raw) - 1)]
    if (after == ord("{")).any():
        return True
    for at in closing[(after == ord(" ")) | (after == ord("\t"))].tolist():
        if _TWO_VALUES.match(raw[at:at + _CONTEXT].tobytes()):
            return True
    for (_, second, third), found in ((b"Inf", capital_i), (b"NaN", capital_n)):
        found = found[found + 2 < len(raw)]
        found = found[(raw[found + 1] == second) & (raw[found + 2] == third)]
        for i in found.tolist():
            if third == ord("N") and not (i and raw[i - 1] == ord("-")):
                continue
            if third == ord("f") and raw[i + 3:i + 8].tobytes() == b"inity":
                continue
            before = raw[max(0, i - _CONTEXT):i].tobytes()
            if _LITERAL_BEFORE.search(before) or not before.strip(b" \t-"):
                return True
    return False


def _parse(path: Path, lines: _Lines, fields: list[str], texts: list[str]
           ) -> pa.Table | None:
    """The needed fields (``texts`` as strings, the others typed as the file's first row has
    them); None if pyarrow refuses the file or its row count is not the line count."""
    import pyarrow as pa
    import pyarrow.json as pj

    try:
        record = json.loads(lines.first)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    types = [pa.string() if f in texts else _arrow_type(record.get(f)) for f in fields]
    if any(t is None for t in types):
        return None
    schema = pa.schema([pa.field(f, t) for f, t in zip(fields, types)])
    try:
        with pa.input_stream(str(path)) as stream:
            stream.read(lines.head)
            table = pj.read_json(
                stream,
                read_options=pj.ReadOptions(block_size=max(1 << 20, lines.longest + 2)),
                parse_options=pj.ParseOptions(explicit_schema=schema, newlines_in_values=False,
                                              unexpected_field_behavior="ignore"))
    except (pa.ArrowException, ValueError, UnicodeError):
        return None
    return table if table.num_rows == len(lines.numbers) else None


def _arrow_type(value: Any) -> pa.DataType | None:
    """The Arrow type for a field whose first value is ``value``; None for a type whose text
    is not reproduced exactly (floats, objects, arrays)."""
    import pyarrow as pa

    if value is None or isinstance(value, str):
        return pa.string()
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int) and -(2 ** 63) <= value < 2 ** 63:
        return pa.int64()
    return None


def _rows_table(table: pa.Table, numbers: np.ndarray, ds: DatasetConfig, display: str
                ) -> pa.Table | None:
    """The rows as :data:`COLUMNS`: texts joined, id, label and provenance as text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = [table.column(f) for f in ds.text]
    if any(t.null_count for t in texts):
        return None
    text = pc.binary_join_element_wise(*texts, "\n") if len(texts) > 1 else texts[0]
    blank = "^[" + "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE) + "]*$"
    if pc.any(pc.match_substring_regex(text, blank)).as_py():
        return None
    if ds.id:
        row_id = _id_text(table.column(ds.id))
        if row_id is None:
            return None
    else:
        row_id = pa.array([f"{display}:{n}" for n in numbers.tolist()], pa.large_string())
    prov = ds.provenance.model_dump() if ds.provenance else {}
    columns = {
        "line": pa.array(numbers, pa.int64()), "row_id": row_id, "text": text,
        "label": _scalar_text(table, ds.label),
        **{key: _scalar_text(table, prov.get(key)) for key in COLUMNS[4:]},
    }
    return pa.table({k: v if k == "line" else pc.cast(v, pa.large_string())
                     for k, v in columns.items()})


def _id_text(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """``str(value)`` of every id; None if one is missing, null or empty."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.null_count:
        return None
    if pa.types.is_boolean(column.type):
        return pc.if_else(column, "True", "False")
    text = pc.cast(column, pa.string())
    if pc.any(pc.equal(text, "")).as_py():
        return None
    return text


def _scalar_text(table: pa.Table, name: str | None) -> pa.ChunkedArray | pa.Array:
    """``as_scalar_text`` of every value of a field: strings stripped (empty is null), numbers
    and booleans as Python prints them in JSON; no field is all null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not name:
        return pa.nulls(table.num_rows, pa.string())
    column = table.column(name)
    if pa.types.is_string(column.type):
        stripped = pc.utf8_trim(column, WHITESPACE)
        return pc.if_else(pc.equal(stripped, ""), pa.scalar(None, pa.string()), stripped)
    return pc.cast(column, pa.string())     # int64: str(); bool: "true"/"false"


def build_rows(table: pa.Table, name: str, role: str, display: str) -> list[Row]:
    """Rows from a table with :data:`COLUMNS`. Without any provenance in the file, the rows
    share one empty :class:`Provenance` (half the objects to build; rows are not mutated)."""
    line, row_id, text, label = (table.column(c).to_pylist() for c in COLUMNS[:4])
    if all(table.column(c).null_count == table.num_rows for c in COLUMNS[4:]):
        none = Provenance()
        return [Row(name, role, display, n, i, t, lab, none)
                for n, i, t, lab in zip(line, row_id, text, label)]
    prov = [table.column(c).to_pylist() for c in COLUMNS[4:]]
    return [Row(name, role, display, n, i, t, lab, Provenance(source, verified, generator))
            for n, i, t, lab, source, verified, generator in zip(line, row_id, text, label, *prov)]
