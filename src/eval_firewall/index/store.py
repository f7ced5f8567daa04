"""Where index chunks live, how one is keyed, built and opened, and a train dataset read from them.

Chunks live in ``<cache dir>/index/chunks/<key>/`` (:mod:`.chunk`). A chunk's key is what its
rows were computed from: the dataset settings that shape a row, the file's path, and the file's
*version*: its git blob id when git knows the file unchanged (then the file is not read at
all), else a hash of its bytes; a remote file's ETag or version id can be the version of the
same key, so an unchanged remote file is never read again. A chunk that fails a check (see
:mod:`.chunk`) is removed and rebuilt with one warning.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import Cache, content_key
from ..config import Config, DatasetConfig, resolve_paths, resolve_remote
from ..progress import Progress
from ..rows import Row, RowProblem
from . import write as chunks
from .chunk import FORMAT, ROWS, Chunk, write_manifest
from .digests import BadChunk
from .postings import POSTINGS

DIRECTORY = "index"
NORM_HASH = "norm_hash"


def file_version(path: Path, blob: str | None) -> str:
    """A data file's version: its git blob id (and size) when git knows it unchanged, else the
    BLAKE2b hash of its bytes. (A remote object's ETag or version id fits here.)"""
    if blob is not None:
        return f"git-blob:{blob}:{path.stat().st_size}"
    from ..datasets.cached import file_digest

    return f"blake2b:{file_digest(path)}"


# Text exercising every rule of the normalization (case, compatibility forms, accents, operators,
# hyphens, punctuation, whitespace, digits) and the characters a hostile copy hides behind:
# default-ignorable code points, homoglyphs of Latin letters, bidirectional controls.
NORMALIZATION_PROBE = (
    "Ünïcode ＦＵＬＬ-width ﬁnal x² ½ e\u0301 Ǆ ß İ ς ﬀ ℌ ① 3−2×4÷1∕5 well-known a_b 1,000.50 "
    "it's \"q\" (x)!? \t\n\r\x0b\x0c\u00a0\u2003\u3000 zero\u200bwidth soft\u00adhyphen "
    "jo\u2060in bo\ufeffm zw\u200dj zw\u200cnj v\ufe0fs cg\u034fj mv\u180es ta\U000e0041g "
    "\u202eltr\u202c \u2066iso\u2069 h\u115fan \u0430\u0435\u043e\u0440\u0441\u0445\u0443 "
    "\u03bf\u0391\u0392\u0395 \u0131 \u1d00 \uff41 \U0001d41a 中文 العربية 😀 -- ..."
)


def normalization_fingerprint() -> str:
    """The normalization's declared version and a hash of what it makes of
    :data:`NORMALIZATION_PROBE` (the single-text and the bulk path): part of every chunk's
    key, so a chunk written by another normalization is never trusted. The version catches
    any change its owner declares; the probe, a change to any character class it holds even
    when nobody bumped the version."""
    import pyarrow as pa

    from ..text import normalize

    one = normalize.normalize(NORMALIZATION_PROBE)
    many = normalize.normalize_array(pa.array([NORMALIZATION_PROBE, NORMALIZATION_PROBE.encode(
        "ascii", "ignore").decode()], pa.large_string())).to_pylist()
    return content_key("normalize", normalize.NORMALIZATION_VERSION, one, many)


def chunk_key(ds: DatasetConfig, display: str, version: str) -> str:
    """The key of a file's chunk: index format, posting kinds, normalization (its behaviour),
    row-shaping settings, path and version."""
    shape = ds.model_dump(mode="json", exclude={"paths", "card", "name", "role"})
    return content_key(FORMAT, sorted(POSTINGS), normalization_fingerprint(), shape,
                       display, version)


def norm_hashes(norm: Sequence[str]) -> np.ndarray:
    """A 64-bit BLAKE2b hash of each normalized text (exact-copy lookup; equal texts are then
    compared whole)."""
    out = np.empty(len(norm), dtype=np.uint64)
    for i, text in enumerate(norm):
        out[i] = int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"),
                                                digest_size=8).digest(), "little")
    return out


def vectors_name(model_key: str) -> str:
    """The array name of one static model's vectors in a chunk."""
    return f"vectors.{content_key(model_key)[:16]}"


