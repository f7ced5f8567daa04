"""The train index in object storage: chunks published by a trusted build, fetched by the audit
a file at a time, only the files a search needs.

The policy's ``index.location`` (a URL prefix: ``s3://``, ``gs://``, ``file://``) holds
``chunks/<key>/``, the same files as a chunk in the cache directory (:mod:`.chunk`) with an
unsigned ``MANIFEST.json`` that names its key: the cache's signing key is per machine, and the
location is trusted as the train data beside it is, through who may write there (the trusted
job) and the gate's policy (a pull request cannot name another location). What is read from it
is still checked: a manifest is bounded and well-formed, names files only inside its chunk,
each of bounded size, and a fetched file must have the size and SHA-256 the manifest lists.

A chunk found there is mirrored into the cache directory as a signed manifest alone; each of
its files is fetched the first time a search maps it (:meth:`.chunk.Chunk.array`), checked,
and kept, so a pull request whose eval rows are all cached fetches nothing, and a search
fetches the arrays it scans, never a chunk's rows unless a finding needs one. ``index build``
publishes its chunks there (:meth:`RemoteIndex.publish`): files first, the manifest last, so a
reader never sees a manifest whose files are not there. It deletes there only when asked
(``index build --prune-location``: :meth:`RemoteIndex.prune`), the manifest first.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from ..errors import UserError
from .chunk import FORMAT, MANIFEST, MAX_FILE_BYTES, MAX_MANIFEST_BYTES, ROWS
from .digests import note_checked

CHUNKS = "chunks"
_BLOCK = 1 << 22
_SHA = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}$")


class RemoteIndex:
    """The chunks under one ``index.location``."""

    def __init__(self, location: str, source: str | None = None, line: int | None = None
                 ) -> None:
        """The index at ``location`` (named in errors as the config ``source``'s key
        ``index.location``, at ``line``)."""
        from ..datasets.remote import filesystem, public_url

        self._source, self._line = source, line
        self.location = location.rstrip("/")
        self.display = public_url(self.location)
        self._fs, root = filesystem(self.location)
        self._root = str(root).rstrip("/")

    def _path(self, key: str, name: str | None = None) -> str:
        return "/".join(p for p in (self._root, CHUNKS, key, name) if p)

    def _refusal(self, message: str, hint: str | None = None) -> UserError:
        return UserError(message, path=self._source, line=self._line, field="index.location",
                         hint=hint)

    def _error(self, what: str, exc: BaseException) -> UserError:
        return self._refusal(f"cannot {what} the index at {self.display}: "
                             f"{type(exc).__name__}: {exc}"[:400])

    def manifest(self, key: str) -> dict[str, Any] | None:
        """The manifest of chunk ``key`` there (without its key), None when there is none; a
        malformed one is a user error (the location's writer must fix it)."""
        try:
            with self._fs.open(self._path(key, MANIFEST), "rb") as fh:
                raw = fh.read(MAX_MANIFEST_BYTES + 1)
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - a client's error, said in one line
            raise self._error("read", exc) from None
        why = _malformed(raw, key)
        if why is not None:
            raise self._refusal(f"index chunk {key[:12]} at {self.display} {why}",
                                "rebuild it: eval-firewall index build")
        body = json.loads(raw)
        del body["key"]
        return dict(body)

    def fetch(self, key: str, name: str, meta: dict[str, Any], directory: Path) -> None:
        """Copy file ``name`` of chunk ``key`` into ``directory`` (atomically), checking it
        has the size and SHA-256 ``meta`` lists; a user error if not."""
        size, sha = int(meta["size"]), str(meta["sha256"])
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-fetch-")
        h, copied = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as dst:
                try:
                    with self._fs.open(self._path(key, name), "rb") as src:
                        while block := src.read(min(_BLOCK, size - copied + 1)):
                            copied += len(block)
                            if copied > size:
                                break
                            h.update(block)
                            dst.write(block)
                except Exception as exc:  # noqa: BLE001
                    raise self._error(f"fetch {name} of chunk {key[:12]} from", exc) from None
            if copied != size or h.hexdigest() != sha:
                raise self._refusal(f"index chunk {key[:12]} at {self.display} has {name} "
                                    "failing its digest check (changed or truncated there)",
                                    "rebuild it: eval-firewall index build")
            os.replace(tmp, directory / name)
            note_checked(directory / name, sha)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def failure(self, key: str) -> Any:
        """What chunk ``key``'s readers raise: a user error saying why, naming the location."""
        def fail(why: str) -> UserError:
            return self._refusal(f"index chunk {key[:12]} at {self.display} {why}",
                                 "rebuild it: eval-firewall index build")
        return fail

    def block_reader(self, key: str, name: str, meta: dict[str, Any], digests: Any) -> Any:
        """File ``name`` of chunk ``key`` read by range (:class:`~.ranges.BlockReader`;
        ``meta``: its manifest entry; ``digests``: its blocks'), each block checked."""
        from .ranges import BlockReader

        path = self._path(key, name)

        def read(start: int, stop: int) -> bytes:
            try:
                data: bytes = self._fs.cat_file(path, start=start, end=stop)
            except Exception as exc:  # noqa: BLE001
                raise self._error(f"read {name} of chunk {key[:12]} from", exc) from None
            return data
        return BlockReader(int(meta["size"]), int(meta["block"]), digests, read,
                           self.failure(key), name)

    def publish(self, chunk: Any) -> bool:
        """Put a chunk of the cache directory there, unless it is there already: the files
        it lacks (or holds otherwise), then the manifest. Whether anything was written."""
        body = {k: v for k, v in chunk.manifest.items() if k not in ("hmac-sha256", "mirror")}
        try:
            there = self.manifest(chunk.key)
        except UserError:
            there = None                         # a malformed one is replaced
        if there == body:
            return False
        files = (there or {}).get("files", {})
        for name, meta in body["files"].items():
            if files.get(name, {}).get("sha256") != meta["sha256"]:
                chunk.fetch(name)                # a mirrored chunk's file: fetched first
                self.put_file(chunk.key, chunk.directory / name)
        self.put_manifest(chunk.key, body)
        return True

    def put_file(self, key: str, path: Path) -> None:
        """Upload one file of chunk ``key`` (before its manifest)."""
        try:
            self._fs.put_file(str(path), self._path(key, path.name))
        except Exception as exc:  # noqa: BLE001
            raise self._error("write", exc) from None

    def put_manifest(self, key: str, body: dict[str, Any]) -> None:
        """Upload the manifest of chunk ``key`` (its files are there): the chunk exists."""
        try:
            self._fs.pipe_file(self._path(key, MANIFEST), json.dumps(
                {**body, "key": key}, sort_keys=True).encode())
        except Exception as exc:  # noqa: BLE001
            raise self._error("write", exc) from None

    def prune(self, keep: set[str], min_age: float) -> tuple[int, int]:
        """Delete there what no train file in ``keep`` uses and was written at least
        ``min_age`` seconds ago: the chunks of other keys (the manifest first, so readers no
        longer find the chunk, then its files), and in a chunk that is kept, the files its
        manifest no longer lists (the row norms of a train set it dropped). A folder without
        a manifest (a publish under way, or cut off), a name that is not a chunk's, or a file
        whose age the filesystem does not tell, is left alone. How many chunks and files."""
        chunks = files = 0
        for key in self._listed(self._path("")):
            if not _NAME.match(key):
                continue
            manifest = self._path(key, MANIFEST)
            if key in keep:
                files += self._prune_files(key, min_age)
            elif self._older(manifest, min_age):
                self._delete(manifest)
                self._delete(self._path(key), recursive=True)
                chunks += 1
        return chunks, files

    def _prune_files(self, key: str, min_age: float) -> int:
        """Delete the files of kept chunk ``key`` that its manifest there does not list."""
        listed = (self.manifest(key) or {}).get("files")
        if not isinstance(listed, dict):
            return 0
        stale = [name for name in self._listed(self._path(key))
                 if name != MANIFEST and name not in listed
                 and self._older(self._path(key, name), min_age)]
        for name in stale:
            self._delete(self._path(key, name))
        return len(stale)

    def _listed(self, path: str) -> list[str]:
        """The names in folder ``path`` there (none when it is not there)."""
        try:
            return [str(e).rstrip("/").rsplit("/", 1)[-1]
                    for e in self._fs.ls(path, detail=False, refresh=True)]
        except FileNotFoundError:
            return []
        except Exception as exc:  # noqa: BLE001
            raise self._error("list", exc) from None

    def _delete(self, path: str, recursive: bool = False) -> None:
        try:
            if recursive:
                self._fs.rm(path, recursive=True)
            else:
                self._fs.rm_file(path)
        except FileNotFoundError:
            pass                                 # deleted meanwhile by another job
        except Exception as exc:  # noqa: BLE001
            raise self._error("delete from", exc) from None

    def _older(self, path: str, seconds: float) -> bool:
        """Whether ``path`` there was written at least ``seconds`` ago (False when it is not
        there, or its filesystem does not say when)."""
        from datetime import datetime, timezone

        try:
            written = self._fs.modified(path)
        except (FileNotFoundError, NotImplementedError):
            return False
        except Exception as exc:  # noqa: BLE001
            raise self._error("list", exc) from None
        if written.tzinfo is None:
            written = written.replace(tzinfo=timezone.utc)
        return bool((datetime.now(timezone.utc) - written).total_seconds() >= seconds)


def _malformed(raw: bytes, key: str) -> str | None:
    """Why a manifest read from the location cannot be used; None when it can."""
    if len(raw) > MAX_MANIFEST_BYTES:
        return "has a manifest over 1 MiB"
    try:
        body = json.loads(raw)
    except ValueError:
        return "has an unreadable manifest"
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        return "was written by another index format"
    if body.get("key") != key:
        return "has a manifest of another chunk"
    files, rows = body.get("files"), body.get("rows")
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0 \
            or not isinstance(body.get("problems", []), list):
        return "has a manifest without its rows"
    if not all(_problem(p) for p in body.get("problems", [])):
        return "has a manifest with an unreadable row problem"
    if not isinstance(files, dict) or ROWS not in files:
        return "has a manifest without its files"
    for name, meta in files.items():
        if not isinstance(name, str) or not _NAME.match(name) or name == MANIFEST:
            return f"lists a file outside it ({str(name)[:80]!r})"
        size = meta.get("size") if isinstance(meta, dict) else None
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_FILE_BYTES \
                or not _SHA.match(str(meta.get("sha256"))):
            return f"lists {name} without a bounded size and SHA-256"
        block = meta.get("block", 1 << 12)
        if not isinstance(block, int) or isinstance(block, bool) or not \
                1 << 12 <= block <= 1 << 26 or block & (block - 1):
            return f"lists {name} with a block size that is no power of two of 4 KiB to 64 MiB"
    return None


def _problem(item: Any) -> bool:
    """Whether a manifest's row problem has a :class:`~eval_firewall.rows.RowProblem`'s
    fields, of their types (its text is escaped where reports show it, as any)."""
    from dataclasses import fields

    from ..rows import RowProblem

    if not isinstance(item, dict) or not set(item) <= {f.name for f in fields(RowProblem)}:
        return False
    texts = all(isinstance(item.get(k), str) for k in ("dataset", "path", "message"))
    numbers = all(isinstance(item.get(k, 1), int) and not isinstance(item.get(k, 1), bool)
                  for k in ("line", "count"))
    optional = all(item.get(k) is None or isinstance(item[k], str) for k in ("field", "digest"))
    return texts and numbers and optional and "line" in item


def worker_mirror(key: str) -> Path:
    """Where a Ray worker on a node without the driver's cache directory keeps the files of
    chunk ``key`` it fetched: a private directory of this user in the node's temporary folder
    (checked files only: a file that is there is checked again when mapped)."""
    base = Path(tempfile.gettempdir()) / f"eval-firewall-index-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(base)
    if not os.path.isdir(base) or os.path.islink(base) or info.st_uid != os.getuid() \
            or info.st_mode & 0o077:
        raise UserError(f"{base} is not a private directory of this user", path=str(base))
    (base / key).mkdir(mode=0o700, exist_ok=True)
    return base / key


def remote_index(config: Any) -> RemoteIndex | None:
    """The index location of a config (its policy's), None when it names none."""
    location = config.index.location
    return RemoteIndex(location, config.source, config.line_of("index.location")) \
        if location else None
