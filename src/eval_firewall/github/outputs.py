"""What a step hands back to the workflow: outputs, the job summary, workflow commands."""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

from ..safeio.terminal import command_data, command_property, one_line

# GitHub's limit for one step's summary is 1 MiB; stay a little under it.
SUMMARY_MAX_CHARS = 1_000_000


# The runner's escaping (kept under these names for callers): controls and bidi characters
# are shown as escapes first, so a message cannot recolour or reorder the log either.
escape_data = command_data
escape_property = command_property
_NAME = re.compile(r"[A-Za-z][A-Za-z-]{0,30}")


def command(name: str, message: str, **properties: str) -> None:
    """Print a workflow command, e.g. ``command("warning", "...")``: the only place that
    prints a line starting with ``::``. The name is ours; message and properties may carry
    data and are escaped."""
    if not _NAME.fullmatch(name) or not all(_NAME.fullmatch(k) for k in properties):
        raise ValueError(f"not a workflow command name: {name!r}")
    props = ",".join(f"{k}={escape_property(v)}" for k, v in properties.items())
    print(f"::{name}{' ' + props if props else ''}::{escape_data(message)}", flush=True)  # noqa: T201


def log(message: str) -> None:
    """One line on stderr; whatever data it carries cannot start a workflow command."""
    print(f"eval-firewall: {one_line(message)}", file=sys.stderr, flush=True)  # noqa: T201


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
    """Append Markdown to the job summary (``GITHUB_STEP_SUMMARY``)."""
    if path is None:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