class IndexStore:
    """The index chunks in a cache directory (none when the cache is disabled)."""

    def __init__(self, cache: Cache, progress: Progress | None = None, remote: Any = None
                 ) -> None:
        """The chunks in ``cache``; with ``remote`` (a :class:`~.remote.RemoteIndex`, the
        policy's ``index.location``), a chunk missing here is looked for there first and
        mirrored (its files fetched when used)."""
        self.cache = cache
        self.progress = progress or cache.progress
        self.remote = remote
        self.rebuilt = 0
        self.built = 0
        self.mirrored = 0

    @property
    def enabled(self) -> bool:
        """Whether the cache (and so the index) is in use."""
        return self.cache.enabled

    @property
    def root(self) -> Path:
        """``<cache>/index/chunks``."""
        assert self.cache.directory is not None
        return self.cache.directory / DIRECTORY / "chunks"

    def _safe_root(self) -> bool:
        """The index directories must not be links (the cache directory is checked by Cache)."""
        assert self.cache.directory is not None
        for p in (self.cache.directory / DIRECTORY, self.root):
            if p.is_symlink() or (p.exists() and not p.is_dir()):
                chunks.remove(p)
        return True

    def open(self, key: str, display: str) -> Chunk | None:
        """The chunk ``key`` if present and sound; a bad one is removed with a warning."""
        self._safe_root()
        path = self.root / key
        if not path.exists() and not path.is_symlink():
            return None
        try:
            return Chunk.open(path, key, self.cache.key, self.remote)
        except BadChunk as exc:
            self.discard(key, display, str(exc))
            return None

    def mirror(self, key: str) -> Chunk | None:
        """The chunk ``key`` of the index location, mirrored here (its manifest, signed with
        the cache's key; its files come when mapped); None when the location has none."""
        body = self.remote.manifest(key) if self.remote is not None else None
        if body is None:
            return None
        self._safe_root()
        self.root.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(dir=self.root, prefix=".tmp-"))
        try:
            write_manifest(staged, key, {**body, "mirror": True}, self.cache.key)
            if os.path.lexists(self.root / key):
                chunks.remove(self.root / key)
            os.rename(staged, self.root / key)
        finally:
            if staged.exists():
                chunks.remove(staged)
        self.mirrored += 1
        return Chunk.open(self.root / key, key, self.cache.key, self.remote)

    def discard(self, key: str, display: str, why: str) -> None:
        """Remove a chunk that failed a check, warning once per chunk."""
        self.rebuilt += 1
        self.cache.warn_once(why, f"index chunk {key[:12]} ({display}) {why}: recomputing it")
        chunks.remove(self.root / key)

    def prune(self, keep: set[str]) -> int:
        """Remove every chunk not in ``keep`` (those of files no longer configured or changed
        since); the number removed."""
        removed = 0
        if not self.root.is_dir() or self.root.is_symlink():
            return 0
        for entry in self.root.iterdir():
            if entry.name not in keep:
                chunks.remove(entry)
                removed += not entry.name.startswith(".")
        return removed

    def build(self, config: Config, ds: DatasetConfig, file: Path, display: str, key: str,
              version: str) -> Chunk:
        """Read ``file`` and write its chunk: rows, normalized-text hashes, postings."""
        table, arrays, problems = chunk_contents(config, ds, file, display)
        return self.write(ds, display, key, version, table, arrays, problems)

    def write(self, ds: DatasetConfig, display: str, key: str, version: str, table: Any,
              arrays: dict[str, np.ndarray], problems: list[dict[str, Any]]) -> Chunk:
        """Write (and sign) a chunk from its contents (:func:`chunk_contents`, computed here
        or by another engine's workers)."""
        source = {"dataset": ds.name, "path": display, "version": version}
        self._safe_root()
        chunks.write(self.root, key, self.cache.key, source=source, rows=table, arrays=arrays,
                     problems=problems)
        self.built += 1
        found = Chunk.open(self.root / key, key, self.cache.key)
        found.remember_written()
        return found

    def seal(self, ds: DatasetConfig, display: str, key: str, version: str, staged: Path,
             rows: int, files: dict[str, Any], problems: list[dict[str, Any]]) -> Chunk:
        """Sign and place a chunk whose files another engine's worker wrote into ``staged``
        (a directory in :attr:`root`, :func:`.chunk.write_files`)."""
        source = {"dataset": ds.name, "path": display, "version": version}
        self._safe_root()
        chunks.seal(self.root, key, self.cache.key, staged, source=source, rows=rows,
                    problems=problems, files=files)
        self.built += 1
        return Chunk.open(self.root / key, key, self.cache.key)

    def load(self, config: Config, ds: DatasetConfig, file: Path, display: str,
             blob: str | None) -> Chunk:
        """The chunk of one train file: opened when current and sound, else (re)built."""
        version = file_version(file, blob)
        key = chunk_key(ds, display, version)
        found = self.current(key, display)
        return found if found is not None else self.build(config, ds, file, display, key, version)

    def load_remote(self, config: Config, ds: DatasetConfig, remote: Any) -> Chunk:
        """The chunk of one remote train file (:mod:`~eval_firewall.datasets.remote`): keyed
        by the object's version, so an unchanged object is not read; else fetched (bounded)
        and built like a local file."""
        from ..datasets.remote import digest_version, fetched

        if remote.version is not None:
            version = f"remote:{remote.version}"
            key = chunk_key(ds, remote.display, version)
            found = self.current(key, remote.display)
            if found is not None:
                return found
        with fetched(remote, int(config.limits.max_file_bytes)) as file:
            if remote.version is None:
                version = f"remote:{digest_version(file)}"
                key = chunk_key(ds, remote.display, version)
                found = self.current(key, remote.display)
                if found is not None:
                    return found
            return self.build(config, ds, file, remote.display, key, version)

    def current(self, key: str, display: str) -> Chunk | None:
        """The chunk ``key`` when present and sound (its arrays' digests checked), else None
        (a bad one removed with a warning)."""
        found = self.open(key, display)
        if found is None:
            found = self.mirror(key)
            if found is None:
                return None
        try:                   # digests checked once per process (vectors: on use); a
            hashes = (NORM_HASH, f"{NORM_HASH}.order")      # mirrored file: when fetched
            for name in (*hashes, *(n for n in found.names if n.split(".")[0] in POSTINGS)):
                if found.here(f"{name}.npy"):
                    found.array(name)
            if found.here(ROWS):
                found.table()
            if not all(found.array(n).shape[:1] == (found.rows,)
                       for n in hashes if found.here(f"{n}.npy")):
                raise BadChunk("has arrays of the wrong length")
            return found
        except BadChunk as exc:
            self.discard(key, display, str(exc))
        return None


