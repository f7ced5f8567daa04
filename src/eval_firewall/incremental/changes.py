"""What changed since a git revision: the datasets at the base and the rows that are new.

A row is *new* when no row with the same content (text, label, provenance) existed in its
dataset at the base revision: content, not line numbers, so inserting a row does not make
every row below it new.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config, DatasetConfig
from ..datasets import LoadedDataset, iter_rows, relative
from ..datasets.card import DatasetCard, find_card, read_card
from ..datasets.remote import is_url
from ..rows import Row, RowProblem, RowSegments
from .git import Git


def row_fingerprint(row: Row) -> bytes:
    """A row's content (text, label, provenance) as 16 bytes: what "the same row" means."""
    p = row.provenance
    parts = (row.text, row.label or "", p.label_source or "", p.verified_by or "",
             p.generator or "")
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=16).digest()


@dataclass(slots=True)
class Changes:
    base: str
    base_sha: str
    base_datasets: dict[str, LoadedDataset]
    changed_files: dict[str, list[str]] = field(default_factory=dict)   # dataset -> files
    new_rows: dict[str, set[int]] = field(default_factory=dict)         # dataset -> row indices
    # dataset -> base file -> its version at the base ("git-blob:<sha>:<size>", as the train
    # index keys a file git knows unchanged): the base's index chunks, named without reading.
    base_versions: dict[str, dict[str, str]] = field(default_factory=dict)

    def new_locations(self, head: dict[str, LoadedDataset]) -> set[tuple[str, int]]:
        """``(path, line)`` of every new row of the head."""
        return {(head[name].rows[i].path, head[name].rows[i].line)
                for name, indices in self.new_rows.items() for i in indices}

    @property
    def all_changed_files(self) -> list[str]:
        """Every changed file of every dataset, sorted."""
        return sorted({f for files in self.changed_files.values() for f in files})


def _patterns(config: Config, top: Path, patterns: list[str]) -> list[str]:
    prefix = config.root.resolve().relative_to(top).as_posix()
    return [p if prefix in ("", ".") else f"{prefix}/{p}" for p in patterns]


def load_base(config: Config, head: dict[str, LoadedDataset], rev: str,
              scratch: Path) -> Changes:
    """Read every dataset as it was at ``rev``; files unchanged since then are not re-read."""
    git = Git.containing(config.root)
    sha = git.resolve(rev)
    changes = Changes(rev, sha, {})
    for ds in config.datasets:
        base, base_paths, changed = _dataset_at_base(config, git, sha, ds, head[ds.name],
                                                     changes, scratch)
        base.card = _card_at(config, git, sha, ds, base_paths, scratch)
        changes.base_datasets[ds.name] = base
        changes.changed_files[ds.name] = sorted(changed)
        changes.new_rows[ds.name] = _new_rows(head[ds.name], base, changed)
    return changes


def _dataset_at_base(config: Config, git: Git, sha: str, ds: DatasetConfig, head: LoadedDataset,
                     changes: Changes, scratch: Path
                     ) -> tuple[LoadedDataset, list[str], list[str]]:
    """One dataset at commit ``sha``, its files there and its files changed since (added ones
    included): an unchanged file's rows are the head's (the train index's stay unbuilt), a
    changed one is read from its blob, written into ``scratch``."""
    top, root = git.top, config.root.resolve()
    at_base = git.files_at(sha, _patterns(config, top, [p for p in ds.paths if not is_url(p)]))
    head_files = {f: root / f for f in head.files if not is_url(f)}
    current = git.worktree_blobs(list(head_files.values()))
    base_rows: list[Row] = []
    problems: list[RowProblem] = []
    changed: list[str] = []
    base_paths = []
    of_file = getattr(head.rows, "of_file", None)     # rows of the train index: by file
    for top_path, blob in sorted(at_base.items()):
        rel = (top / top_path).relative_to(root).as_posix()
        base_paths.append(rel)
        versions = changes.base_versions.setdefault(ds.name, {})
        if rel in head_files and current.get(head_files[rel]) == blob:
            versions[rel] = f"git-blob:{blob}:{head_files[rel].stat().st_size}"
            if of_file is None:
                base_rows.extend(r for r in head.rows if r.path == rel)
            else:                 # built below only if the base differs from the head
                base_rows.append(rel)  # type: ignore[arg-type]
            problems.extend(p for p in head.problems if p.path == rel)
            continue
        changed.append(rel)
        versions[rel] = _read_blob(config, git, ds, blob, scratch, rel, base_rows, problems)
    changed.extend(f for f in head_files if f not in base_paths)
    _remote_as_head(changes, head, base_paths, base_rows, problems)
    base = LoadedDataset(ds, base_paths, base_rows, problems)
    if of_file is not None:       # unchanged files' rows stay in the index, unbuilt
        base.rows = _segments(base_rows, of_file) if changed else head.rows
    return base, base_paths, changed


