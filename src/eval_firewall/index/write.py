"""Writing index chunks: a chunk's files written and hashed (by the process that builds it, or
an engine's worker), its manifest signed, and the whole renamed into place atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import remove_path
from . import chunk
from .digests import file_meta, note_checked
from .ranges import BLOCK, BLOCKS, layout


def write(parent: Path, key: str, signing: bytes, *, source: dict[str, Any], rows: Any,
          arrays: Mapping[str, np.ndarray], problems: list[dict[str, Any]]) -> None:
    """Write a chunk ``parent/key`` atomically: ``rows`` (a pyarrow Table) and ``arrays``.

    Built in a temporary directory beside it and renamed into place, so a reader sees either
    no chunk or a whole one; a chunk already there is replaced.
    """
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=".tmp-"))
    try:
        files = write_files(tmp, rows, arrays)
        seal(parent, key, signing, tmp, source=source, rows=int(rows.num_rows),
             problems=problems, files=files)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_files(directory: Path, rows: Any, arrays: Mapping[str, np.ndarray]
                ) -> dict[str, Any]:
    """Write a chunk's files (``rows``, a pyarrow Table, and ``arrays``) into ``directory``;
    each file's size and SHA-256, as the manifest lists them. (An engine's worker may write
    them beside the chunks; only :func:`seal` needs the signing key.)"""
    import pyarrow as pa

    files: dict[str, Any] = {}
    with pa.OSFile(str(directory / chunk.ROWS), "wb") as sink, \
            pa.ipc.new_file(sink, rows.schema) as writer:
        writer.write_table(rows)
    meta = file_meta(directory / chunk.ROWS, BLOCK)        # read by range (.ranges): its
    files[f"{BLOCKS}.npy"] = chunk.write_npy(directory, f"{BLOCKS}.npy",    # blocks' digests
                                             meta.pop("digests"))
    meta["nulls"] = {name: rows.column(name).null_count for name in rows.schema.names}
    where = layout(directory / chunk.ROWS)
    if where is not None:
        meta["layout"] = where
    files[chunk.ROWS] = meta
    for name, array in arrays.items():
        files[f"{name}.npy"] = chunk.write_npy(directory, f"{name}.npy", array)
    return files


def seal(parent: Path, key: str, signing: bytes, directory: Path, *, source: dict[str, Any],
         rows: int, problems: list[dict[str, Any]], files: dict[str, Any]) -> None:
    """Sign the manifest of the chunk files in ``directory`` (:func:`write_files`; a
    directory in ``parent``) and rename it into place as ``parent/key``."""
    body = {"format": chunk.FORMAT, "source": source, "rows": rows, "problems": problems,
            "files": files}
    chunk.write_manifest(directory, key, body, signing)
    target = parent / key
    if os.path.lexists(target):
        remove(target)
    os.rename(directory, target)
    for name, meta in files.items():      # hashed by their writer (here, or the worker that
        note_checked(target / name, meta["sha256"])        # the manifest trusts)


def remove(path: Path) -> None:
    """Remove a chunk (or whatever is in its place), never following a link."""
    remove_path(path)
