"""Benchmark: cold and incremental audits at several sizes, against semhash; prints Markdown.

    python bench/run.py [--sizes gsm8k,10000x100000,10000x1000000] [--out bench/out]
                        [--no-semhash] [--no-incremental]

For each size (``EVALxTRAIN`` rows of generated data, see bench/data.py; ``gsm8k`` is the real
GSM8K test set against the real train set) it builds a git repository, then times:
- cold: ``eval-firewall audit`` with an empty cache and an empty per-user home (model load and
  distillation included), per stage from the progress lines, and the peak RSS of the process;
- incremental: 100 eval rows changed in a new commit, ``audit --base HEAD~1`` with the cache
  the cold run left (the warm-cache path of a pull request);
- semhash: the same cross-dataset job (eval rows against train rows, threshold 0.9) with
  semhash on the same static model our retriever uses (distilled from all-MiniLM-L6-v2);
  semhash's time excludes the distillation, ours includes it.
Runs on whatever the machine is doing at the time: read the load average printed with it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import data  # noqa: E402

CONFIG = """\
datasets:
  - name: train
    role: train
    paths: ["data/train/*.jsonl"]
    text: [question]
    label: answer
    id: id
  - name: eval
    role: eval
    paths: ["data/eval/*.jsonl"]
    text: [question]
    label: answer
    id: id
audits:
  provenance: {enabled: false}
