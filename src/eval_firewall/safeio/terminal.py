"""What eval-firewall prints to a terminal or a CI log is inert, whatever the data says.

Dataset names, CSV headers, config values, error texts and a fork's report reach stderr and
stdout. On GitHub Actions every line the runner reads is checked for a workflow command: a line
whose first non-blank characters are ``::`` (``::error::``, ``::stop-commands::``,
``::add-mask::``), or one containing ``##[`` (the older syntax). On a terminal, ANSI escape
sequences recolour or rewrite the screen and bidi controls reorder what a reader sees. So:

- :func:`inert` shows every control character (C0 but tab, newline and carriage return; DEL;
  C1; and so the ESC of every ANSI sequence) and every bidi control as a visible escape, e.g.
  ``\\x1b``, ``\\u202e``: nothing is dropped, nothing acts;
- :func:`one_line` also shows a carriage return and a newline as ``\\r`` and ``\\n``, so a
  value cannot start a line of its own, and breaks ``##[`` and a leading ``::``: safe anywhere
  in a log line;
- :func:`command_data` and :func:`command_property` follow the runner's escaping for the
  message and the properties of a workflow command we mean to print (``%`` first).
"""

from __future__ import annotations

import re

ZWSP = "\u200b"
# Bidi embeddings, overrides and isolates (the Trojan Source set) plus the implicit marks.
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# C0 but \t \n \r, DEL, C1, bidi controls, and the Unicode line/paragraph separators.
_CONTROL = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{BIDI}\u2028\u2029]")
_BREAKS = re.compile("[\r\n]")
_LEGACY = re.compile(r"##(?=\[)")
_LEADING = re.compile(r"^(\s*):(?=:)")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: object) -> str:
    """``text`` with every control and bidi character shown as an escape (``\\x1b``)."""
    return _CONTROL.sub(_visible, "" if text is None else str(text))


def one_line(text: object) -> str:
    """``text`` safe as (part of) one log line: no control acts, no workflow command starts."""
    value = _BREAKS.sub(lambda m: "\\r" if m.group() == "\r" else "\\n", inert(text))
    return no_command(value)


def no_command(line: str) -> str:
    """A single line that cannot start a workflow command (``::name::``, legacy ``##[``)."""
    value = _LEGACY.sub("#" + ZWSP + "#", line)
    return _LEADING.sub(lambda m: m.group(1) + ":" + ZWSP, value)


def command_data(text: object) -> str:
    """The message of a workflow command (``::error::<message>``)."""
    return inert(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def command_property(text: object) -> str:
    """A property value of a workflow command (``::error file=<value>::``)."""
    return command_data(text).replace(":", "%3A").replace(",", "%2C")
