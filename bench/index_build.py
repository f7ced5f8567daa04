"""Index build and index search throughput, local engine and Ray engine, side by side in one run.

    python bench/index_build.py [--rows 1000000] [--shards 16] [--eval 1000] [--repeat 1]
                                [--ray-cpus 2] [--save [NAME]]

Writes ``--rows`` train rows (bench/data.py's GSM8K variants) as ``--shards`` JSONL files and
``--eval`` eval rows, starts a local Ray of ``--ray-cpus`` CPUs that stands for the whole run
(a cluster is running before a job is submitted: bench/ray_cluster.py; stopped at the end,
always), then, each run a fresh child process, alternating engines so all see the same load:

1. **Build**: ``eval-firewall index build`` into a fresh cache directory, ``--engine local``
   (one process: one core), ``--engine ray`` (a local Ray started by the command with
   ``--ray-cpus`` CPUs; its start-up and its own processes are in the wall time) and
   ``--engine ray --ray-address`` the standing Ray (its own processes, which run throughout,
   and its workers, started for each job, in the wall time), twice: a chunk holding postings
   only (rows, normalized texts and their hashes, lexical and containment postings), and
   postings plus the static model's vectors.
2. **Search**: the two scans ``audit`` runs over every train row, against the index with
   vectors: the containment scan of the eval rows' n-grams and the static vectors' exact
   retrieval (``search_above`` at the paraphrase search's floor and k), by the local engine
   (containment chunk by chunk, vectors in one search) and by Ray, started by the run or
   standing (one task per shard, top k merged; Ray's start-up or connection timed apart). The
   answers of all three are compared.

Rows/s per core is rows / wall seconds / cores given to the job. Also measured, from /proc:
each job's CPU seconds (the command's, and Ray's processes': its workers and its own), the
machine's busy cores meanwhile (what the other processes took), the peak resident memory of
the command's process and of the Ray workers that ran build or search tasks (one shard
each), and, from Ray's timeline, a worker's first task against its others (its warm-up).
Prints Markdown tables and the load average before and after, and a JSON line of every figure;
``--save`` writes the build table and every figure to bench/results/index_build.json (or
NAME.json), which ``python docs/generate.py`` renders in the docs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ray_cluster import (  # noqa: E402  (bench/, put on the path above)
    RayProcesses,
    machine_busy,
    standing,
    status_kib,
    token_env,
)

CONFIG = """\
datasets:
  - name: train
    role: train
    paths: ["data/train/shard-*.jsonl"]
    text: [question]
    label: answer
  - name: eval
    role: eval
    paths: ["data/eval/*.jsonl"]
    text: [question]
    label: answer
audits:
  overlap:
    semantic: {enabled: false}
    distribution: {enabled: false}
