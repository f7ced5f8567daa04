"""What a step hands back to the workflow: outputs, the job summary, workflow commands."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

# GitHub's limit for one step's summary is 1 MiB; stay a little under it.
SUMMARY_MAX_CHARS = 1_000_000


def escape_data(text: str) -> str:
    """Escape the message of a workflow command (``::error::...``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: str) -> None:
    """Print a workflow command, e.g. ``command("warning", "...")``."""
    props = ",".join(f"{k}={escape_property(v)}" for k, v in properties.items())
    print(f"::{name}{' ' + props if props else ''}::{escape_data(message)}", flush=True)


def log(message: str) -> None:
    print(f"eval-firewall: {message}", file=sys.stderr, flush=True)


def set_outputs(path: Path | None, values: Mapping[str, object]) -> None:
    """Append outputs to ``GITHUB_OUTPUT``; every value uses a random heredoc delimiter,
    so a value containing newlines (or a line that looks like a delimiter) stays one value."""
    if path is None:
        return
    with open(path, "a", encoding="utf-8") as fh:
        for name, value in values.items():
            text = "" if value is None else str(value)
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            while delimiter in text:
                delimiter = f"ghadelimiter_{uuid.uuid4()}"
            fh.write(f"{name}<<{delimiter}\n{text}\n{delimiter}\n")


def add_job_summary(path: Path | None, markdown: str) -> None:
    if path is None:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
