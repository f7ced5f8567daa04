"""The JSON Lines reader, and the JSON checks it shares with the JSON array reader (nesting
depth, a value's extent, one line parsed)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config.model import LimitsConfig
from .lines import (
    BadRecord,
    Record,
    _kind,
    decode_line,
    iter_lines,
    line_digest,
    open_binary,
    too_deep_message,
    too_long_message,
)

# A JSON string (escapes included) or a bracket: strings are skipped, so brackets in them do
# not count.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def json_too_deep(text: str, max_depth: int, start: int = 0) -> bool:
    """Does the JSON in ``text`` nest arrays/objects deeper than ``max_depth``? A scan of the
    brackets (no recursion), so ``json.loads`` is only ever given what it can decode."""
    if text.count("[", start) + text.count("{", start) <= max_depth:
        return False
    depth = 0
    for match in _JSON_TOKENS.finditer(text, start):
        token = match.group()
        if token == "[" or token == "{":
            depth += 1
            if depth > max_depth:
                return True
        elif token == "]" or token == "}":
            depth -= 1
    return False


def _json_value_end(text: str, start: int) -> int:
    """Where the array or object starting at ``start`` ends (brackets balanced), or the end of
    the text; used to step over an element too deep to decode."""
    depth = 0
    for match in _JSON_TOKENS.finditer(text, start):
        token = match.group()
        if token == "[" or token == "{":
            depth += 1
        elif token == "]" or token == "}":
            depth -= 1
            if depth == 0:
                return match.end()
    return len(text)


def parse_json_line(line: str, limits: LimitsConfig) -> Any:
    """``json.loads`` for one line, after the depth check; raises json.JSONDecodeError or
    ValueError (too deep)."""
    if json_too_deep(line, limits.max_json_depth):
        raise ValueError(too_deep_message(limits))
    return json.loads(line)


def read_jsonl(path: Path, limits: LimitsConfig | None = None, display: str | None = None
               ) -> Iterator[tuple[int, Record | BadRecord]]:
    """JSON Lines: (line number, object) per non-blank line; bad JSON, a line over the row
    limit or nested too deeply, or a value that is not an object is a :class:`BadRecord`."""
    limits = limits or LimitsConfig()
    display = display or str(path)
    depth, loads = limits.max_json_depth, json.loads
    skipped: list[str] = []
    with open_binary(path, limits, display) as fh:
        for number, raw in iter_lines(fh, int(limits.max_row_bytes), digests=skipped):
            if raw is None:
                yield number, BadRecord(too_long_message(limits), digest=skipped.pop())
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                decode_line(raw, number, display)       # raises the error naming the column
            if not line.strip():
                continue
            # The same check as parse_json_line, inlined: this loop runs for every row.
            if line.count("[") + line.count("{") > depth and json_too_deep(line, depth):
                yield number, BadRecord(too_deep_message(limits), digest=line_digest(raw))
                continue
            try:
                record = loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as exc:
                yield number, BadRecord(f"invalid JSON: {exc.msg} (column {exc.colno})",
                                        digest=line_digest(raw))
                continue
            if not isinstance(record, dict):
                yield number, BadRecord(f"expected a JSON object, got {_kind(record)}",
                                        digest=line_digest(raw))
                continue
            yield number, record