"""
STAGE = re.compile(r"^eval-firewall: (?P<name>.+?)(?: \((?P<rows>[\d,]+) rows\))? in "
                   r"(?P<seconds>[\d.]+)s$")
COLUMNS = [  # (column, stage-name prefixes)
    ("read", ("read ",)),
    ("normalize", ("normalize",)),
    ("lexical", ("build lexical index", "near-duplicate search", "search against new train")),
    ("distil", ("load the static retrieval model",)),   # includes a distillation
    ("embed", ("embed train",)),
    ("search", ("paraphrase retrieval", "paraphrase search")),
    ("rescore", ("paraphrase rescoring",)),
    ("same-gen", ("same-generator",)),
]
PYTHON = sys.executable
CLI = str(Path(PYTHON).with_name("eval-firewall"))


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def prepare(size: str, out: Path) -> Path:
    repo = out / size
    if (repo / ".git").exists():
        git(repo, "reset", "-q", "--hard", "bench-base")
        return repo
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    if size == "gsm8k":
        for split, role in (("train", "train"), ("test", "eval")):
            target = repo / "data" / role / f"{role}.jsonl"
            target.parent.mkdir(parents=True, exist_ok=True)
            lines = (data.GSM8K / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
            target.write_text("".join(
                json.dumps({"id": f"{role[0]}{i}", **json.loads(line)}) + "\n"
                for i, line in enumerate(lines)), encoding="utf-8")
    else:
        n_eval, n_train = (int(x) for x in size.split("x"))
        data.generate(n_eval, n_train, repo)
    (repo / ".eval-firewall.yml").write_text(CONFIG, encoding="utf-8")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.email=bench@example.com", "-c", "user.name=bench", "add", "-A")
    git(repo, "-c", "user.email=bench@example.com", "-c", "user.name=bench",
        "commit", "-q", "-m", "data")
    git(repo, "tag", "bench-base")
    return repo


def measure(argv: list[str], cwd: Path, log: Path) -> dict:
    """Run a command; wall time, peak RSS (GiB) and the stage timings it printed."""
    started = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    stages: dict[str, float] = {}
    for line in log.read_text().splitlines():
        m = STAGE.match(line.strip())
        if m:
            stages[m["name"]] = stages.get(m["name"], 0.0) + float(m["seconds"])
    code = os.waitstatus_to_exitcode(status)
    return {"seconds": seconds, "rss_gib": usage.ru_maxrss / 2**20, "stages": stages,
            "exit": code}


def audit(repo: Path, cache: Path, out: Path, name: str, *extra: str) -> dict:
    report = out / f"{name}.json"
    result = measure([CLI, "audit", "--format", "json", "-o", str(report), "--cache-dir",
                      str(cache), *extra], repo, out / f"{name}.log")
    if result["exit"] not in (0, 1):
        raise SystemExit(f"{name}: eval-firewall exited {result['exit']}; see "
                         f"{out / (name + '.log')}")
    started = time.perf_counter()
    from eval_firewall.report import render
    from eval_firewall.report.json import load_report
    loaded = load_report(report.read_text(encoding="utf-8"))
    render(loaded, "markdown")
    result["render"] = time.perf_counter() - started
    result["findings"] = {}
    for f in loaded.findings:
        result["findings"][f.rule] = result["findings"].get(f.rule, 0) + 1
    return result


SEMHASH_JOB = """
import json, sys, time
from model2vec import StaticModel
from semhash import SemHash
model = StaticModel.from_pretrained(sys.argv[1], force_download=False)
def texts(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line)["question"] for line in fh]
train, evals = texts(sys.argv[2]), texts(sys.argv[3])
index = SemHash.from_records(records=train, model=model)
result = index.deduplicate(records=evals, threshold=0.9)
print(json.dumps({"duplicates": len(result.filtered)}))
"""


def semhash(repo: Path, home: Path, out: Path) -> dict:
    static = sorted((home / "static").glob("static*"))
    if not static:
        raise SystemExit("no static model in the home: run the cold audit first")
    job = out / "semhash_job.py"
    job.write_text(SEMHASH_JOB)
    return measure([PYTHON, str(job), str(static[0]), str(repo / "data/train/train.jsonl"),
                    str(repo / "data/eval/eval.jsonl")], repo, out / "semhash.log")


def run_size(size: str, out: Path, with_semhash: bool, incremental: bool) -> dict:
    repo = prepare(size, out)
    work = out / f"{size}-run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cache = work / "cache"
    # An empty per-user home: the cold run distils the static model, as on a first run.
    os.environ["EVAL_FIREWALL_HOME"] = str(work / "home")
    os.environ.pop("EVAL_FIREWALL_MODELS", None)
    row = {"size": size, "cold": audit(repo, cache, work, "cold")}
    print(f"{size}: cold {row['cold']['seconds']:.1f}s", file=sys.stderr, flush=True)
    if incremental:
        data.change_eval_rows(repo, 100)
        git(repo, "-c", "user.email=bench@example.com", "-c", "user.name=bench",
            "commit", "-q", "-am", "change 100 eval rows")
        row["incremental"] = audit(repo, cache, work, "incremental", "--base", "HEAD~1")
        git(repo, "reset", "-q", "--hard", "bench-base")
        print(f"{size}: incremental {row['incremental']['seconds']:.1f}s", file=sys.stderr,
              flush=True)
    if with_semhash:
        row["semhash"] = semhash(repo, work / "home", work)
        print(f"{size}: semhash {row['semhash']['seconds']:.1f}s", file=sys.stderr, flush=True)
    (work / "result.json").write_text(json.dumps(row, indent=2))
    return row


def table(rows: list[dict]) -> str:
    head = ["eval x train", "cold total", *[c for c, _ in COLUMNS], "render", "other",
            "peak RSS", "incremental (100 rows)", "incr / cold", "semhash", "cold / semhash"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cold = row["cold"]
        cells = [row["size"], f"{cold['seconds']:.1f} s"]
        used = 0.0
        for _, prefixes in COLUMNS:
            value = sum(v for k, v in cold["stages"].items() if k.startswith(prefixes))
            used += value
            cells.append(f"{value:.1f}")
        cells.append(f"{cold['render']:.1f}")
        cells.append(f"{cold['seconds'] - used:.1f}")
        cells.append(f"{cold['rss_gib']:.2f} GiB")
        inc = row.get("incremental")
        cells += [f"{inc['seconds']:.1f} s", f"{inc['seconds'] / cold['seconds']:.0%}"] \
            if inc else ["-", "-"]
        sem = row.get("semhash")
        cells += [f"{sem['seconds']:.1f} s", f"{cold['seconds'] / sem['seconds']:.2f}"] \
            if sem else ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="gsm8k,10000x100000,10000x1000000")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--no-semhash", action="store_true")
    parser.add_argument("--no-incremental", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes.split(","):
        rows.append(run_size(size.strip(), args.out.resolve(), not args.no_semhash,
                             not args.no_incremental))
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; "
          "times in seconds\n")
    print(table(rows))
    print("\nfindings (cold): " + "; ".join(
        f"{r['size']}: " + ", ".join(f"{k} {v}" for k, v in sorted(r["cold"]["findings"].items()))
        for r in rows))


if __name__ == "__main__":
    main()
