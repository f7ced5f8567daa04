"""Benchmark of a first run: what a new user or a new repository pays; prints Markdown.

    python bench/first_run.py [--out bench/out/first-run]

Runs the real CLI in a subprocess, each case with an empty audit cache (``--cache-dir``):
- the bundled example (examples/gsm8k) with the per-user home empty (the static model is
  distilled: a new user's first audit), then again with that home warm (a new repository of a
  user who has run eval-firewall before, or the action's image with its prebuilt model);
- a 2-row audit (one train row, one eval row, every audit at its default) with an empty home:
  it must distil nothing;
- ``eval-firewall --help`` (the median of 5 runs).
Runs on whatever the machine is doing at the time: read the load average printed with it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results  # noqa: E402

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "examples" / "gsm8k"
PYTHON = sys.executable
CLI = str(Path(PYTHON).with_name("eval-firewall"))
STAGE = re.compile(r"^eval-firewall: (?P<name>.+?)(?: \([\d,]+ rows\))? in "
                   r"(?P<seconds>[\d.]+)s")
TARGETS = {"cold-empty": "≤ 60 s", "cold-warm": "≤ 30 s", "two-rows": "≤ 10 s",
           "help": "≤ 0.5 s"}
TINY_CONFIG = """\
datasets:
  - {name: train, role: train, paths: [train.jsonl], text: question}
  - {name: eval, role: eval, paths: [eval.jsonl], text: question}
"""


def run(argv: list[str], cwd: Path, home: Path, log: Path) -> dict:
    """Wall and CPU seconds, peak RSS and stage timings of one run, with ``home`` as the
    per-user home and no prebuilt models."""
    env = {**os.environ, "EVAL_FIREWALL_HOME": str(home)}
    env.pop("EVAL_FIREWALL_MODELS", None)
    started = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    stages: dict[str, float] = {}
    for line in log.read_text().splitlines():
        if m := STAGE.match(line.strip()):
            stages[m["name"]] = stages.get(m["name"], 0.0) + float(m["seconds"])
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {code}; see {log}")
    return {"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime,
            "rss_gib": usage.ru_maxrss / 2**20, "stages": stages,
            "distilled": (home / "static").is_dir() and any((home / "static").iterdir())}


def audit(cwd: Path, home: Path, out: Path, name: str) -> dict:
    cache = out / f"{name}-cache"
    shutil.rmtree(cache, ignore_errors=True)
    before = sorted((home / "static").glob("*")) if (home / "static").is_dir() else []
    result = run([CLI, "audit", "--cache-dir", str(cache)], cwd, home, out / f"{name}.log")
    after = sorted((home / "static").glob("*")) if (home / "static").is_dir() else []
    result["distilled"] = after != before
    result["load"] = os.getloadavg()
    print(f"{name}: {result['seconds']:.1f}s", file=sys.stderr, flush=True)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "out" / "first-run")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    load_before = os.getloadavg()
    home = out / "home"
    rows = {"cold-empty": audit(EXAMPLE, home, out, "cold-empty"),
            "cold-warm": audit(EXAMPLE, home, out, "cold-warm")}
    tiny = out / "tiny"
    tiny.mkdir()
    (tiny / ".eval-firewall.yml").write_text(TINY_CONFIG)
    # Two unrelated questions: nothing is a duplicate, so the paraphrase search runs (with the
    # full model, exact: two rows are far too few for static retrieval).
    (tiny / "train.jsonl").write_text(json.dumps(
        {"question": "Natalia sold clips to 48 of her friends in April. How many clips?"}) + "\n")
    (tiny / "eval.jsonl").write_text(json.dumps(
        {"question": "Weng earns $12 an hour for babysitting. How much did she earn?"}) + "\n")
    rows["two-rows"] = audit(tiny, out / "home-tiny", out, "two-rows")
    helps = [run([CLI, "--help"], out, out / "home-help", out / "help.log") for _ in range(5)]
    rows["help"] = min(helps, key=lambda r: r["seconds"]) | {
        "seconds": statistics.median(r["seconds"] for r in helps),
        "cpu": statistics.median(r["cpu"] for r in helps), "load": os.getloadavg()}
    (out / "result.json").write_text(json.dumps(rows, indent=2))
    print(table(rows, load_before))


LABELS = {"cold-empty": "Cold audit of the bundled example, user cache empty",
          "cold-warm": "Cold audit of the bundled example, user cache warm",
          "two-rows": "A 2-row audit (user cache empty)",
          "help": "`eval-firewall --help` (median of 5)"}


HEAD = ["case", "target", "wall", "CPU (user+sys)", "'load the static retrieval model' stage", "peak RSS",
        "distilled a static model", "load average after (1, 5, 15 min)"]


def table(rows: dict, load_before: tuple[float, ...]) -> str:
    cells = []
    for name, label in LABELS.items():
        r = rows[name]
        distil = r["stages"].get("load the static retrieval model")
        cells.append([label, TARGETS[name], f"{r['seconds']:.2f} s", f"{r['cpu']:.1f} s",
                      f"{distil:.1f} s" if distil is not None else "-", f"{r['rss_gib']:.2f} GiB",
                      "yes" if r["distilled"] else "no", ", ".join(f"{x:.1f}" for x in r["load"])])
    before = " ".join(f"{x:.2f}" for x in load_before)
    results.write("first_run", HEAD, [dict(zip(HEAD, c)) for c in cells],
                  load=f"{before} before; after each case in its row")
    lines = [f"load average before: {before}", "", "| " + " | ".join(HEAD) + " |",
             "|" + "---|" * len(HEAD)]
    lines += ["| " + " | ".join(c) + " |" for c in cells]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
