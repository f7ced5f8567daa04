"""``index build --engine ray``: the chunks of missing train files computed on a Ray cluster.

One Ray task per train file (not Ray Data's ``read_json``, which keeps no line numbers and
fails a whole block on one bad line): each task reads its file through the same bounded
readers as the local engine (a remote file fetched from object storage by the worker, a local
one from the shared filesystem) and computes the chunk's contents with the index package's
own builder (:func:`~eval_firewall.index.store.chunk_contents`), so a bad line is the same
``invalid-row`` and the arrays are the same; with the static model (put in the object store
once), it encodes the rows' static vectors too. A worker that shares the cache's filesystem
(it finds the token the driver wrote in its staging directory) writes the chunk's files there
itself, and the driver only signs each manifest and renames the chunk into place: no chunk
crosses the object store, and the cache's key never leaves the driver. Elsewhere the contents
come back to the driver, which writes them. Either way the format is the local engine's;
``audit`` uses it unchanged (and ``audit --engine ray`` searches it on the cluster:
:mod:`eval_firewall.search.shards`).

Ray is the optional extra ``eval-firewall[ray]``. The cluster is ``--ray-address`` (or
``RAY_ADDRESS``); without one, a local Ray is started for the run on 127.0.0.1 and stopped
after it (:func:`session`). A Ray already initialized in the process (a test's) is used as it
is.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..config import Config, DatasetConfig, resolve_paths, resolve_remote
from ..errors import UserError
from ..progress import Progress
from .store import IndexStore, chunk_key, file_version, vectors_name

TASK_CPUS = 1.0
LOCAL_CPUS = 2
TOKEN = "token"     # the staging directory's file naming the build
ENCODE_ROWS = 65536     # texts a worker encodes at once (bounds the float32 output)
# The static model a worker process was handed first, by key: its cache of word vectors then
# serves every task of that worker, as the local engine's one model serves every chunk (each
# task gets a fresh copy from the object store, which would tokenize its words again).
_RETRIEVERS: dict[str, Any] = {}


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("--engine ray needs Ray: pip install 'eval-firewall[ray]'") from None
    return ray


@contextmanager
def session(address: str | None = None) -> Iterator[Any]:
    """Ray for the length of a run: a Ray already initialized in this process (a test's) as
    it is; else the cluster at ``address`` or ``RAY_ADDRESS``; else a local Ray of
    :data:`LOCAL_CPUS` CPUs on 127.0.0.1, started now and stopped after."""
    ray = _ray()
    started = False
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or None
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=LOCAL_CPUS, include_dashboard=False, log_to_driver=False,
                     _node_ip_address="127.0.0.1")
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _compute(config: Config, ds: DatasetConfig, source: Any, display: str,
             staging: tuple[str, str] | None = None, retriever: Any = None,
             key: str | None = None) -> Any:
    """A worker's part: the chunk ``key`` of one file (a path, or a remote file). When the
    worker sees the driver's staging directory (``staging``: its path and the token the
    driver wrote in it, i.e. a filesystem they share), it writes the chunk's files there,
    with the static vectors of ``retriever`` (the static model, if given), and returns their
    list; else, with an index location in the config, it uploads them there (the driver
    writes the manifest); else it returns the contents themselves, for the driver to write
    (and the driver's run to encode). A user error (a file that cannot be read) comes back as
    its fields, raised by the driver."""
    from .write import write_files

    contents = _read(config, ds, source, display)
    if isinstance(contents, dict):
        return contents
    shared = staging is not None and _shared(*staging)
    if not shared and (key is None or not config.index.location):
        return contents
    table, arrays, problems = contents
    name = None
    if retriever is not None:
        retriever = _RETRIEVERS.setdefault(retriever.key, retriever)
        name = vectors_name(retriever.key)
        arrays[name] = _encode(retriever, table.column("text"))
    directory = Path(tempfile.mkdtemp(dir=staging[0] if shared and staging else None,
                                      prefix="chunk-"))
    files = write_files(directory, table, arrays)
    if name is not None:
        files[f"{name}.npy"]["about"] = retriever.key      # as Chunk.add notes it
    done = {"rows": int(table.num_rows), "files": files, "problems": problems}
    if shared:
        return {"staged": str(directory), **done}
    try:                                  # no shared filesystem: straight to the location
        from .remote import remote_index

        remote = remote_index(config)
        assert remote is not None and key is not None
        for name in files:
            remote.put_file(key, directory / name)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return {"uploaded": True, **done}


def _read(config: Config, ds: DatasetConfig, source: Any, display: str) -> Any:
    """One file's chunk contents, or a user error's fields (for the driver to raise)."""
    from ..datasets.remote import RemoteFile, fetched
    from .store import chunk_contents

    try:
        if isinstance(source, RemoteFile):
            with fetched(source, int(config.limits.max_file_bytes)) as file:
                return chunk_contents(config, ds, file, display)
        return chunk_contents(config, ds, Path(source), display)
    except UserError as exc:
        return {"message": exc.message, "path": exc.path, "line": exc.line, "field": exc.field,
                "hint": exc.hint}


def _encode(retriever: Any, texts: Any) -> Any:
    """The static vectors (float16) of a column of texts, :data:`ENCODE_ROWS` at a time."""
    import numpy as np

    out = np.empty((len(texts), retriever.dim), dtype=np.float16)
    for r0 in range(0, len(texts), ENCODE_ROWS):
        part = texts.slice(r0, ENCODE_ROWS).to_pylist()
        out[r0:r0 + len(part)] = retriever.encode(part)
    return out


def _shared(directory: str, token: str) -> bool:
    """Whether ``directory`` is the driver's staging directory (it holds the token)."""
    try:
        with open(os.path.join(directory, TOKEN), encoding="ascii") as fh:
            return fh.read(len(token) + 1) == token
    except OSError:
        return False


@contextmanager
def _staging(store: IndexStore) -> Iterator[tuple[str, str]]:
    """A staging directory beside the chunks (the same filesystem, so a chunk written there
    is renamed into place), holding a fresh token; removed after the build."""
    import secrets

    store._safe_root()
    store.root.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(dir=store.root, prefix=".tmp-ray-"))
    token = secrets.token_hex(16)
    try:
        (directory / TOKEN).write_text(token, encoding="ascii")
        yield str(directory.resolve()), token
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def pending(config: Config, datasets: Sequence[DatasetConfig], store: IndexStore
            ) -> list[tuple[DatasetConfig, Any, str, str, str]]:
    """(dataset, source, display, key, version) of each train file whose chunk is missing
    (or failed its check). A remote file whose client gives no version is left to the local
    path (its bytes must be read to key it)."""
    from ..datasets import _known_blobs, relative

    out = []
    for ds in datasets:
        files = resolve_paths(config, ds)
        blobs = _known_blobs(files)
        for f in files:
            display = relative(f, config.root)
            version = file_version(f, blobs.get(f))
            key = chunk_key(ds, display, version)
            if store.current(key, display) is None:
                out.append((ds, str(f), display, key, version))
        for remote in resolve_remote(config, ds):
            if remote.version is None:
                continue
            version = f"remote:{remote.version}"
            key = chunk_key(ds, remote.display, version)
            if store.current(key, remote.display) is None:
                out.append((ds, remote, remote.display, key, version))
    return out


