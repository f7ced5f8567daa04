"""Dataset cards: a README.md with YAML front matter next to the data, as on the Hugging Face Hub."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config.model import LimitsConfig
from ..errors import UserError
from ..safeio.paths import contained, repository_root
from ..safeio.yaml import compose_yaml, construct_yaml
from .lines import decode_line, iter_lines


@dataclass(frozen=True, slots=True)
class DatasetCard:
    path: str                       # relative to the repository root
    metadata: dict[str, Any]
    key_lines: dict[str, int] = field(default_factory=dict)  # top-level key -> line in the file

    def values(self, key: str) -> list[str]:
        """The front matter's ``key`` as a list of strings (a scalar is one; missing is none)."""
        value = self.metadata.get(key)
        if value is None:
            return []
        if isinstance(value, list):
            return [str(v) for v in value]
        return [str(value)]


def read_card(path: Path, display: str, limits: LimitsConfig | None = None
              ) -> DatasetCard | None:
    """The card's front matter, or None when the file has none.

    Only the front matter is read, up to ``limits.max_row_bytes``; its YAML may expand (through
    aliases) to at most ``limits.max_yaml_nodes`` values.
    """
    limits = limits or LimitsConfig.model_validate({})
    lines = _front_matter(path, display, int(limits.max_row_bytes))
    if lines is None:
        return None
    block = "\n".join(lines)
    loader = yaml.SafeLoader(block)
    try:
        node = compose_yaml(loader, limits.max_yaml_nodes)
        metadata = construct_yaml(loader, node) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(f"invalid YAML front matter: {getattr(exc, 'problem', exc)}",
                        path=display, line=mark.line + 2 if mark else 1) from None
    except ValueError as exc:
        hint = "at most limits.max_yaml_nodes" if "expands" in str(exc) else None
        raise UserError(f"invalid YAML front matter: {exc}", path=display, line=1,
                        hint=hint) from None
    finally:
        loader.dispose()
    if not isinstance(metadata, dict):
        raise UserError("front matter must be a YAML mapping", path=display, line=2)
    key_lines = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            key_lines[str(key_node.value)] = key_node.start_mark.line + 2
    return DatasetCard(display, metadata, key_lines)


def _front_matter(path: Path, display: str, budget: int) -> list[str] | None:
    """The lines between the card's opening and closing ``---``; None when it does not open
    with one. At most ``budget`` bytes are read."""
    lines: list[str] = []
    closed = False
    try:
        with open(path, "rb") as fh:
            for number, raw in iter_lines(fh, budget):
                if raw is None or budget - len(raw) < 0:
                    raise UserError(f"the front matter is longer than limits.max_row_bytes "
                                    f"({budget} bytes)", path=display, line=number)
                budget -= len(raw)
                text = decode_line(raw, number, display).rstrip("\r\n")
                if number == 1:
                    if text.strip() != "---":
                        return None
                    continue
                if text.strip() in ("---", "..."):
                    closed = True
                    break
                lines.append(text)
    except OSError as exc:
        raise UserError(f"cannot read dataset card: {exc.strerror or exc}", path=display) from None
    if not closed:
        raise UserError("front matter opened with '---' is never closed", path=display, line=1)
    return lines


def find_card(data_files: list[Path], root: Path) -> Path | None:
    """The nearest README.md with front matter, from the data files' folder up to the root.
    A README.md that resolves outside the repository (or into .git) is passed over unread."""
    root = root.resolve()
    boundary = repository_root(root)
    for data_file in data_files:
        directory = data_file.resolve().parent
        while True:
            candidate = directory / "README.md"
            if candidate.is_file() and contained(candidate, boundary) is None:
                with open(candidate, "rb") as fh:
                    if fh.read(3) == b"---":
                        return candidate
            if directory == root or root not in directory.parents:
                break
            directory = directory.parent
    return None
