"""Reading datasets into rows: formats, dotted fields, dataset cards.

``load_dataset`` streams every file a dataset's globs match and turns records into
:class:`~eval_firewall.rows.Row` objects; records it cannot use become :class:`RowProblem`
entries (never silently dropped). A JSONL file is read by pyarrow's JSON reader instead when
cheap checks prove that gives the same rows (``columnar.py``); otherwise, and for every other
format, record by record.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config, DatasetConfig, resolve_paths
from ..errors import UserError
from ..rows import Row, RowProblem
from ..safeio import paths as containment
from .card import DatasetCard, find_card, read_card
from .fields import describe_columns, top_level
from .formats import detect_format, header_of, read_records
from .lines import BadRecord, check_not_lfs_pointer, first_non_utf8
from .rows import record_digest, row_from_record

if TYPE_CHECKING:
    from ..cache import Cache

__all__ = ["LoadedDataset", "RowProblem", "load_dataset", "iter_rows", "DatasetCard", "record_digest",
           "row_from_record"]


@dataclass(slots=True)
class LoadedDataset:
    config: DatasetConfig
    files: list[str]
    rows: list[Row] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    card: DatasetCard | None = None
    norm: list[str] | None = None   # normalized row texts, when a cache provided them

    @property
    def name(self) -> str:
        """The dataset's configured name."""
        return self.config.name

    @property
    def role(self) -> str:
        """The dataset's role (``eval`` or ``train``)."""
        return self.config.role


def relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _needed_columns(ds: DatasetConfig) -> list[str]:
    paths = list(ds.text)
    for extra in (ds.label, ds.id):
        if extra:
            paths.append(extra)
    if ds.provenance:
        paths.extend(p for p in ds.provenance.model_dump().values() if p)
    return sorted({top_level(p) for p in paths})


def _check_header(config: Config, ds: DatasetConfig, file: Path, fmt: str, display: str) -> None:
    """A column the config names that the file's header lacks is a config/file mismatch.
    The message shows the header only if its names are few, short and printable."""
    header = header_of(file, fmt, display, config.limits)
    if header is None:
        return
    if not header:
        if fmt in ("csv", "tsv"):
            return  # empty file: no rows
    for text_field in ds.text:
        if top_level(text_field) not in header:
            raise UserError(f"column is missing from the header ({describe_columns(header)})",
                            path=display, line=1 if fmt != "parquet" else None, field=text_field)


# Unreadable rows listed one by one, per file; the rest of a file's are counted into one
# problem, so ten million broken lines cost no more memory than a thousand.
MAX_LISTED_PROBLEMS = 1_000


class _Unlisted:
    """A file's unreadable rows past the listed ones: counted, their digests hashed in
    order, the first one's line kept."""

    def __init__(self) -> None:
        self.count, self.line = 0, 0
        self.hasher = hashlib.blake2b(digest_size=16)

    def add(self, problem: RowProblem) -> None:
        self.count += 1
        self.line = self.line or problem.line
        self.hasher.update(f"{problem.digest or (problem.line, problem.message)}\n".encode())

    def problem(self, ds: DatasetConfig, display: str) -> RowProblem:
        return RowProblem(ds.name, display, self.line,
                          f"{self.count:,} more unreadable rows in {display} (the first "
                          f"{MAX_LISTED_PROBLEMS:,} are listed one by one; this one stands "
                          f"for the rest, from line {self.line})",
                          digest=self.hasher.hexdigest(), count=self.count)