def build(config: Config, datasets: Sequence[DatasetConfig], store: IndexStore,
          progress: Progress, address: str | None = None, retriever: Any = None) -> int:
    """Build the missing chunks of ``datasets`` on Ray, with the static vectors of
    ``retriever`` when given (encoded by the workers); the number built.

    While Ray starts (seconds: its processes, and a cluster's connection), the driver builds
    the first missing chunks itself, the same way (:class:`_Early`); Ray's tasks get the rest.
    """
    _ray()
    todo = pending(config, datasets, store)
    if not todo:
        return 0
    with _staging(store) as staging, progress.stage("index on Ray", total=len(todo)) as stage:
        early = _Early(todo, config, staging, retriever)
        try:
            with session(address) as ray:
                rest = early.stop()
                task = ray.remote(num_cpus=TASK_CPUS, max_retries=1)(_compute)
                config_ref = ray.put(config)
                model_ref = ray.put(retriever) if retriever is not None else None
                refs = {task.remote(config_ref, ds, source, display, staging, model_ref, key):
                        (ds, display, key, version) for ds, source, display, key, version in rest}
                waiting = list(refs)
                while waiting:
                    done, waiting = ray.wait(waiting, num_returns=1)
                    ds, display, key, version = refs[done[0]]
                    try:
                        result = ray.get(done[0])
                    except ray.exceptions.RayError as exc:
                        raise UserError(f"the Ray task reading it failed: {type(exc).__name__}",
                                        path=display) from None
                    _place(store, staging, ds, display, key, version, result)
                    stage.advance(1)
        finally:
            early.stop()
            early.thread.join()
        if early.error is not None:
            raise early.error
        for (ds, _, display, key, version), result in early.done:
            _place(store, staging, ds, display, key, version, result)
            stage.advance(1)
    return len(todo)