"""
# The same with the static vectors in the index (the paraphrase search's retrieval).
VECTORS = CONFIG.replace("semantic: {enabled: false}", "semantic: {retriever: static}")


def make_repo(directory: Path, rows: int, shards: int, evals: int = 1000) -> None:
    from data import generate

    generate(evals, rows, directory)
    single = directory / "data/train/train.jsonl"
    lines = single.read_text(encoding="utf-8").splitlines(keepends=True)
    single.unlink()
    size = (len(lines) + shards - 1) // shards
    for i in range(shards):
        (directory / f"data/train/shard-{i:02d}.jsonl").write_text(
            "".join(lines[i * size:(i + 1) * size]), encoding="utf-8")
    (directory / ".eval-firewall.yml").write_text(CONFIG)


def run(repo: Path, engine: str, cache: Path, ray_cpus: int, kind: str = "postings",
        src: Path | None = None, cluster: tuple[str, int, dict] | None = None) -> float:
    """One ``index build`` in a fresh child process; its wall seconds. With ``cluster`` (the
    standing Ray's address, its pid and its token's environment: :func:`ray_cluster.standing`),
    ``--engine ray --ray-address`` the standing Ray. Notes the child's CPU seconds, its peak
    resident memory, and that of the Ray workers under it (or under the standing Ray)."""
    (repo / ".eval-firewall.yml").write_text(VECTORS if kind == "vectors" else CONFIG)
    shutil.rmtree(cache, ignore_errors=True)
    env = dict(os.environ)
    if src is not None:                  # another version of the code (--before)
        env["PYTHONPATH"] = str(src)
    code = ("import sys, eval_firewall.index.ray_engine as r; r.LOCAL_CPUS = int(sys.argv[1]); "
            "from eval_firewall.cli import main; "
            "main(sys.argv[2:], prog_name='eval-firewall')")
    argv = [sys.executable, "-c", code, str(ray_cpus), "index", "build", "-q", "--engine",
            engine, "--cache-dir", str(cache)]
    if cluster is not None:
        argv += ["--ray-address", cluster[0]]
        env.update(cluster[2])
    key = f"{kind} {engine}" + (" standing" if cluster else "") + (" before" if src else "")
    with tempfile.TemporaryFile() as out:
        busy, start, epoch = machine_busy(), time.perf_counter(), time.time()
        child = subprocess.Popen(argv, cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT)
        with RayProcesses(cluster[1] if cluster else child.pid) as ray:
            _, status, usage = os.wait4(child.pid, 0)    # this child's usage and peak
        seconds = time.perf_counter() - start
        busy = machine_busy() - busy
        if os.waitstatus_to_exitcode(status) != 0:
            out.seek(0)
            sys.exit(f"{key}: {out.read().decode('utf-8', 'replace').strip()[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    CPU.setdefault(key, []).append(cpu)
    MEMORY.setdefault(key, []).append({
        "driver_mib": usage.ru_maxrss / 1024, **ray.summary("_compute"),
        # the job's CPU seconds, Ray's processes included (a Ray the command started:
        # sampled, its processes being the command's), and the whole machine's busy cores
        "job_cpu": cpu if engine == "local" else ray.used() + (cpu if cluster else 0.0),
        "machine_cores": busy / seconds, "epoch": [epoch, epoch + seconds]})
    return seconds


def add_timeline(cluster: tuple[str, int, dict], keys: list[str], task: str,
                 runs: dict[str, list[dict]]) -> None:
    """Adds to each run of ``keys`` (on the standing Ray) what Ray's timeline says of its
    tasks (their number, each worker's first task against the others: the worker's warm-up),
    and, from the samples, the seconds before a worker was first seen running one and after
    one was last seen."""
    from ray_cluster import task_spans, timeline, warm_up

    time.sleep(3)                  # the workers' last reports reach Ray's timeline
    events = timeline(cluster[0], cluster[2])
    for key in keys:
        for r in runs[key]:
            start, end = r["epoch"]
            r["timeline"] = warm_up(task_spans(events, task, start, end))
            if r["seen"]:
                r["timeline"]["to_first_task_s"] = r["seen"][0] - start
                r["timeline"]["after_last_task_s"] = end - r["seen"][1]


# The local engine; Ray started by the command; Ray standing before the command (its address).
ENGINES = ("local", "ray", "ray standing")


def engines(version: str) -> tuple[str, ...]:
    """The engines a code version is built with: the code of ``--before`` not on the standing
    Ray, whose workers import this worktree's code (they are the head's children)."""
    return ENGINES[:2] if version else ENGINES
# CPU seconds of each run's command process (the local engine's threads included; Ray's
# worker processes are not counted: they are not waited for by it).
CPU: dict[str, list[float]] = {}
# Peak resident memory (MiB) of each run's command process (with a Ray it started: the
# largest of it and the children it waited for) and of the Ray workers that ran build tasks.
MEMORY: dict[str, list[dict]] = {}


def ray_startup(ray_cpus: int) -> float:
    """Seconds to start and stop a local Ray (in the Ray row's wall time, shown apart)."""
    code = ("import ray; ray.init(num_cpus=%d, include_dashboard=False, log_to_driver=False, "
            "_node_ip_address='127.0.0.1'); ray.shutdown()" % ray_cpus)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def search_child(engine: str, cache: Path, repo: Path, ray_cpus: int) -> None:
    """One engine's search of the index in ``cache`` (the child process of :func:`search`):
    prints its timings and a digest of its answers as JSON."""
    import hashlib

    import numpy as np

    import eval_firewall.index.ray_engine as ray_engine
    from eval_firewall.audits import RULES
    from eval_firewall.cache import Cache
    from eval_firewall.config import load_config
    from eval_firewall.embeddings import Models
    from eval_firewall.index import IndexStore, load_train
    from eval_firewall.index.corpus import train_corpus
    from eval_firewall.index.train import IndexedTrainSide
    from eval_firewall.overlap.finders import containment_settings
    from eval_firewall.search.paraphrase import RETRIEVE, STATIC_FLOOR
    from eval_firewall.search.shards import open_executor
    from eval_firewall.text.normalize import normalize_many

    ray_engine.LOCAL_CPUS = ray_cpus
    config = load_config(repo / ".eval-firewall.yml", rules=RULES)
    cfg = config.audits.overlap
    with open(repo / "data/eval/eval.jsonl", encoding="utf-8") as fh:
        evals = [json.loads(line)["question"] for line in fh]
    norm = normalize_many(evals)
    retriever = Models(cfg.semantic.model, config_path=config.source).retriever()
    queries = retriever.encode(evals)
    store = IndexStore(Cache(cache))
    datasets = [load_train(config, ds, store) for ds in config.datasets if ds.role == "train"]
    for ds in datasets:                          # digests checked before the clock starts
        for c in ds.rows.chunks:
            c.array("containment.tokens"), c.array("containment.starts")
    t0 = time.perf_counter()
    with open_executor(engine) as runner:
        started = time.perf_counter() - t0
        corpus = train_corpus(datasets, runner=runner)
        side = IndexedTrainSide(corpus.norm, corpus.texts, None, corpus.chunks,  # type: ignore
                                corpus.rows.offsets(), runner)
        t1 = time.perf_counter()
        found = side.contained(norm, containment_settings(cfg), range(len(norm)))
        t2 = time.perf_counter()
        index = corpus.search_index(retriever)
        t3 = time.perf_counter()
        ids, scores = index.search_above(queries, STATIC_FLOOR, cfg.semantic.candidates * RETRIEVE)
        t4 = time.perf_counter()
    total = time.perf_counter() - t0
    digest = hashlib.sha256(repr(sorted((i, c.train, c.start, c.end, round(c.coverage, 6))
                                        for i, c in found.items())).encode()
                            + np.ascontiguousarray(ids).tobytes()
                            + np.ascontiguousarray(scores).tobytes()).hexdigest()[:16]
    print(json.dumps({"engine": engine, "startup": started, "containment": t2 - t1,
                      "vectors": t4 - t2, "vectors_prepare": t3 - t2, "total": total,
                      "rows": len(corpus), "evals": len(evals), "contained": len(found),
                      "hits": int((ids >= 0).sum()), "digest": digest}))


def search(repo: Path, cache: Path, engine: str, ray_cpus: int,
           cluster: tuple[str, int, dict] | None = None) -> dict:
    """One engine's search in a fresh child process (:func:`search_child`); with ``cluster``,
    Ray's at the standing Ray (``RAY_ADDRESS``). Adds the peak resident memory (MiB) of the
    child and of the Ray workers that ran search tasks."""
    env = dict(os.environ, **({"RAY_ADDRESS": cluster[0], **cluster[2]} if cluster else {}))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        epoch = time.time()
        child = subprocess.Popen([sys.executable, __file__, "--search-child", engine, str(cache),
                                  str(repo), str(ray_cpus)], env=env, stdout=out, stderr=err)
        with RayProcesses(cluster[1] if cluster else child.pid) as workers:
            _, status, usage = os.wait4(child.pid, 0)
        out.seek(0), err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"search {engine}: {err.read().decode('utf-8', 'replace').strip()[-2000:]}")
        found = json.loads(out.read().decode().strip().splitlines()[-1])
    return {**found, "driver_mib": usage.ru_maxrss / 1024, **workers.summary("_on_worker"),
            "epoch": [epoch, time.time()]}