def iter_rows(config: Config, ds: DatasetConfig, *, keep_record: bool = False,
              files: list[Path] | None = None, display: str | None = None
              ) -> Iterator[Row | RowProblem]:
    """Stream a dataset's rows (and problems) file by file, in file then line order
    (``display``: how reports name the one file given, e.g. a remote file's URL). A file's
    first :data:`MAX_LISTED_PROBLEMS` unreadable rows are each a problem; the rest make one
    problem of their own (``count``), after the file's last row."""
    named = display
    for file in files if files is not None else resolve_paths(config, ds):
        display = named if named is not None else relative(file, config.root)
        listed, unlisted = 0, _Unlisted()
        try:
            check_not_lfs_pointer(file, display)
            fmt = detect_format(file, ds.format, display)
            _check_header(config, ds, file, fmt, display)
            for line, record in read_records(file, fmt, _needed_columns(ds), config.limits,
                                             display):
                if isinstance(record, BadRecord):
                    made: Row | RowProblem = RowProblem(ds.name, display, line, record.message,
                                                        record.field, record.digest)
                else:
                    made = row_from_record(ds, record, display, line, keep_record)
                if isinstance(made, RowProblem):
                    if listed >= MAX_LISTED_PROBLEMS:
                        unlisted.add(made)
                        continue
                    listed += 1
                yield made
        except UnicodeDecodeError as exc:
            where = first_non_utf8(file, config.limits)
            if where is None:
                raise UserError(f"not UTF-8 text: {exc.reason}", path=display) from None
            line, column, byte = where
            raise UserError(f"not UTF-8 text: byte 0x{byte:02x} at column {column}",
                            path=display, line=line,
                            hint="save the file as UTF-8") from None
        except (OSError, EOFError) as exc:
            raise UserError(f"cannot read file: {exc}", path=display) from None
        if unlisted.count:
            yield unlisted.problem(ds, display)


def load_dataset(config: Config, ds: DatasetConfig, *, keep_record: bool = False,
                 on_row: Callable[[], None] | None = None, cache: Cache | None = None
                 ) -> LoadedDataset:
    """Read a dataset. With a :class:`~eval_firewall.cache.Cache`, parsed files are reused."""
    # Rows are built by the million and cannot form reference cycles: without the cyclic
    # garbage collector running over and over, reading is much faster.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _load_dataset(config, ds, keep_record, on_row, cache)
    finally:
        if collecting:
            gc.enable()


def _load_dataset(config: Config, ds: DatasetConfig, keep_record: bool,
                  on_row: Callable[[], None] | None, cache: Cache | None) -> LoadedDataset:
    files = resolve_paths(config, ds)
    loaded = LoadedDataset(ds, [relative(f, config.root) for f in files])
    if cache is None or not cache.enabled or keep_record:
        cache = None
    norms: list[str] = []
    blobs = _known_blobs(files) if cache is not None else {}
    for file in files:
        key = ""
        if cache is not None:
            from . import cached

            display = relative(file, config.root)
            key = _cache_key(ds, display, file, blobs.get(file))
            if _from_cache(cache, key, ds, display, loaded, on_row, norms):
                continue
        if _read_columnar(config, ds, file, loaded, keep_record, on_row, cache, key, norms):
            continue
        start_rows, start_problems = len(loaded.rows), len(loaded.problems)
        _take(loaded, iter_rows(config, ds, keep_record=keep_record, files=[file]), on_row)
        if cache is not None:
            from dataclasses import asdict

            norms.extend(cached.store(cache, key, loaded.rows[start_rows:],
                                      [asdict(p) for p in loaded.problems[start_problems:]]))
    _load_remote(config, ds, loaded, keep_record, on_row, cache is not None, norms)
    if cache is not None:
        loaded.norm = norms
    loaded.card = _card(config, ds, files)
    return loaded


def _take(loaded: LoadedDataset, items: Iterator[Row | RowProblem],
          on_row: Callable[[], None] | None) -> None:
    """Add a file's rows and problems, as :func:`iter_rows` yields them, to ``loaded``."""
    for item in items:
        if isinstance(item, RowProblem):
            loaded.problems.append(item)
        else:
            loaded.rows.append(item)
        if on_row:
            on_row()


