"""Time and peak memory of reading one dataset (`load_dataset` with the row cache), side by side.

    python bench/read_train.py [--repo bench/out/10000x1000000] [--dataset train]
                               [--before SRC] [--repeat 1]

Each measurement is a fresh child process (its peak RSS is its own ``ru_maxrss``): "cold" reads
with an empty row cache (parse, normalize, write the cache), "cached" reads again from that
cache. With ``--before``, a second source tree (e.g. ``git archive <commit> src | tar -x -C
/tmp/before``) is measured in the same run, interleaved with this one, so both see the same
load. Prints a Markdown table and the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = """
import gc, json, resource, sys, time
from pathlib import Path
from eval_firewall.cache import Cache
from eval_firewall.config import load_config
from eval_firewall.datasets import load_dataset
repo, name, cache_dir, home = sys.argv[1:5]
config = load_config(Path(repo) / ".eval-firewall.yml")
ds = next(d for d in config.datasets if d.name == name)
cache = Cache(Path(cache_dir), home=Path(home))
start = time.perf_counter()
loaded = load_dataset(config, ds, cache=cache)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rows": len(loaded.rows), "problems": len(loaded.problems),
                  "hits": cache.hits,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(src: Path, repo: Path, dataset: str, cache_dir: Path, home: Path) -> dict:
    """One read in a fresh child process running the code under ``src``."""
    env = dict(os.environ, PYTHONPATH=str(src))
    done = subprocess.run([sys.executable, "-c", CHILD, str(repo), dataset, str(cache_dir),
                           str(home)], env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"the child failed:\n{done.stderr}")
    result: dict = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=HERE / "out/10000x1000000")
    parser.add_argument("--dataset", default="train")
    parser.add_argument("--before", type=Path, help="a source tree to compare against")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    variants = [("after", HERE.parent / "src")]
    if args.before:
        variants.insert(0, ("before", args.before.resolve()))
    print(f"load average before: {os.getloadavg()}")
    results: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.repeat):
        for label, src in variants:
            with tempfile.TemporaryDirectory() as tmp:
                cache_dir, home = Path(tmp) / "cache", Path(tmp) / "home"
                home.mkdir()
                for phase in ("cold", "cached"):
                    r = measure(src, args.repo.resolve(), args.dataset, cache_dir, home)
                    results.setdefault((label, phase), []).append(r)
                    print(f"  {label} {phase}: {r['seconds']:.2f}s, {r['rows']:,} rows, "
                          f"peak {r['peak_mib']:.0f} MiB, load {os.getloadavg()[0]:.2f}",
                          file=sys.stderr)
    print(f"load average after: {os.getloadavg()}")
    print("\n| Code | Read | Seconds (median) | Peak RSS MiB | Rows |\n|---|---|---|---|---|")
    for (label, phase), runs in results.items():
        seconds = sorted(r["seconds"] for r in runs)[len(runs) // 2]
        peak = max(r["peak_mib"] for r in runs)
        print(f"| {label} | {phase} | {seconds:.2f} | {peak:.0f} | {runs[0]['rows']:,} |")


if __name__ == "__main__":
    main()