def measure(args: argparse.Namespace, kinds: tuple[str, ...], versions: list[str]) -> dict:
    """Every build and search of the run, alternating engines (and code versions); the
    standing Ray is started before the first and stopped after the last."""
    auth = token_env()
    with tempfile.TemporaryDirectory() as tmp, standing(args.ray_cpus, auth) as (address, pid):
        cluster = (address, pid, auth)
        repo = Path(tmp) / "repo"
        repo.mkdir()
        # In a child: a child's peak resident size (ru_maxrss) starts from its parent's
        # size when it was spawned, so this process must stay small.
        subprocess.run([sys.executable, __file__, "--make-repo", str(repo), str(args.rows),
                        str(args.shards), str(args.eval)], check=True)
        load = [os.getloadavg()[0]]
        times: dict[str, list[float]] = {f"{k} {e}{v}": [] for k in kinds
                                         for v in versions for e in engines(v)}
        for _ in range(args.repeat):
            for kind in kinds:
                for version in versions:       # the other code first, this code's index last
                    for engine in engines(version):
                        times[f"{kind} {engine}{version}"].append(run(
                            repo, engine.split()[0], Path(tmp) / f"cache-{kind}-{engine}",
                            args.ray_cpus, kind, args.before if version else None,
                            cluster if engine == "ray standing" else None))
        add_timeline(cluster, [k for k in MEMORY if "standing" in k], "_compute", MEMORY)
        startup = min(ray_startup(args.ray_cpus) for _ in range(args.repeat))
        load.append(os.getloadavg()[0])
        searched: dict[str, list[dict]] = {engine: [] for engine in ENGINES}
        if not args.no_search:
            for _ in range(args.repeat):
                for engine in ENGINES:
                    searched[engine].append(search(
                        repo, Path(tmp) / "cache-vectors-local", engine.split()[0],
                        args.ray_cpus, cluster if engine == "ray standing" else None))
            load.append(os.getloadavg()[0])
            add_timeline(cluster, ["ray standing"], "_on_worker", searched)
        sizes = {}
        for kind in kinds:
            chunks = Path(tmp) / f"cache-{kind}-local/index/chunks"
            sizes[kind] = sum(f.stat().st_size for f in chunks.rglob("*") if f.is_file())
    bench_mib = status_kib(Path("/proc/self/status").read_text())["VmHWM"] / 1024
    return {"command": "python bench/index_build.py " + " ".join(sys.argv[1:]),
            "bench_mib": bench_mib,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "rows": args.rows, "shards": args.shards, "ray_cpus": args.ray_cpus,
            "times": times, "ray_startup": startup,
            "cpu": CPU, "memory": MEMORY, "bytes": sizes, "search": searched, "load": load}


