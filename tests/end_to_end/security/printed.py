"""What the runner would make of what the action printed: the checks every security test shares.

GitHub's runner reads stdout and stderr line by line (a line ends at ``\\n``, ``\\r\\n`` or a lone
``\\r``) and runs a workflow command from every line whose first non-blank characters are ``::``
and from every line containing ``##[`` (the older syntax).
"""

from __future__ import annotations

import re

from eval_firewall.safeio.terminal import BIDI

# The only commands eval-firewall itself prints: an error or a warning about itself.
OURS = re.compile(r"::(error|warning)::eval-firewall: ")
ESC = "\x1b"


def runner_lines(text: str) -> list[str]:
    return re.split(r"\r\n|\r|\n", text)


def commands(text: str) -> list[str]:
    """Every line the runner would take for a workflow command."""
    return [line for line in runner_lines(text)
            if line.lstrip().startswith("::") or "##[" in line]


def assert_inert(run) -> None:
    """No workflow command from data, no terminal control, no bidi character, on either stream."""
    assert commands(run.stderr) == [], run.stderr
    for line in commands(run.stdout):
        assert OURS.match(line), line
    for stream in (run.stdout, run.stderr):
        assert ESC not in stream and "\x9b" not in stream
        assert not any(ch in stream for ch in BIDI)


def assert_no_controls(where: str, text: str) -> None:
    assert ESC not in text and "\x9b" not in text and "\x07" not in text, where
    assert not any(ch in text for ch in BIDI), where
