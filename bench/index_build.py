"""Index build throughput, local engine and Ray engine, side by side in one run.

    python bench/index_build.py [--rows 200000] [--shards 8] [--repeat 1] [--ray-cpus 2]

Writes ``--rows`` train rows (bench/data.py's GSM8K variants) as ``--shards`` JSONL files,
then times ``eval-firewall index build`` into a fresh cache directory, each run a fresh child
process, alternating engines so both see the same load: ``--engine local`` (one process: one
core) and ``--engine ray`` (a local Ray started by the command with ``--ray-cpus`` CPUs; its
start-up and its own processes are in the wall time). Rows/s per core is rows / wall seconds /
cores given to the job. What a chunk holds here: rows, normalized texts and their hashes, the
lexical and containment postings (the paraphrase search's static vectors are off: they are
encoded by the driver in both engines). Prints a Markdown table and the load average before and
after.
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


def make_repo(directory: Path, rows: int, shards: int) -> None:
    from data import generate

    generate(1000, rows, directory)
    single = directory / "data/train/train.jsonl"
    lines = single.read_text(encoding="utf-8").splitlines(keepends=True)
    single.unlink()
    size = (len(lines) + shards - 1) // shards
    for i in range(shards):
        (directory / f"data/train/shard-{i:02d}.jsonl").write_text(
            "".join(lines[i * size:(i + 1) * size]), encoding="utf-8")
    (directory / ".eval-firewall.yml").write_text(CONFIG)


def run(repo: Path, engine: str, cache: Path, ray_cpus: int) -> float:
    shutil.rmtree(cache, ignore_errors=True)
    env = dict(os.environ)
    code = ("import sys, eval_firewall.index.ray_engine as r; r.LOCAL_CPUS = int(sys.argv[1]); "
            "from eval_firewall.cli import main; "
            "main(sys.argv[2:], prog_name='eval-firewall')")
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, str(ray_cpus), "index", "build", "-q",
                           "--engine", engine, "--cache-dir", str(cache)],
                          cwd=repo, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[engine].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    if done.returncode != 0:
        sys.exit(f"{engine}: {done.stderr.strip() or done.stdout.strip()}")
    return seconds


# CPU seconds of each run's command process (the local engine's threads included; Ray's
# worker processes are not its children, so not counted there).
CPU: dict[str, list[float]] = {"local": [], "ray": []}


def ray_startup(ray_cpus: int) -> float:
    """Seconds to start and stop a local Ray (in the Ray row's wall time, shown apart)."""
    code = ("import ray; ray.init(num_cpus=%d, include_dashboard=False, log_to_driver=False, "
            "_node_ip_address='127.0.0.1'); ray.shutdown()" % ray_cpus)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--ray-cpus", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        make_repo(repo, args.rows, args.shards)
        load_before = os.getloadavg()
        times: dict[str, list[float]] = {"local": [], "ray": []}
        for _ in range(args.repeat):
            for engine in ("local", "ray"):
                times[engine].append(run(repo, engine, Path(tmp) / f"cache-{engine}",
                                         args.ray_cpus))
        startup = min(ray_startup(args.ray_cpus) for _ in range(args.repeat))
        load_after = os.getloadavg()
        chunks = Path(tmp) / "cache-local/index/chunks"
        size = sum(f.stat().st_size for f in chunks.rglob("*") if f.is_file())
    cores = {"local": 1, "ray": args.ray_cpus}
    print(f"index build, {args.rows:,} train rows in {args.shards} JSONL shards; "
          f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} cores)\n")
    print("| Engine | Cores | Wall (s), best of runs | Rows/s | Rows/s per core |")
    print("|---|---|---|---|---|")
    local_cpu = min(CPU["local"])
    result = {}
    for engine in ("local", "ray"):
        best = min(times[engine])
        rate = args.rows / best
        result[engine] = rate / cores[engine]
        print(f"| {engine} | {cores[engine]} | {best:.1f} | {rate:,.0f} | "
              f"{rate / cores[engine]:,.0f} |")
    steady = args.rows / max(min(times["ray"]) - startup, 1e-9) / cores["ray"]
    print(f"| ray, without its start-up ({startup:.1f} s, an empty job) | {cores['ray']} | "
          f"{min(times['ray']) - startup:.1f} | {steady * cores['ray']:,.0f} | {steady:,.0f} |")
    print(f"\nThe local engine's process used {local_cpu:.1f} CPU-seconds in "
          f"{min(times['local']):.1f} s of wall time ({args.rows / local_cpu:,.0f} rows per "
          "CPU-second).")
    print(f"Ray per core / local per core: {result['ray'] / result['local']:.2f} "
          f"({steady / result['local']:.2f} without Ray's start-up); "
          f"index on disk: {size / 2**20:,.1f} MiB ({size / args.rows:,.0f} bytes/row)")
    print(json.dumps({"rows": args.rows, "times": times, "per_core": result,
                      "ray_startup": startup, "cpu": CPU,
                      "bytes_per_row": size / args.rows,
                      "load": [load_before[0], load_after[0]]}))


if __name__ == "__main__":
    main()