LABELS = {"local": "local", "ray": "ray (a local Ray started by the command)",
          "ray standing": "ray, standing cluster (started before, `--ray-address`)"}


def print_builds(args: argparse.Namespace, kinds: tuple[str, ...], versions: list[str],
                 found: dict) -> dict[str, float]:
    """The build table; rows/s per core of each engine."""
    times, startup = found["times"], found["ray_startup"]
    cores = {"local": 1, "ray": args.ray_cpus, "ray standing": args.ray_cpus}
    print(f"index build, {args.rows:,} train rows in {args.shards} JSONL shards; load average "
          + ", ".join(f"{x:.2f}" for x in found["load"])
          + f" (before, after the builds, after the searches; {os.cpu_count()} cores)\n")
    print("| Chunk holds | Engine | Cores | Wall (s), best of runs | Rows/s | Rows/s per core "
          "| Ray per core / local |")
    print("|---|---|---|---|---|---|---|")
    result: dict[str, float] = {}
    for kind in kinds:
        for version in versions:
            for engine in engines(version):
                key = f"{kind} {engine}{version}"
                rate = args.rows / min(times[key])
                result[key] = rate / cores[engine]
                ratio = (f"{result[key] / result[f'{kind} local{version}']:.2f}"
                         if engine != "local" else "")
                label = LABELS[engine] + (f" (code in {args.before})" if version else "")
                print(f"| {kind} | {label} | {cores[engine]} | {min(times[key]):.1f} | "
                      f"{rate:,.0f} | {rate / cores[engine]:,.0f} | {ratio} |")
                if key == f"{kind} ray":
                    result[f"{kind} ray steady"] = _less_startup(args, kind, times, startup,
                                                                 result[f"{kind} local"])
    for kind in kinds:
        cpu, size = min(found["cpu"][f"{kind} local"]), found["bytes"][kind]
        print(f"\n{kind}: the local engine's process used {cpu:.1f} CPU-seconds in "
              f"{min(times[f'{kind} local']):.1f} s of wall time ({args.rows / cpu:,.0f} rows per "
              f"CPU-second); index on disk {size / 2**20:,.1f} MiB ({size / args.rows:,.0f} "
              "bytes/row)")
    print("\nCPU time of the fastest builds (the machine's other processes by /proc/stat):\n")
    for kind in kinds:
        for engine in ENGINES:
            _print_cpu(args, kind, engine, found)
    return result


