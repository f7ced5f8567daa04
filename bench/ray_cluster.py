"""A standing local Ray for bench/index_build.py, and the resident memory of its workers.

A real cluster is running before a job is submitted: :func:`standing` starts a local Ray head
(127.0.0.1, no dashboard) in a process of its own, yields its address for ``--ray-address``
and stops it afterwards, always. :class:`RayProcesses` samples, from the bench's process, the
resident memory of that Ray's worker processes (its descendants whose title starts with
``ray::``; Ray sets it to the task being run) while a job runs: each worker's peak (the
kernel's ``VmHWM``, so a peak between two samples is not missed) and the largest resident size
seen while a worker ran each task function; and the CPU time of all its processes.
:func:`machine_busy` is every process's, to tell how much of the machine the others took.
Linux only (``/proc``), no dependency.
"""

from __future__ import annotations

import json
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
    """The sizes (KiB) of a ``/proc/<pid>/status`` text: ``{"VmHWM": ..., "VmRSS": ...,
    "RssAnon": ..., "RssFile": ...}`` (resident: anonymous, i.e. heap, and mapped files)."""
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.startswith(("Vm", "Rss")) and value.strip().endswith("kB"):
            out[name] = int(value.split()[0])
    return out


def stat_parent(text: str) -> int:
    """The parent pid in a ``/proc/<pid>/stat`` text (the command may hold spaces and
    parentheses: the fields after the last ``)`` are ``state ppid ...``)."""
    return int(text[text.rindex(")") + 2:].split()[1])


def stat_cpu(text: str, ticks: int) -> float:
    """The CPU seconds (user + system) in a ``/proc/<pid>/stat`` text, ``ticks`` a second."""
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / ticks


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


def busy_seconds(text: str, ticks: int) -> float:
    """CPU seconds the machine was busy (all but idle and I/O wait) in a ``/proc/stat``
    text's first line, summed over its cores."""
    values = [int(v) for v in text.split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / ticks


def machine_busy() -> float:
    """:func:`busy_seconds` of this machine now (a difference of two is what counts)."""
    return busy_seconds((PROC / "stat").read_text(), os.sysconf("SC_CLK_TCK"))


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:                  # the process ended
        return None


def _stats() -> dict[int, str]:
    """Every process's ``/proc/<pid>/stat`` text."""
    out = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            text = _read(entry / "stat")
            if text:
                out[int(entry.name)] = text.decode("utf-8", "replace")
    return out


def _parents() -> dict[int, int]:
    return {pid: stat_parent(text) for pid, text in _stats().items()}


class RayProcesses:
    """Samples ``root`` and the processes under it every ``every`` seconds, in a thread,
    between :meth:`__enter__` and :meth:`__exit__`. Of the Ray workers among them: ``peak``,
    each one's ``VmHWM`` (KiB), and the tasks it was seen running; ``running``, per task
    function, the largest ``VmRSS`` (KiB) of a worker seen running it, and ``anon``, of its
    anonymous part (``RssAnon``: not the pages of mapped files); ``seen``, per task
    function, when (seconds since the epoch) a worker was first and last seen running it.
    Of all: ``cpu``, each one's CPU seconds at its last sample, and ``before``, at the
    first."""

    def __init__(self, root: int, every: float = 0.25) -> None:
        self.root, self.every = root, every
        self.peak: dict[int, int] = {}
        self.cpu: dict[int, float] = {}
        self.before: dict[int, float] | None = None
        self.tasks: dict[int, set[str]] = {}
        self.running: dict[str, int] = {}
        self.anon: dict[str, int] = {}
        self.seen: dict[str, list[float]] = {}     # task -> first and last time seen running
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RayProcesses:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)

    def sample(self) -> None:
        stats, now = _stats(), time.time()
        ticks = os.sysconf("SC_CLK_TCK")
        tree = descendants({p: stat_parent(t) for p, t in stats.items()}, self.root)
        for pid in tree | ({self.root} & stats.keys()):
            self.cpu[pid] = stat_cpu(stats[pid], ticks)
        if self.before is None:
            self.before = dict(self.cpu)
        for pid in tree:
            cmdline, status = _read(PROC / str(pid) / "cmdline"), _read(PROC / str(pid) / "status")
            name = task_name(cmdline or b"")
            if name is None or status is None:
                continue
            kib = status_kib(status.decode("ascii", "replace"))
            self.peak[pid] = max(self.peak.get(pid, 0), kib.get("VmHWM", 0))
            self.tasks.setdefault(pid, set()).add(name)
            self.running[name] = max(self.running.get(name, 0), kib.get("VmRSS", 0))
            self.anon[name] = max(self.anon.get(name, 0), kib.get("RssAnon", 0))
            self.seen.setdefault(name, [now, now])[1] = now

    def used(self) -> float:
        """CPU seconds used by the sampled processes between the first and last samples
        (a process's last quarter of a second before it ended is missed)."""
        before = self.before or {}
        return sum(cpu - before.get(pid, 0.0) for pid, cpu in self.cpu.items())

    def summary(self, task: str) -> dict[str, float]:
        """MiB: the largest peak of the workers that ran ``task``, and its largest resident
        size (and anonymous part) seen while running it; how many workers ran it, their CPU seconds, and when it
        was first and last seen running."""
        ran = [pid for pid, names in self.tasks.items() if task in names]
        return {"workers": len(ran), "workers_cpu": sum(self.cpu.get(p, 0.0) for p in ran),
                "seen": self.seen.get(task, []),
                "peak_mib": max((self.peak[p] for p in ran), default=0) / 1024,
                "running_mib": self.running.get(task, 0) / 1024,
                "anon_mib": self.anon.get(task, 0) / 1024}


