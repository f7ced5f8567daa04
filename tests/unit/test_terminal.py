"""The one sanitizer for printed text, and the Markdown escaping it shares with the reports."""

from __future__ import annotations

import cmarkgfm
import pytest

from eval_firewall.progress import Progress
from eval_firewall.report.escape import escape_json, escape_md
from eval_firewall.safeio.terminal import BIDI, command_data, command_property, inert, one_line

HOSTILE = [
    "tr\n::error file=README.md,line=1::Spoofed\n::stop-commands::x",
    "  ::add-mask::secret",
    "x ##[error]legacy syntax",
    "a\rb\r\n::warning::c",
    "\x1b[2J\x1b[31mred\x1b]8;;https://evil.example\x07link\x1b]8;;\x07\x9b31m",
    "\u202egnp.exe \u2066isolated\u2069 \u200fmark",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_one_line_starts_no_command_and_obeys_no_control(text):
    line = one_line(text)
    assert "\n" not in line and "\r" not in line
    assert not line.lstrip().startswith("::") and "##[" not in line
    assert not any(ch in line for ch in BIDI + "\x1b\x07\x9b")


def test_controls_are_shown_not_dropped():
    assert inert("a\x1b[31mb\u202ec\td") == "a\\x1b[31mb\\u202ec\td"
    assert one_line("a\r\nb") == "a\\r\\nb"


def test_command_escaping_follows_the_runner():
    assert command_data("50%\r\n::x\x1b") == "50%25%0D%0A::x\\x1b"
    assert command_property("a:b,c%") == "a%3Ab%2Cc%25"


def test_progress_lines_are_sanitized(capsys):
    progress = Progress(enabled=True)
    progress.note(HOSTILE[0])
    progress.warn(HOSTILE[4])
    with progress.stage(HOSTILE[3]):
        pass
    err = capsys.readouterr().err
    for line in err.splitlines():
        assert line.startswith("eval-firewall: ")
    assert "\x1b" not in err and "\r" not in err


LINKS = ["https://evil.example/a", "HTTP://EVIL.EXAMPLE", "www.evil.example",
         "admin@evil.example", "mailto:admin@evil.example", "xmpp:admin@evil.example",
         "[x](https://evil.example)", "\\[x\\](https://evil.example)", "<https://evil.example>",
         "![p](https://evil.example/p.png)", "[x]: https://evil.example", "h&#116;tps://e.x"]


@pytest.mark.parametrize("text", LINKS)
def test_escaped_markdown_has_no_link(text):
    for markdown in (escape_md(text), f"### {escape_md(text)}", f"| {escape_md(text)} |"):
        html = cmarkgfm.github_flavored_markdown_to_html(markdown)
        assert "<a" not in html and "<img" not in html, (markdown, html)


def test_escaped_markdown_starts_no_command():
    assert escape_md("::error::x").startswith("\\:")
    assert "\x1b" not in escape_md("\x1b[31m") and "\u202e" not in escape_md("\u202e")


def test_json_keeps_the_data_but_not_the_raw_characters():
    import json
    text = escape_json(json.dumps({"t": "a\u202eb\x85c\u2028"}, ensure_ascii=False))
    assert not any(ch in text for ch in "\u202e\x85\u2028")
    assert json.loads(text) == {"t": "a\u202eb\x85c\u2028"}
