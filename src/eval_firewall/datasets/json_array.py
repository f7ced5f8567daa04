"""The JSON reader: a file holding one JSON array of objects, decoded whole (so bounded by
``limits.max_file_bytes``), each element a record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ..config.model import LimitsConfig
from ..errors import UserError
from .jsonl import _json_value_end, json_too_deep
from .lines import BOM, REST_NOT_READ, BadRecord, Record, _kind, line_digest, open_binary, too_deep_message


def read_json(path: Path, limits: LimitsConfig | None = None, display: str | None = None
              ) -> Iterator[tuple[int, Record | BadRecord]]:
    """A JSON array of objects. The file is decoded whole (use JSONL for large data), so it is
    bounded by ``limits.max_file_bytes``; an element nested too deeply is an invalid row."""
    limits = limits or LimitsConfig()
    display = display or str(path)
    with open_binary(path, limits, display) as fh:
        text = _text(fh.read(), display)
    check_depth = json_too_deep(text, limits.max_json_depth + 1)   # + 1: the array itself
    decoder = json.JSONDecoder()
    pos, line = _skip_ws(text, 0), 1
    line += text.count("\n", 0, pos)
    if pos >= len(text) or text[pos] != "[":
        yield line, BadRecord("expected a JSON array of objects at the top level")
        return
    pos += 1
    while True:
        start = _skip_ws(text, pos)
        line += text.count("\n", pos, start)
        pos = start
        if pos < len(text) and text[pos] == "]":
            return
        end = _json_value_end(text, pos) if check_depth and text[pos:pos + 1] in ("[", "{") \
            else -1
        if end >= 0 and json_too_deep(text[pos:end], limits.max_json_depth):
            yield line, BadRecord(too_deep_message(limits), digest=line_digest(text[pos:end]))
        else:
            try:
                record, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                yield exc.lineno, BadRecord(f"invalid JSON: {exc.msg} (column {exc.colno}); "
                                            f"{REST_NOT_READ}")
                return
            if isinstance(record, dict):
                yield line, record
            else:
                yield line, BadRecord(f"expected a JSON object, got {_kind(record)}",
                                      digest=line_digest(text[pos:end]))
        line += text.count("\n", pos, end)
        pos = _skip_ws(text, end)
        line += text.count("\n", end, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] == "]":
            return
        else:
            yield line, BadRecord("invalid JSON: expected ',' or ']' after an array element; "
                                  f"{REST_NOT_READ}")
            return


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _text(data: bytes, display: str) -> str:
    """The whole file decoded (a BOM dropped); not UTF-8: a UserError naming line and column."""
    if data.startswith(BOM):
        data = data[len(BOM):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UserError(f"not UTF-8 text: byte 0x{data[exc.start]:02x} at column {column}",
                        path=display, line=line, hint="save the file as UTF-8") from None
