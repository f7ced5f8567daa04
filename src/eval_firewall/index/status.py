"""What ``eval-firewall index status`` reports: per train file, its chunk and whether it is current."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config
from .chunk import BadChunk
from .store import NORM_HASH, IndexStore, chunk_key, file_version


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
            if not path.exists():
                out.append(FileStatus(ds.name, display, version, key, "missing"))
                continue
            from .chunk import Chunk

            try:
                chunk = Chunk.open(path, key, store.cache.key)
                if verify:
                    chunk.verify()
                    chunk.table()
                    for name in chunk.names:
                        chunk.array(name)
                    chunk.array(NORM_HASH)
            except BadChunk as exc:
                out.append(FileStatus(ds.name, display, version, key, f"bad: {exc}"))
                continue
            vectors = tuple(sorted({a for n in chunk.names if n.startswith("vectors.")
                                    if (a := chunk.about(n))}))
            out.append(FileStatus(ds.name, display, version, key, "current", chunk.rows,
                                  len(chunk.problems), chunk.nbytes, vectors,
                                  tuple(chunk.names)))
    return out
