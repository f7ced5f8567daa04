"""Checking rendered Markdown: snapshot files, GitHub's renderer (cmark-gfm), inertness."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import cmarkgfm
from cmarkgfm.cmark import Options

from eval_firewall.report.escape import ZWSP

SNAPSHOTS = Path(__file__).parent / "snapshots"


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.md"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no snapshot {path.name}: run with UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8"), \
        f"{path.name} differs: run with UPDATE_SNAPSHOTS=1 and review the diff"


def to_html(markdown: str) -> str:
    """What GitHub's renderer (cmark-gfm) makes of the Markdown: GFM tables, autolinks and
    strikethrough, with raw HTML kept and without the tag filter, so that any tag a row
    smuggles in shows up."""
    return cmarkgfm.markdown_to_html_with_extensions(
        markdown, options=Options.CMARK_OPT_UNSAFE,
        extensions=["table", "autolink", "strikethrough", "tasklist"])


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple] = []
        self.text: list[str] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data):
        self.text.append(data)

    def handle_comment(self, data):
        self.comments.append(data)


def parse_html(html: str) -> _Html:
    parser = _Html()
    parser.feed(html)
    return parser


# The tags our own templates produce; anything else came from data.
OWN_TAGS = {"h2", "h3", "h4", "p", "table", "thead", "tbody", "tr", "th", "td", "details",
            "summary", "code", "strong", "sub", "blockquote", "br",
            "ul", "li"}   # the policy diff's lists
MENTION = re.compile(rf"(?<![\w{ZWSP}])[@#](?!{ZWSP})\w")


def assert_inert(markdown: str) -> _Html:
    """No tag, link, image, comment or mention that a row could have put there."""
    page = parse_html(to_html(markdown))
    assert set(page.tags) <= OWN_TAGS, set(page.tags) - OWN_TAGS
    assert page.attrs == [("align", "right")] * len(page.attrs)  # numeric table columns only
    assert page.comments == []
    text = "".join(page.text)
    assert not MENTION.search(text), MENTION.search(text)
    assert "://" not in text and "www." not in text
    return page


def table_rows(markdown: str) -> list[list[str]]:
    """The cells of every findings table row (Where | Problem | Eval text ↔ match)."""
    rows = []
    for line in markdown.splitlines():
        if line.startswith("| ") and " · `" in line:
            rows.append([c.strip() for c in line.strip().strip("|").split(" | ")])
    return rows