def _print_cpu(args: argparse.Namespace, kind: str, engine: str, found: dict) -> None:
    """Where the CPU went in an engine's fastest build: its job's CPU seconds (the command,
    and Ray's workers and own processes), the cores it got, and what the machine's other
    processes took meanwhile."""
    times = found["times"][f"{kind} {engine}"]
    best = times.index(min(times))
    m = found["memory"][f"{kind} {engine}"][best]
    wall, job = times[best], m["job_cpu"]
    workers = (f"; its {m['workers']} workers that ran build tasks {m['workers_cpu']:.1f}"
               if engine != "local" else "")
    print(f"- {kind}, {LABELS[engine]}: {wall:.1f} s; the job used {job:.1f} CPU-seconds "
          f"({args.rows / max(job, 1e-9):,.0f} rows per CPU-second{workers}); it got "
          f"{job / wall:.2f} cores, while the machine's other processes took "
          f"{max(m['machine_cores'] - job / wall, 0):.2f} of its {os.cpu_count()}")
    if "timeline" in m and m["timeline"]["workers"]:
        t = m["timeline"]
        print(f"  Ray's timeline: {t['tasks']} tasks on {t['workers']} workers; a worker's "
              f"first task {t['first_task_s']:.2f} s, its others {t['other_tasks_s']:.2f} s "
              f"(median); a task was first seen running {t['to_first_task_s']:.1f} s after "
              f"the command started, last seen {t['after_last_task_s']:.1f} s before it exited")


def _less_startup(args: argparse.Namespace, kind: str, times: dict, startup: float,
                  local: float) -> float:
    """Prints the row of Ray started by the command, less its start-up; its rows/s per core."""
    wall = min(times[f"{kind} ray"]) - startup
    steady = args.rows / max(wall, 1e-9) / args.ray_cpus
    print(f"| {kind} | ray, less its start-up ({startup:.1f} s, an empty job) | "
          f"{args.ray_cpus} | {wall:.1f} | {steady * args.ray_cpus:,.0f} | {steady:,.0f} | "
          f"{steady / local:.2f} |")
    return steady