def chunk_contents(config: Config, ds: DatasetConfig, file: Path, display: str
                   ) -> tuple[Any, dict[str, np.ndarray], list[dict[str, Any]]]:
    """What one train file's chunk holds: its rows (with normalized texts) as columns, the
    named arrays (normalized-text hashes, postings) and its problems. Pure but for reading
    ``file``, so any engine's worker computes it alike."""
    table, problems = read_table(config, ds, file, display)
    from ..text.normalize import normalize_array

    norm = normalize_array(table.column("text")) if table.num_rows else None
    import pyarrow as pa

    if norm is None:
        norm = pa.chunked_array([pa.array([], pa.large_string())])
    table = table.append_column("norm", norm)
    norm_list = norm.to_pylist()
    hashes = norm_hashes(norm_list)
    arrays: dict[str, np.ndarray] = {NORM_HASH: hashes,
                                     f"{NORM_HASH}.order": np.argsort(hashes, kind="stable")}
    texts = norm.combine_chunks()
    for kind, build in POSTINGS.items():
        for name, array in build(texts).items():
            arrays[f"{kind}.{name}"] = array
    return table, arrays, problems


def read_table(config: Config, ds: DatasetConfig, file: Path, display: str
               ) -> tuple[Any, list[dict[str, Any]]]:
    """A file's rows as columns (:data:`~eval_firewall.datasets.columnar.COLUMNS`) and its
    problems, through the same readers (and checks) as every dataset."""
    import pyarrow as pa

    from ..datasets import _read_columnar_table, iter_rows
    from ..datasets.columnar import COLUMNS

    table = _read_columnar_table(config, ds, file, display)
    if table is not None:
        return table, []
    rows: list[Row] = []
    problems: list[dict[str, Any]] = []
    for item in iter_rows(config, ds, files=[file], display=display):
        if isinstance(item, RowProblem):
            problems.append(asdict(item))
        else:
            rows.append(item)
    strings = {
        "row_id": [r.row_id for r in rows], "text": [r.text for r in rows],
        "label": [r.label for r in rows],
        "label_source": [r.provenance.label_source for r in rows],
        "verified_by": [r.provenance.verified_by for r in rows],
        "generator": [r.provenance.generator for r in rows],
    }
    columns = {"line": pa.array([r.line for r in rows], pa.int64()),
               **{k: pa.array(v, pa.large_string()) for k, v in strings.items()}}
    return pa.table({c: columns[c] for c in COLUMNS}), problems


def load_train(config: Config, ds: DatasetConfig, store: IndexStore,
               on_rows: Callable[[int], None] | None = None) -> Any:
    """A train dataset read from its index chunks (each built if missing): a
    :class:`~eval_firewall.datasets.LoadedDataset` whose rows and normalized texts are
    sequences over the mapped chunks (:mod:`.columns`)."""
    from ..datasets import LoadedDataset, _card, _known_blobs, relative
    from .columns import IndexedRows, StringColumn

    files = resolve_paths(config, ds)
    displays = [relative(f, config.root) for f in files]
    blobs = _known_blobs(files)
    found = [store.load(config, ds, f, d, blobs.get(f)) for f, d in zip(files, displays)]
    for remote in resolve_remote(config, ds):
        found.append(store.load_remote(config, ds, remote))
        displays.append(remote.display)
    loaded = LoadedDataset(ds, displays)
    loaded.rows = IndexedRows(found, [ds.name] * len(found), ds.role, displays)  # type: ignore[assignment]
    loaded.problems = [RowProblem(**p) for c in found for p in c.problems]
    loaded.norm = StringColumn(found, "norm")  # type: ignore[assignment]
    if on_rows is not None:
        on_rows(len(loaded.rows) + len(loaded.problems))
    loaded.card = _card(config, ds, files)
    return loaded
