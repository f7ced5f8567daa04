"""A standing local Ray for bench/index_build.py, and the resident memory of its workers.

A real cluster is running before a job is submitted: :func:`standing` starts a local Ray head
(127.0.0.1, no dashboard) in a process of its own, yields its address for ``--ray-address``
and stops it afterwards, always. :class:`WorkerMemory` samples, from the bench's process, the
resident memory of that Ray's worker processes (its descendants whose title starts with
``ray::``; Ray sets it to the task being run) while a job runs: each worker's peak (the
kernel's ``VmHWM``, so a peak between two samples is not missed) and the largest resident size
seen while a worker ran each task function. Linux only (``/proc``), no dependency.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROC = Path("/proc")

# The head: a driver that starts a local Ray, prints its address and holds it until its
# standard input closes.
HOLDER = """\
import sys, ray
ray.init(num_cpus=int(sys.argv[1]), include_dashboard=False, log_to_driver=False,
         _node_ip_address="127.0.0.1")
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()
ray.shutdown()
"""


def status_kib(text: str) -> dict[str, int]:
    """The sizes (KiB) of a ``/proc/<pid>/status`` text: ``{"VmHWM": ..., "VmRSS": ...}``."""
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.startswith("Vm") and value.strip().endswith("kB"):
            out[name] = int(value.split()[0])
    return out


def stat_parent(text: str) -> int:
    """The parent pid in a ``/proc/<pid>/stat`` text (the command may hold spaces and
    parentheses: the fields after the last ``)`` are ``state ppid ...``)."""
    return int(text[text.rindex(")") + 2:].split()[1])


def descendants(parents: dict[int, int], root: int) -> set[int]:
    """The pids under ``root`` in a pid -> parent map (``root`` itself not included)."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    out: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def task_name(cmdline: bytes) -> str | None:
    """The task a Ray worker runs from its ``/proc/<pid>/cmdline`` (``ray::_compute`` ->
    ``_compute``, ``ray::IDLE`` -> ``IDLE``); None for any other process."""
    title = cmdline.split(b"\0")[0].decode("utf-8", "replace").strip()
    if not title.startswith("ray::"):
        return None
    return title[len("ray::"):].split()[0] if title[len("ray::"):].strip() else "IDLE"


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:                  # the process ended
        return None


def _parents() -> dict[int, int]:
    out = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            text = _read(entry / "stat")
            if text:
                out[int(entry.name)] = stat_parent(text.decode("utf-8", "replace"))
    return out


class WorkerMemory:
    """Samples the Ray workers under ``root`` every ``every`` seconds, in a thread, between
    :meth:`__enter__` and :meth:`__exit__`. ``peak``: each worker's ``VmHWM`` (KiB) and the
    tasks it was seen running; ``running``: per task function, the largest ``VmRSS`` (KiB) of
    a worker seen running it."""

    def __init__(self, root: int, every: float = 0.1) -> None:
        self.root, self.every = root, every
        self.peak: dict[int, int] = {}
        self.tasks: dict[int, set[str]] = {}
        self.running: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)

    def sample(self) -> None:
        for pid in descendants(_parents(), self.root):
            cmdline, status = _read(PROC / str(pid) / "cmdline"), _read(PROC / str(pid) / "status")
            name = task_name(cmdline or b"")
            if name is None or status is None:
                continue
            kib = status_kib(status.decode("ascii", "replace"))
            self.peak[pid] = max(self.peak.get(pid, 0), kib.get("VmHWM", 0))
            self.tasks.setdefault(pid, set()).add(name)
            self.running[name] = max(self.running.get(name, 0), kib.get("VmRSS", 0))

    def summary(self, task: str) -> dict[str, float]:
        """MiB: the largest peak of the workers that ran ``task``, and its largest resident
        size seen while running it; how many workers ran it."""
        ran = [pid for pid, names in self.tasks.items() if task in names]
        return {"workers": len(ran),
                "peak_mib": max((self.peak[p] for p in ran), default=0) / 1024,
                "running_mib": self.running.get(task, 0) / 1024}


def token_env() -> dict[str, str]:
    """Ray's token authentication with a fresh token of the bench's own, in the environment
    (Ray's ``RAY_AUTH_MODE``, ``RAY_AUTH_TOKEN``): no token file is read or written."""
    import secrets

    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


@contextmanager
def standing(cpus: int, auth: dict[str, str]) -> Iterator[tuple[str, int]]:
    """A local Ray head of ``cpus`` CPUs on 127.0.0.1, running in a process of its own (a
    session of its own too, so that stopping it stops Ray's processes and nothing else):
    yields (its address, that process's pid). Stopped on the way out, even on error.
    ``auth``: the environment of Ray's token authentication (:func:`token_env`), which the
    jobs' drivers need too."""
    env = dict(os.environ, **auth)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(cpus)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        address = (holder.stdout.readline() if holder.stdout else "").strip()
        if not address:
            raise RuntimeError(f"the standing Ray did not start (exit {holder.wait()})")
        yield "127.0.0.1:" + address.rpartition(":")[2], holder.pid
    finally:
        _stop(holder)


def _stop(holder: subprocess.Popen) -> None:
    """Close the holder's input (it shuts Ray down); after 60 s, kill its session."""
    try:
        if holder.stdin:
            holder.stdin.close()
        holder.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    time.sleep(0.5)        # Ray's processes of that session end after their driver
