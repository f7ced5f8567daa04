"""The config checked against the data: a configured field that no row has is a config error.

A misspelt ``label`` or provenance path otherwise passes silently (every label is empty) and
surfaces as dozens of misleading findings; a misspelt ``text`` field makes every row an
``invalid-row``. After a dataset is read, each configured field that no row holds is looked up
in the files once more; when no record has it at all, the run stops with one line naming the
key, the dataset, the fields that do exist and the closest one.

Provenance fields are optional per row (a train set whose labels nobody verified has no
``verified_by`` anywhere: the normal case), so for them the same line is a warning, never an
error; the provenance audit reports what eval rows lack.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..errors import UserError
from ..rows import none_has
from .fields import MISSING, get_path, top_level
from .formats import detect_format, header_of, read_records
from .lines import BadRecord

if TYPE_CHECKING:
    from . import LoadedDataset

MAX_SAMPLED = 200      # records whose field names are collected for the message
MAX_NAMED = 20         # field names listed in the message
MAX_DEPTH = 3          # nested fields named down to this depth (meta.label_source)


def check_fields(config: Config, loaded: LoadedDataset,
                 warn: Callable[[str], None] | None = None) -> None:
    """Raise a UserError for the first configured ``text``, ``label`` or ``id`` field that no
    record of ``loaded`` has; a provenance field no record has goes to ``warn`` (the same
    line, with the did-you-mean).

    ``loaded`` is a :class:`~eval_firewall.datasets.LoadedDataset`. Cheap when the data is
    right: the files are only read again for a field no row had a value for.
    """
    suspects = _suspects(loaded)
    if not suspects:
        return
    missing, names = _absent(config, loaded, [path for path, _ in suspects])
    for path, key in suspects:
        if path not in missing:
            continue
        key = config.key_of(loaded.config, key)
        listed = ", ".join(names[:MAX_NAMED]) + (", …" if len(names) > MAX_NAMED else "")
        close = difflib.get_close_matches(path, names, n=1, cutoff=0.6)
        if not close:
            lowered = {n.lower(): n for n in names}
            close = [lowered[path.lower()]] if path.lower() in lowered else []
        error = UserError(
            f"no row of dataset '{loaded.name}' has a field '{path}' "
            f"(fields: {listed or 'none'})",
            path=config.source, line=config.line_of(key), field=key,
            hint=f"did you mean '{close[0]}'?" if close else None)
        if ".provenance." in f".{key}":
            if warn is not None:
                warn(str(error))
            continue
        raise error


def _suspects(loaded: LoadedDataset) -> list[tuple[str, str]]:
    """(field path, config key under the dataset) of fields no row has a value for."""
    ds, rows, problems = loaded.config, loaded.rows, loaded.problems
    out: list[tuple[str, str]] = []
    if not rows:
        # Every record became a problem: a text or id field may be missing from all of them.
        failed = {p.field for p in problems if p.field}
        out += [(f, "text") for f in ds.text if f in failed]
        if ds.id and ds.id in failed:
            out.append((ds.id, "id"))
        return out
    if ds.label and none_has(rows, "label"):
        out.append((ds.label, "label"))
    if ds.provenance:
        for name, path in ds.provenance.model_dump().items():
            if path and none_has(rows, name):
                out.append((path, f"provenance.{name}"))
    return out


def _absent(config: Config, loaded: LoadedDataset, paths: list[str]) -> tuple[set[str], list[str]]:
    """Which of ``paths`` no record has (not even as null), and the field names records have."""
    missing = set(paths)
    names: dict[str, None] = {}
    seen = 0
    for display in loaded.files:
        file = config.root / display
        fmt = detect_format(Path(file), loaded.config.format, display)
        header = header_of(file, fmt, display, config.limits)
        if header is not None:
            names.update(dict.fromkeys(header))
            missing -= {p for p in missing if top_level(p) in header}
        else:
            for _, record in read_records(file, fmt, None, config.limits, display):
                if isinstance(record, BadRecord):
                    continue
                if seen < MAX_SAMPLED:
                    names.update(dict.fromkeys(_field_names(record)))
                    seen += 1
                missing -= {p for p in missing if get_path(record, p) is not MISSING}
                if not missing and seen >= MAX_SAMPLED:
                    break
        if not missing and seen >= MAX_SAMPLED:
            break
    return missing, list(names)


def _field_names(record: dict[str, Any], prefix: str = "", depth: int = 1) -> list[str]:
    out = []
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and depth < MAX_DEPTH:
            out.extend(_field_names(value, name + ".", depth + 1))
        else:
            out.append(name)
    return out