TIMELINE = """\
import json, sys, ray
ray.init(address=sys.argv[1], log_to_driver=False)
print(json.dumps(ray.timeline()))
"""


def timeline(address: str, auth: dict[str, str]) -> list[dict]:
    """Ray's timeline (Chrome trace events) of every job the Ray at ``address`` ran. A worker
    reports its tasks' events every second or so: a job's last ones may be missing."""
    done = subprocess.run([sys.executable, "-c", TIMELINE, address], capture_output=True,
                          text=True, env=dict(os.environ, **auth), check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def task_spans(events: list[dict], task: str, start: float, end: float
               ) -> dict[str, list[tuple[float, float]]]:
    """Per worker: the (start, seconds) of each run of ``task`` (a function's name) that
    started between ``start`` and ``end`` (seconds since the epoch, a job's run: a Ray
    worker serves one job), in order, from a Ray timeline."""
    out: dict[str, list[tuple[float, float]]] = {}
    for e in events:
        if e.get("ph") == "X" and e.get("cat") == f"task::{task}" \
                and start <= e["ts"] / 1e6 <= end:
            out.setdefault(str(e["tid"]), []).append((e["ts"] / 1e6, e["dur"] / 1e6))
    return {worker: sorted(spans) for worker, spans in out.items()}


def warm_up(spans: dict[str, list[tuple[float, float]]]) -> dict[str, float]:
    """Of one job's spans (:func:`task_spans`): tasks, workers, the mean seconds of each
    worker's first task and the median of the others, and from the first task's start to
    the last one's end."""
    import statistics

    if not spans:
        return {"tasks": 0, "workers": 0}
    firsts = [s[0][1] for s in spans.values()]
    rest = [d for s in spans.values() for _, d in s[1:]]
    start = min(s[0][0] for s in spans.values())
    end = max(t + d for s in spans.values() for t, d in s)
    return {"tasks": sum(len(s) for s in spans.values()), "workers": len(spans),
            "first_task_s": statistics.mean(firsts),
            "other_tasks_s": statistics.median(rest) if rest else 0.0, "span_s": end - start}


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