def shard_rows(rows: int, shards: int) -> int:
    """Rows per shard as :func:`make_repo` splits them (the last shard may hold fewer)."""
    return (rows + shards - 1) // shards


def memory_rows(found: dict, kinds: tuple[str, ...]) -> list[tuple[str, str, dict]]:
    """(task, engine, the largest of each figure over the runs) of every build and search:
    the command's peak (``driver_mib``), the workers' (``peak_mib``, ``running_mib``)."""
    out = []
    for kind in kinds:
        for engine in ENGINES:
            runs = found["memory"][f"{kind} {engine}"]
            out.append((f"build ({kind})", engine, _largest(runs)))
    for engine, runs in found["search"].items():
        if runs:
            out.append(("search (both scans)", engine, _largest(runs)))
    return out


def _largest(runs: list[dict]) -> dict:
    names = ("driver_mib", "peak_mib", "running_mib", "anon_mib", "workers")
    return {name: max(r.get(name, 0) for r in runs) for name in names}


def print_memory(args: argparse.Namespace, kinds: tuple[str, ...], found: dict) -> None:
    """The memory table: peak resident memory of the command and of the Ray workers."""
    print(f"\npeak resident memory (MiB), {shard_rows(args.rows, args.shards):,} rows per shard "
          f"(one task each), largest over {args.repeat} run(s); the bench's own process, "
          f"from which every command starts, peaked at {found['bench_mib']:,.0f}:\n")
    print("| Task | Engine | Command's process (driver) | Ray worker, peak (VmHWM) "
          "| Ray worker, largest seen while running the task | of which anonymous "
          "| Workers |")
    print("|---|---|---|---|---|---|---|")
    for task, engine, m in memory_rows(found, kinds):
        workers = (f"{m['peak_mib']:,.0f} | {m['running_mib']:,.0f} | {m['anon_mib']:,.0f} | "
                   f"{m['workers']}" if engine != "local" else "— | — | — | —")
        print(f"| {task} | {LABELS[engine]} | {m['driver_mib']:,.0f} | {workers} |")


def print_search(args: argparse.Namespace, searched: dict[str, list[dict]]) -> None:
    """The search table: each engine's best run."""
    cores = {"local": 1, "ray": args.ray_cpus, "ray standing": args.ray_cpus}
    best = {e: min(searched[e], key=lambda r: r["total"]) for e in searched}
    rows, evals = best["local"]["rows"], best["local"]["evals"]
    print(f"\nindex search, {evals:,} eval rows x {rows:,} train rows (the index with vectors), "
          f"best of {args.repeat}:\n")
    print("| Engine | Cores | Start-up (s) | Containment scan (s) | Vector retrieval (s) "
          "| Train rows/s, both scans | Per core | Answers |")
    print("|---|---|---|---|---|---|---|---|")
    for engine in ENGINES:
        r = best[engine]
        scan = r["containment"] + r["vectors"]
        same = "same" if r["digest"] == best["local"]["digest"] else "DIFFER"
        print(f"| {LABELS[engine]} | {cores[engine]} | {r['startup']:.1f} | "
              f"{r['containment']:.1f} | {r['vectors']:.1f} | {rows / scan:,.0f} | "
              f"{rows / scan / cores[engine]:,.0f} | "
              f"{same} ({r['contained']} contained, {r['hits']:,} vector hits) |")


HOLDS = {"vectors": "postings + static vectors"}
COLUMNS = ["Chunk holds", "Engine", "Cores", "Wall (s)", "Rows/s per core",
           "Ray per core / local", "Job's CPU (s)", "Rows per CPU-second", "Cores it got",
           "Other processes' cores"]