def _load_remote(config: Config, ds: DatasetConfig, loaded: LoadedDataset, keep_record: bool,
                 on_row: Callable[[], None] | None, want_norm: bool, norms: list[str]) -> None:
    """Add the rows of a train dataset's remote files (datasets/remote.py), each fetched
    (bounded) and read by the same readers as a local file. (The train index keeps them
    by version: see index/store.py.)"""
    from ..config import resolve_remote
    from .remote import fetched

    for remote in resolve_remote(config, ds):
        loaded.files.append(remote.display)
        start = len(loaded.rows)
        with fetched(remote, int(config.limits.max_file_bytes)) as file:
            _take(loaded, iter_rows(config, ds, keep_record=keep_record, files=[file],
                                    display=remote.display), on_row)
        if want_norm:
            from ..text.normalize import normalize

            norms.extend(normalize(r.text) for r in loaded.rows[start:])


def _from_cache(cache: Cache, key: str, ds: DatasetConfig, display: str, loaded: LoadedDataset,
                on_row: Callable[[], None] | None, norms: list[str]) -> bool:
    """Add a file's cached rows, problems and normalized texts; False on a miss."""
    from . import cached

    hit = cached.load(cache, key, ds, display)
    if hit is None:
        return False
    rows, norm, problems = hit
    loaded.rows.extend(rows)
    loaded.problems.extend(RowProblem(**p) for p in problems)
    norms.extend(norm)
    if on_row:
        for _ in range(len(rows) + len(problems)):
            on_row()
    return True


def _read_columnar(config: Config, ds: DatasetConfig, file: Path, loaded: LoadedDataset,
                   keep_record: bool, on_row: Callable[[], None] | None, cache: Cache | None,
                   key: str, norms: list[str]) -> bool:
    """Read a JSONL file through Arrow columns (and cache them with their normalized texts)
    when pyarrow's reader provably gives the rows the exact path would (columnar.py); False,
    reading nothing, when it may not."""
    display = relative(file, config.root)
    if keep_record:
        return False
    table = _read_columnar_table(config, ds, file, display)
    if table is None:
        return False
    from .columnar import build_rows

    loaded.rows.extend(build_rows(table, ds.name, ds.role, display))
    if on_row:
        for _ in range(table.num_rows):
            on_row()
    if cache is not None:
        from . import cached

        norms.extend(cached.store_table(cache, key, table))
    return True


def _read_columnar_table(config: Config, ds: DatasetConfig, file: Path, display: str) -> Any:
    """A JSONL file's rows as Arrow columns when pyarrow's reader provably gives the exact
    path's rows (columnar.py), else None (having read nothing when the format is not JSONL)."""
    try:
        if detect_format(file, ds.format, display) != "jsonl":
            return None
    except UserError:
        return None         # the exact path raises it
    from .columnar import read_columns

    return read_columns(file, ds, config.limits, display)


def _known_blobs(files: list[Path]) -> dict[Path, str]:
    """The git blob of each file git knows unchanged: such a file is keyed without reading it."""
    from ..incremental.git import clean_blobs

    return clean_blobs(files)


def _cache_key(ds: DatasetConfig, display: str, file: Path, blob: str | None) -> str:
    """The rows cache key of a data file; a file git knows unchanged (``blob``) is not read
    (its content was parsed when its rows were cached, so it is no LFS pointer)."""
    from . import cached

    if blob is None:
        check_not_lfs_pointer(file, display)
    return cached.file_key(ds, display, file, blob)


def _card(config: Config, ds: DatasetConfig, files: list[Path]) -> DatasetCard | None:
    """The dataset's card: the configured one, else the nearest README.md with front matter;
    either must lie inside the repository (paths.py)."""
    key = config.key_of(ds, "card")
    boundary = containment.repository_root(config.root)
    card_path = config.root / ds.card if ds.card else find_card(files, config.root)
    if ds.card and (card_path is None or not card_path.is_file()):
        raise UserError("dataset card not found", path=config.source, line=config.line_of(key),
                        field=key)
    if not card_path:
        return None
    containment.check_file(card_path, boundary, source=config.source, line=config.line_of(key),
                           field=key, display=ds.card or relative(card_path, config.root))
    return read_card(card_path, relative(card_path, config.root), config.limits)
