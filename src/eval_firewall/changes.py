"""What changed since a git revision: the datasets at the base, changed rows, new findings.

A row is *new* when no row with the same content (text, label, provenance) existed in its
dataset at the base revision: content, not line numbers, so inserting a row does not make
every row below it new.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import gitrev
from .config import Config
from .datasets import LoadedDataset, iter_rows, relative
from .datasets.card import find_card, read_card
from .findings import Finding
from .rows import Row


def row_fingerprint(row: Row) -> bytes:
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

    def new_locations(self, head: dict[str, LoadedDataset]) -> set[tuple[str, int]]:
        return {(head[name].rows[i].path, head[name].rows[i].line)
                for name, indices in self.new_rows.items() for i in indices}

    @property
    def all_changed_files(self) -> list[str]:
        return sorted({f for files in self.changed_files.values() for f in files})


def _patterns(config: Config, top: Path, patterns: list[str]) -> list[str]:
    prefix = config.root.resolve().relative_to(top).as_posix()
    return [p if prefix in ("", ".") else f"{prefix}/{p}" for p in patterns]


def load_base(config: Config, head: dict[str, LoadedDataset], rev: str,
              scratch: Path) -> Changes:
    """Read every dataset as it was at ``rev``; files unchanged since then are not re-read."""
    top = gitrev.toplevel(config.root)
    sha = gitrev.resolve(top, rev)
    root = config.root.resolve()
    base_config = config.model_copy(update={"root": scratch})
    changes = Changes(rev, sha, {})
    for ds in config.datasets:
        at_base = gitrev.files_at(top, sha, _patterns(config, top, ds.paths))
        head_files = {f: root / f for f in head[ds.name].files}
        current = gitrev.worktree_blobs(top, list(head_files.values()))
        base_rows: list[Row] = []
        problems = []
        changed: list[str] = []
        base_paths = []
        for top_path, blob in sorted(at_base.items()):
            rel = (top / top_path).relative_to(root).as_posix()
            base_paths.append(rel)
            if rel in head_files and current.get(head_files[rel]) == blob:
                base_rows.extend(r for r in head[ds.name].rows if r.path == rel)
                problems.extend(p for p in head[ds.name].problems if p.path == rel)
                continue
            changed.append(rel)
            target = scratch / rel
            gitrev.write_blob(top, blob, target)
            for item in iter_rows(base_config, ds, files=[target]):
                (base_rows if isinstance(item, Row) else problems).append(item)
        changed.extend(f for f in head_files if f not in base_paths)
        base = LoadedDataset(ds, base_paths, base_rows, problems)
        base.card = _card_at(config, top, sha, ds, base_paths, scratch)
        changes.base_datasets[ds.name] = base
        changes.changed_files[ds.name] = sorted(changed)
        if not changed:          # every file as it was: no new rows (and no hashing them)
            changes.new_rows[ds.name] = set()
            continue
        before = {row_fingerprint(r) for r in base_rows}
        changes.new_rows[ds.name] = {i for i, r in enumerate(head[ds.name].rows)
                                     if row_fingerprint(r) not in before}
    return changes


def _card_at(config: Config, top: Path, sha: str, ds, base_paths: list[str], scratch: Path):
    """The dataset card as it was at the base (nearest README.md with front matter)."""
    candidates = [ds.card] if ds.card else sorted(
        {(Path(p).parent / "README.md").as_posix() for p in base_paths}
        | {(parent / "README.md").as_posix() for p in base_paths
           for parent in Path(p).parents})
    found = gitrev.files_at(top, sha, _patterns(config, top, [c for c in candidates if c]))
    for top_path, blob in found.items():
        gitrev.write_blob(top, blob, scratch / (top / top_path).relative_to(
            config.root.resolve()))
    data_files = [scratch / p for p in base_paths]
    card_path = scratch / ds.card if ds.card else find_card(data_files, scratch)
    if card_path and card_path.is_file():
        return read_card(card_path, relative(card_path, scratch), config.limits)
    return None


def changed_inputs(config: Config, rev_sha: str, patterns: list[str]) -> set[str]:
    """Files matching ``patterns`` (relative to the config root) added, edited or deleted since
    the base: the other inputs of an audit, such as annotation sheets or predictions."""
    if not patterns:
        return set()
    from .paths import glob_files

    top = gitrev.toplevel(config.root)
    root = config.root.resolve()
    before = {(top / p).relative_to(root).as_posix(): blob
              for p, blob in gitrev.files_at(top, rev_sha, _patterns(config, top, patterns)).items()}
    now = sorted({p.resolve() for pattern in patterns
                  for p in glob_files(pattern, root, max_files=config.limits.max_files_per_glob,
                                      source=config.source, line=None, field="paths")})
    blobs = gitrev.worktree_blobs(top, now)
    after = {p.relative_to(root).as_posix(): blobs[p] for p in now}
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


def mark_new(findings: list[Finding], changes: Changes, head: dict[str, LoadedDataset],
             base_findings: list[Finding], expensive_audits: set[str],
             inputs_changed: dict[str, set[str]] | None = None) -> list[Finding]:
    """Set ``new`` on each finding: does it exist because of this change?

    - row findings are new when their row is new; pair findings when either row is;
    - dataset-level findings of audits that were re-run on the base are new when the base
      run did not have them; those of expensive audits when any of their data changed, or
      any other input of theirs (``inputs_changed``: audit -> changed files, e.g. annotation
      sheets); a finding that points into such a changed file is new.
    """
    inputs_changed = inputs_changed or {}
    changed_paths = {p for paths in inputs_changed.values() for p in paths}
    new_locs = changes.new_locations(head)
    at_base = defaultdict(set)
    for f in base_findings:
        at_base[(f.audit, f.rule, f.dataset)].add(f.path if f.row_id is None else None)
    any_change = any(changes.new_rows.values()) or any(changes.changed_files.values())
    out = []
    for f in findings:
        row_level = f.row_id is not None and f.count is None
        if f.path in changed_paths:
            new = True
        elif row_level:
            new = (f.path, f.line) in new_locs or bool(
                f.match and (f.match.path, f.match.line) in new_locs)
        elif f.audit in expensive_audits:
            new = bool(inputs_changed.get(f.audit)) or (
                bool(changes.new_rows.get(f.dataset or "", ())) if f.dataset else any_change)
        else:
            new = (f.audit, f.rule, f.dataset) not in at_base
        out.append(f if f.new == new else replace(f, new=new))
    return out


def scratch_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="eval-firewall-base-")