def result_rows(found: dict) -> list[dict[str, str]]:
    """The build table of bench/results/index_build.json, from the run's figures: each
    engine's fastest build, its job's CPU and the cores it and the other processes got."""
    rows, cpus = found["rows"], found.get("ray_cpus", 2)     # not recorded: the default
    out = []
    for kind in found["bytes"]:
        local = rows / min(found["times"][f"{kind} local"])
        for engine in ENGINES:
            times = found["times"][f"{kind} {engine}"]
            m = found["memory"][f"{kind} {engine}"][times.index(min(times))]
            cores = 1 if engine == "local" else cpus
            rate = rows / min(times) / cores
            out.append({"Chunk holds": HOLDS.get(kind, kind), "Engine": LABELS[engine],
                        "Cores": str(cores),
                        "Wall (s)": f"{min(times):.1f}", "Rows/s per core": f"{rate:,.0f}",
                        "Ray per core / local": "" if engine == "local" else f"{rate / local:.2f}",
                        "Job's CPU (s)": f"{m['job_cpu']:.1f}",
                        "Rows per CPU-second": f"{rows / m['job_cpu']:,.0f}",
                        "Cores it got": f"{m['job_cpu'] / min(times):.2f}",
                        "Other processes' cores":
                            f"{max(m['machine_cores'] - m['job_cpu'] / min(times), 0):.2f}"})
    return out


def save(found: dict, name: str = "index_build") -> None:
    """bench/results/NAME.json: the build table and every figure of the run."""
    import results

    load = (" before, ".join(f"{x:.2f}" for x in found["load"][:2]) + " after the builds"
            + "".join(f", {x:.2f} after the searches" for x in found["load"][2:]) + " (1 min)")
    notes = (f"{found['rows']:,} train rows in {found['shards']} JSONL shards, "
             f"{found['rows'] // found['shards']:,} rows each. Cores: given to the "
             "job; the cores it got are its CPU seconds (the command's, and Ray's processes') "
             "over its wall time; the other processes' are the machine's busy cores (/proc/stat) "
             "less the job's. The figures key holds every measurement of the run (searches, "
             "memory, Ray's timeline).")
    results.write(name, COLUMNS, result_rows(found), load=load, notes=notes,
                  command=found["command"], figures=found)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--eval", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--ray-cpus", type=int, default=2)
    parser.add_argument("--before", type=Path, metavar="SRC",
                        help="also build with the code in SRC (e.g. an older commit's src/, "
                             "from git archive), alternating with this one")
    parser.add_argument("--kinds", default="postings,vectors",
                        help="what the chunks hold: postings and/or vectors (default both)")
    parser.add_argument("--no-search", action="store_true", help="builds only")
    parser.add_argument("--search-child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--make-repo", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--save", nargs="?", const="index_build", metavar="NAME",
                        help="write bench/results/NAME.json (default index_build: the docs' "
                             "table)")
    parser.add_argument("--save-from", type=Path, metavar="OUTPUT",
                        help="write it from the JSON line a run printed (in OUTPUT) and exit")
    args = parser.parse_args()
    if args.save_from:
        lines = args.save_from.read_text(encoding="utf-8").splitlines()
        save(json.loads([line for line in lines if line.startswith("{")][-1]),
             args.save or "index_build")
        return
    if args.make_repo:
        repo, rows, shards, evals = args.make_repo
        make_repo(Path(repo), int(rows), int(shards), int(evals))
        return
    if args.search_child:
        engine, cache, repo, cpus = args.search_child
        search_child(engine, Path(cache), Path(repo), int(cpus))
        return
    kinds = tuple(args.kinds.split(","))
    if "vectors" not in kinds and not args.no_search:
        sys.exit("the search runs on the index with vectors: --kinds postings needs --no-search")
    versions = [" before", ""] if args.before else [""]
    found = measure(args, kinds, versions)
    found["per_core"] = print_builds(args, kinds, versions, found)
    if not args.no_search:
        print_search(args, found["search"])
    print_memory(args, kinds, found)
    print(json.dumps(found))
    if args.save:
        save(found, args.save)


if __name__ == "__main__":
    main()
