"""Dataset cards: a README.md with YAML front matter next to the data, as on the Hugging Face Hub."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import UserError


@dataclass(frozen=True, slots=True)
class DatasetCard:
    path: str                       # relative to the repository root
    metadata: dict[str, Any]
    key_lines: dict[str, int] = field(default_factory=dict)  # top-level key -> line in the file

    def values(self, key: str) -> list[str]:
        value = self.metadata.get(key)
        if value is None:
            return []
        if isinstance(value, list):
            return [str(v) for v in value]
        return [str(value)]


def read_card(path: Path, display: str) -> DatasetCard | None:
    """The card's front matter, or None when the file has none."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read dataset card: {exc}", path=display) from None
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() in ("---", "..."))
    except StopIteration:
        raise UserError("front matter opened with '---' is never closed", path=display,
                        line=1) from None
    block = "\n".join(lines[1:end])
    try:
        node = yaml.compose(block, Loader=yaml.SafeLoader)
        metadata = yaml.safe_load(block) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(f"invalid YAML front matter: {getattr(exc, 'problem', exc)}",
                        path=display, line=mark.line + 2 if mark else 1) from None
    if not isinstance(metadata, dict):
        raise UserError("front matter must be a YAML mapping", path=display, line=2)
    key_lines = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            key_lines[str(key_node.value)] = key_node.start_mark.line + 2
    return DatasetCard(display, metadata, key_lines)


def find_card(data_files: list[Path], root: Path) -> Path | None:
    """The nearest README.md with front matter, from the data files' folder up to the root."""
    root = root.resolve()
    for data_file in data_files:
        directory = data_file.resolve().parent
        while True:
            candidate = directory / "README.md"
            if candidate.is_file() and candidate.read_bytes()[:3] == b"---":
                return candidate
            if directory == root or root not in directory.parents:
                break
            directory = directory.parent
    return None
