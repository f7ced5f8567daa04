"""``index build --engine ray``: the chunks of missing train files computed on a Ray cluster.

One Ray task per train file (not Ray Data's ``read_json``, which keeps no line numbers and
fails a whole block on one bad line): each task reads its file through the same bounded
readers as the local engine (a remote file fetched from object storage by the worker, a local
one from the shared filesystem) and computes the chunk's contents with the index package's
own builder (:func:`~eval_firewall.index.store.chunk_contents`), so a bad line is the same
``invalid-row`` and the arrays are the same. The driver writes and signs each chunk as it
arrives (the cache's key never leaves it), in the same format; ``audit`` uses it unchanged.

Ray is the optional extra ``eval-firewall[ray]``. The cluster is ``--ray-address`` (or
``RAY_ADDRESS``); without one, a local Ray is started for the run on 127.0.0.1 and stopped
after it. A Ray already initialized in the process (a test's) is used as it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..config import Config, DatasetConfig, resolve_paths, resolve_remote
from ..errors import UserError
from ..progress import Progress
from .store import IndexStore, chunk_key, file_version

TASK_CPUS = 1.0
LOCAL_CPUS = 2


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


def _compute(config: Config, ds: DatasetConfig, source: Any, display: str) -> Any:
    """A worker's part: the chunk contents of one file (a path, or a remote file); a user
    error (a file that cannot be read) comes back as its fields, raised by the driver."""
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
          progress: Progress, address: str | None = None) -> int:
    """Build the missing chunks of ``datasets`` on Ray; the number built."""
    _ray()
    todo = pending(config, datasets, store)
    if not todo:
        return 0
    with session(address) as ray:
        task = ray.remote(num_cpus=TASK_CPUS, max_retries=1)(_compute)
        config_ref = ray.put(config)
        refs = {task.remote(config_ref, ds, source, display): (ds, display, key, version)
                for ds, source, display, key, version in todo}
        with progress.stage("index on Ray", total=len(refs)) as stage:
            waiting = list(refs)
            while waiting:
                done, waiting = ray.wait(waiting, num_returns=1)
                ds, display, key, version = refs[done[0]]
                try:
                    result = ray.get(done[0])
                except ray.exceptions.RayError as exc:
                    raise UserError(f"the Ray task reading it failed: {type(exc).__name__}",
                                    path=display) from None
                if isinstance(result, dict):
                    raise UserError(result.pop("message"), **result)
                table, arrays, problems = result
                store.write(ds, display, key, version, table, arrays, problems)
                stage.advance(1)
    return len(todo)
