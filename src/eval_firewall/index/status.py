"""What ``eval-firewall index status`` reports: per train file, its chunk and whether it is current."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config
from .chunk import ROWS
from .digests import BadChunk
from .store import IndexStore, chunk_key, file_version


@dataclass(frozen=True)
class FileStatus:
    """One train file: its chunk's key, state (``current``, ``missing`` or why it is bad),
    rows, unreadable rows, bytes on disk, and the models whose static vectors it holds."""

    dataset: str
    path: str
    version: str
    key: str
    state: str
    rows: int = 0
    problems: int = 0
    nbytes: int = 0
    vectors: tuple[str, ...] = field(default_factory=tuple)
    arrays: tuple[str, ...] = field(default_factory=tuple)
    published: bool | None = None   # at the index location (None: the config names none)

    @property
    def current(self) -> bool:
        """Whether the index holds a sound chunk of the file as it is now."""
        return self.state == "current"


def index_status(config: Config, store: IndexStore, *, verify: bool = False) -> list[FileStatus]:
    """The status of every train file's chunk (``verify``: check every file's digest too,
    reading the whole index; otherwise signatures and sizes only). Reads no data file that
    git knows unchanged; a bad chunk is reported, not removed."""
    from ..config import resolve_paths, resolve_remote
    from ..datasets import _known_blobs, relative

    out = []
    for ds in config.datasets:
        if ds.role != "train":
            continue
        files = resolve_paths(config, ds)
        blobs = _known_blobs(files)
        located = [(relative(Path(f), config.root), file_version(f, blobs.get(f)))
                   for f in files]
        # remote files: listed with their versions, never read (one without a version is
        # keyed by its bytes: shown as missing until a build reads it)
        located += [(r.display, f"remote:{r.version}" if r.version else "remote:unversioned")
                    for r in resolve_remote(config, ds)]
        for display, version in located:
            key = chunk_key(ds, display, version)
            path = store.root / key
            there = store.remote.manifest(key) if store.remote is not None else None
            published = None if store.remote is None else there is not None
            if not path.exists():
                out.append(FileStatus(ds.name, display, version, key, "missing") if there is None
                           else _of(ds.name, display, version, key, there, published))
                continue
            from .chunk import Chunk

            try:
                chunk = Chunk.open(path, key, store.cache.key, store.remote)
                if verify:                  # (a mirrored chunk: the files fetched so far)
                    chunk.verify()
                    if chunk.here(ROWS):
                        chunk.table()
                    for name in chunk.names:
                        if chunk.here(f"{name}.npy"):
                            chunk.array(name)
            except BadChunk as exc:
                out.append(FileStatus(ds.name, display, version, key, f"bad: {exc}"))
                continue
            out.append(_of(ds.name, display, version, key, chunk.manifest, published))
    return out


def _of(dataset: str, display: str, version: str, key: str, manifest: dict[str, Any],
        published: bool | None) -> FileStatus:
    """A current chunk's status from its manifest (here, or at the index location)."""
    files = manifest["files"]
    names = sorted(n[:-4] for n in files if n.endswith(".npy"))
    vectors = tuple(sorted({a for n in names if n.startswith("vectors.")
                            if isinstance(a := files[f"{n}.npy"].get("about"), str)}))
    return FileStatus(dataset, display, version, key, "current", int(manifest["rows"]),
                      len(manifest.get("problems", [])),
                      sum(int(m["size"]) for m in files.values()), vectors, tuple(names),
                      published)