class _Early:
    """The driver's own part while Ray starts: a thread taking missing files from the front
    of the list and computing their chunks as a worker would, until :meth:`stop`."""

    def __init__(self, todo: list[Any], config: Config, staging: tuple[str, str],
                 retriever: Any) -> None:
        import threading

        self.todo: list[Any] = list(todo)
        self.done: list[tuple[Any, Any]] = []
        self.error: BaseException | None = None
        self.lock, self.stopped = threading.Lock(), False
        self.thread = threading.Thread(target=self._run, args=(config, staging, retriever),
                                       daemon=True)
        self.thread.start()

    def _run(self, config: Config, staging: tuple[str, str], retriever: Any) -> None:
        while True:
            with self.lock:
                if self.stopped or not self.todo:
                    return
                item = self.todo.pop(0)
            ds, source, display, _, _ = item
            try:
                self.done.append((item, _compute(config, ds, source, display, staging,
                                                 retriever)))
            except BaseException as exc:       # raised by the driver after the join
                self.error = exc
                return

    def stop(self) -> list[Any]:
        """Take no more files; those not taken, for Ray."""
        with self.lock:
            self.stopped = True
            rest, self.todo = self.todo, []
        return rest


def _place(store: IndexStore, staging: tuple[str, str], ds: DatasetConfig, display: str,
           key: str, version: str, result: Any) -> None:
    """Sign and place a computed chunk (staged files, or contents to write); a user error
    the worker met is raised here."""
    if isinstance(result, dict) and "message" in result:
        raise UserError(result.pop("message"), **result)
    if isinstance(result, dict) and result.get("uploaded"):   # at the index location
        from .chunk import FORMAT

        assert store.remote is not None
        store.remote.put_manifest(key, {
            "format": FORMAT, "source": {"dataset": ds.name, "path": display, "version": version},
            "rows": result["rows"], "problems": result["problems"], "files": result["files"]})
        if store.mirror(key) is None:
            raise UserError("a Ray worker's chunk is not at the index location", path=display)
        store.built += 1
    elif isinstance(result, dict):     # written by the worker: signed here
        staged = Path(result["staged"])
        if staged.parent != Path(staging[0]) or staged.is_symlink():
            raise UserError("a Ray worker staged a chunk outside the index", path=display)
        store.seal(ds, display, key, version, staged, result["rows"], result["files"],
                   result["problems"])
    else:
        table, arrays, problems = result
        store.write(ds, display, key, version, table, arrays, problems)