def _read_blob(config: Config, git: Git, ds: DatasetConfig, blob: str, scratch: Path, rel: str,
               rows: list[Row], problems: list[RowProblem]) -> str:
    """Read file ``rel`` as its ``blob`` at the base (written into ``scratch``) into ``rows``
    and ``problems``; its version."""
    target = scratch / rel
    git.write_blob(blob, target)
    for item in iter_rows(config.model_copy(update={"root": scratch}), ds, files=[target]):
        if isinstance(item, Row):
            rows.append(item)
        else:
            problems.append(item)
    return f"git-blob:{blob}:{target.stat().st_size}"


def _new_rows(head: LoadedDataset, base: LoadedDataset, changed: list[str]) -> set[int]:
    """The head's rows whose content no row had at the base (none when no file changed)."""
    if not changed:          # every file as it was: no new rows (and no hashing them)
        return set()
    if getattr(head.rows, "of_file", None) is not None:
        return _new_in_changed_files(head.rows, base.rows, changed)
    before = {row_fingerprint(r) for r in base.rows}
    return {i for i, r in enumerate(head.rows) if row_fingerprint(r) not in before}


def _remote_as_head(changes: Changes, head: LoadedDataset, base_paths: list[str],
                    base_rows: list[Any], problems: list[RowProblem]) -> None:
    """A remote file is the same object at the base and the head: its location is the
    policy's (a pull request cannot change it), its version keys its index chunk."""
    of_file = getattr(head.rows, "of_file", None)
    for rel in (f for f in head.files if is_url(f)):
        base_paths.append(rel)
        version = _remote_version(head.rows, rel)
        if version is not None:
            changes.base_versions.setdefault(head.name, {})[rel] = version
        if of_file is None:
            base_rows.extend(r for r in head.rows if r.path == rel)
        else:
            base_rows.append(rel)
        problems.extend(p for p in head.problems if p.path == rel)


def _remote_version(head_rows: Any, display: str) -> str | None:
    """The version a remote file's index chunk was built from (None without the index)."""
    displays = getattr(head_rows, "displays", None)
    if displays is None or display not in displays:
        return None
    version = head_rows.chunks[displays.index(display)].manifest["source"].get("version")
    return str(version) if version else None


def _segments(items: list[Any], of_file: Any) -> Any:
    """Base rows as segments: an unchanged file's rows of the head's index (named by path in
    ``items``), and the rows read from the files changed since."""
    segments: list[Sequence[Row]] = []
    for item in items:
        if isinstance(item, str):
            segments.append(of_file(item))
        elif segments and isinstance(segments[-1], list):
            segments[-1].append(item)
        else:
            segments.append([item])
    return RowSegments(segments)


def _new_in_changed_files(head_rows: Any, base_rows: Any, changed: list[str]) -> set[int]:
    """The new rows of a train index's dataset: only rows of changed files can be new, and
    one is unless a base row has its content. Base rows of unchanged files are compared only
    where their text equals a candidate's (found in the text column), so only the changed
    files' rows and those few are built."""
    touched = set(changed)
    starts = head_rows.offsets()
    candidates = {int(i): head_rows[int(i)] for c, display in enumerate(head_rows.displays)
                  if display in touched for i in range(starts[c], starts[c + 1])}
    if not candidates:
        return set()
    texts = sorted({r.text for r in candidates.values()})
    before: set[bytes] = set()
    for segment in getattr(base_rows, "segments", [base_rows]):
        find = getattr(segment, "indices_in", None)
        rows = ([segment[int(i)] for i in find("text", texts)] if find is not None
                else segment)
        before.update(row_fingerprint(r) for r in rows)
    return {i for i, r in candidates.items() if row_fingerprint(r) not in before}


def _card_at(config: Config, git: Git, sha: str, ds: DatasetConfig, base_paths: list[str],
             scratch: Path) -> DatasetCard | None:
    """The dataset card as it was at the base (nearest README.md with front matter)."""
    top = git.top
    base_paths = [p for p in base_paths if not is_url(p)]
    candidates = [ds.card] if ds.card else sorted(
        {(Path(p).parent / "README.md").as_posix() for p in base_paths}
        | {(parent / "README.md").as_posix() for p in base_paths
           for parent in Path(p).parents})
    found = git.files_at(sha, _patterns(config, top, [c for c in candidates if c]))
    for top_path, blob in found.items():
        git.write_blob(blob, scratch / (top / top_path).relative_to(
            config.root.resolve()))
    data_files = [scratch / p for p in base_paths]
    card_path = scratch / ds.card if ds.card else find_card(data_files, scratch)
    if card_path and card_path.is_file():
        return read_card(card_path, relative(card_path, scratch), config.limits)
    return None


def inputs_at(config: Config, rev_sha: str, patterns: list[str], scratch: Path) -> Config:
    """Write the files matching ``patterns`` as they were at the base into ``scratch`` and
    return the config rooted there, to read annotation sheets or predictions at the base."""
    git = Git.containing(config.root)
    top, root = git.top, config.root.resolve()
    for top_path, blob in git.files_at(rev_sha, _patterns(config, top, patterns)).items():
        git.write_blob(blob, scratch / (top / top_path).relative_to(root))
    return config.model_copy(update={"root": scratch})


def scratch_dir() -> tempfile.TemporaryDirectory[str]:
    """A temporary folder for files written from the base revision."""
    return tempfile.TemporaryDirectory(prefix="eval-firewall-base-")
