"""Benchmark: eval-firewall and semhash side by side, in one run, on the same data; prints Markdown.

    python bench/run.py [--sizes gsm8k,10000x100000,10000x1000000] [--repeat N] [--out bench/out]
                        [--no-semhash] [--no-incremental] [--encode-rows N] [--old-src DIR]

For each size (``EVALxTRAIN`` rows of generated data, see bench/data.py; ``gsm8k`` is the real
GSM8K test set against the real train set) it builds a git repository, then, ``--repeat`` times,
interleaved (ours, semhash, ours, semhash, ...), and reports the median of each:
- cold: ``eval-firewall audit`` with an empty cache and an empty per-user home, per stage from
  the progress lines, and the peak RSS of the process. The static model ships in the package,
  so a cold run distils nothing ("distillation: none, packaged model"); its load is the
  ``distil`` column, and "cold w/o distil" subtracts it;
- incremental: 100 eval rows changed in a new commit, ``audit --base HEAD~1`` with the cache
  the cold run left (the warm-cache path of a pull request), and its peak RSS; "CPU" columns
  are the process's user + system seconds (on a shared machine, less load-dependent than the
  wall time);
- train change: a new train file of 1,000 rows in a new commit, ``audit --base HEAD~1`` with
  that cache (the train index rebuilds only the new file's chunk); "index on disk" is the
  size of the cache's ``index/`` directory after the cold run;
- ``--old-src DIR``: the same cold, incremental and train-change runs with another checkout's
  sources (e.g. ``git worktree add /tmp/base main``, ``--old-src /tmp/base/src``);
- semhash: the same cross-dataset job (eval rows against train rows, threshold 0.9) with
  semhash on the same static model our retriever uses (the packaged one; no distillation on
  either side);
- recall: how many of the 60 planted hand-written paraphrases the cold audit flags (as a
  paraphrase or already as an exact or near copy);
- encoding: static-model rows/s on the train texts, model2vec's ``encode`` against ours, in the
  same process (``--encode-rows``, 0 to skip).
The load average is printed before and after: the machine may be shared, so compare only
figures of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import data  # noqa: E402
import results  # noqa: E402

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


def measure(argv: list[str], cwd: Path, log: Path, src: Path | None = None) -> dict:
    """Run a command (with ``src``'s eval_firewall first on the path, when given); wall time,
    peak RSS (GiB) and the stage timings it printed."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    started = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    stages: dict[str, float] = {}
    for line in log.read_text().splitlines():
        m = STAGE.match(line.strip())
        if m:
            stages[m["name"]] = stages.get(m["name"], 0.0) + float(m["seconds"])
    code = os.waitstatus_to_exitcode(status)
    return {"seconds": seconds, "rss_gib": usage.ru_maxrss / 2**20, "stages": stages,
            "exit": code, "cpu": usage.ru_utime + usage.ru_stime}


def audit(repo: Path, cache: Path, out: Path, name: str, *extra: str,
          src: Path | None = None) -> dict:
    report = out / f"{name}.json"
    result = measure([CLI, "audit", "--format", "json", "-o", str(report), "--cache-dir",
                      str(cache), *extra], repo, out / f"{name}.log", src)
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
    leaked = set()
    for f in loaded.findings:
        result["findings"][f.rule] = result["findings"].get(f.rule, 0) + 1
        if f.rule in LEAK_RULES and f.row_id is not None:
            leaked.add(f.row_id)
    result["leaked_rows"] = sorted(leaked)
    return result


SEMHASH_JOB = """
import json, sys
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
LEAK_RULES = {"exact-duplicate", "near-duplicate", "paraphrase"}


def static_model_dir() -> Path:
    """The packaged static model: what our cold run uses, and what semhash gets."""
    from eval_firewall.embeddings import PACKAGED
    found = sorted(PACKAGED.glob("static*"))
    if not found:
        raise SystemExit(f"no packaged static model in {PACKAGED}")
    return found[0]


def semhash(repo: Path, out: Path, name: str) -> dict:
    job = out / "semhash_job.py"
    job.write_text(SEMHASH_JOB)
    return measure([PYTHON, str(job), str(static_model_dir()),
                    str(repo / "data/train/train.jsonl"), str(repo / "data/eval/eval.jsonl")],
                   repo, out / f"{name}.log")


def recall(size: str, report: dict) -> tuple[int, int] | None:
    """(flagged, planted) for the hand-written paraphrases planted in generated data."""
    if "x" not in size:
        return None
    planted = set(data.planted_paraphrase_ids(*(int(x) for x in size.split("x"))))
    return len(planted & set(report["leaked_rows"])), len(planted)


def encoding_rates(repo: Path, rows: int) -> dict:
    """Static-model rows/s on the first ``rows`` train texts: model2vec's encode, then ours."""
    from eval_firewall.embeddings.static import StaticEmbedder, _load_static
    with open(repo / "data/train/train.jsonl", encoding="utf-8") as fh:
        texts = [json.loads(line)["question"] for _, line in zip(range(rows), fh)]
    directory = static_model_dir()
    model = _load_static(directory)
    started = time.perf_counter()
    model.encode(texts, show_progress_bar=False)
    before = time.perf_counter() - started
    ours = StaticEmbedder(model, directory.name)
    started = time.perf_counter()
    ours.encode(texts)
    after = time.perf_counter() - started
    return {"rows": len(texts), "model2vec": len(texts) / before, "ours": len(texts) / after}


def median_run(runs: list[dict]) -> dict:
    """The run of median wall time (its stages and RSS come with it; RSS is the maximum)."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["runs"] = [r["seconds"] for r in runs]
    chosen["rss_gib"] = max(r["rss_gib"] for r in runs)
    return chosen


def directory_bytes(path: Path) -> int:
    """The bytes of the files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def run_size(size: str, out: Path, with_semhash: bool, incremental: bool, repeat: int,
             encode_rows: int, src: Path | None = None, label: str | None = None) -> dict:
    """Cold, incremental (100 eval rows) and train-change (a new train file of 1,000 rows)
    runs of one size; ``src``: the eval_firewall sources to run (default: this checkout's)."""
    repo = prepare(size, out)
    label = label or size
    work = out / f"{label}-run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ.pop("EVAL_FIREWALL_MODELS", None)
    colds, incs, sems, trains, index_bytes = [], [], [], [], []
    # The per-user homes live outside any git work tree: eval-firewall refuses a cache key
    # inside a repository (a pull request could plant it), and would then sign with a key for
    # one run only, so the incremental run could reuse nothing.
    homes = Path(tempfile.mkdtemp(prefix="eval-firewall-bench-home-"))
    for n in range(repeat):
        cache = work / f"cache{n}"
        # An empty per-user home and cache: what a first run pays (the static model is the
        # packaged one: nothing is distilled).
        os.environ["EVAL_FIREWALL_HOME"] = str(homes / f"home{n}")
        git(repo, "reset", "-q", "--hard", "bench-base")
        colds.append(audit(repo, cache, work, f"cold{n}", src=src))
        index_bytes.append(directory_bytes(cache / "index"))
        print(f"{label}: cold {colds[-1]['seconds']:.1f}s", file=sys.stderr, flush=True)
        if incremental:
            data.change_eval_rows(repo, 100)
            git(repo, "-c", "user.email=bench@example.com", "-c", "user.name=bench",
                "commit", "-q", "-am", "change 100 eval rows")
            incs.append(audit(repo, cache, work, f"incremental{n}", "--base", "HEAD~1",
                              src=src))
            git(repo, "reset", "-q", "--hard", "bench-base")
            print(f"{label}: incremental {incs[-1]['seconds']:.1f}s", file=sys.stderr,
                  flush=True)
            data.add_train_file(repo, 1000)
            git(repo, "-c", "user.email=bench@example.com", "-c", "user.name=bench",
                "add", "-A")
            git(repo, "-c", "user.email=bench@example.com", "-c", "user.name=bench",
                "commit", "-q", "-m", "add a train file of 1,000 rows")
            trains.append(audit(repo, cache, work, f"train-change{n}", "--base", "HEAD~1",
                                src=src))
            git(repo, "reset", "-q", "--hard", "bench-base")
            git(repo, "clean", "-q", "-fd", "data")
            print(f"{label}: one train file of 1,000 rows added "
                  f"{trains[-1]['seconds']:.1f}s", file=sys.stderr, flush=True)
        shutil.rmtree(cache, ignore_errors=True)
        if with_semhash:
            sems.append(semhash(repo, work, f"semhash{n}"))
            print(f"{size}: semhash {sems[-1]['seconds']:.1f}s", file=sys.stderr, flush=True)
    shutil.rmtree(homes, ignore_errors=True)
    row = {"size": label, "cold": median_run(colds), "recall": recall(size, colds[0]),
           "index_bytes": max(index_bytes)}
    if incs:
        row["incremental"] = median_run(incs)
        row["train_change"] = median_run(trains)
    if sems:
        row["semhash"] = median_run(sems)
    if encode_rows:
        row["encoding"] = encoding_rates(repo, encode_rows)
    (work / "result.json").write_text(json.dumps(row, indent=2))
    return row


def table_cells(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """The table's header and rows (cells as printed)."""
    head = ["eval x train", "cold total", "cold w/o distil", *[c for c, _ in COLUMNS], "render",
            "other", "peak RSS", "cold CPU", "incremental (100 rows)", "incr / cold",
            "incr CPU", "incr peak RSS",
            "train file of 1,000 rows added", "index on disk", "semhash",
            "cold / semhash", "planted paraphrases flagged"]
    out = []
    for row in rows:
        cold = row["cold"]
        cells = [row["size"], f"{cold['seconds']:.1f} s"]
        values = [sum(v for k, v in cold["stages"].items() if k.startswith(prefixes))
                  for _, prefixes in COLUMNS]
        distil = values[[c for c, _ in COLUMNS].index("distil")]
        cells.append(f"{cold['seconds'] - distil:.1f} s")
        cells += [f"{v:.1f}" for v in values]
        cells.append(f"{cold['render']:.1f}")
        cells.append(f"{cold['seconds'] - sum(values):.1f}")
        cells.append(f"{cold['rss_gib']:.2f} GiB")
        cells.append(f"{cold['cpu']:.1f} s" if "cpu" in cold else "-")
        inc = row.get("incremental")
        cells += [f"{inc['seconds']:.1f} s", f"{inc['seconds'] / cold['seconds']:.1%}",
                  f"{inc['cpu']:.1f} s" if "cpu" in inc else "-",
                  f"{inc['rss_gib']:.2f} GiB"] if inc else ["-", "-", "-", "-"]
        change = row.get("train_change")
        cells.append(f"{change['seconds']:.1f} s" if change else "-")
        cells.append(f"{row['index_bytes'] / 2**20:,.0f} MiB" if row.get("index_bytes") else "-")
        sem = row.get("semhash")
        cells += [f"{sem['seconds']:.1f} s", f"{cold['seconds'] / sem['seconds']:.2f}"] \
            if sem else ["-", "-"]
        cells.append(f"{row['recall'][0]} of {row['recall'][1]}" if row.get("recall") else "-")
        out.append(cells)
    return head, out


def table(rows: list[dict]) -> str:
    head, cells = table_cells(rows)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c) + " |" for c in cells]
    return "\n".join(lines)


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="gsm8k,10000x100000,10000x1000000")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each (interleaved); the median is reported")
    parser.add_argument("--no-semhash", action="store_true")
    parser.add_argument("--no-incremental", action="store_true")
    parser.add_argument("--encode-rows", type=int, default=100_000,
                        help="train texts for the encoding rows/s line (0: skip)")
    parser.add_argument("--old-src", type=Path, default=None,
                        help="another checkout's src/ (e.g. a worktree of main) run side by "
                             "side, as rows '<size> (old)'")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    before = load()
    print(f"load average (1/5/15 min) before: {before}", file=sys.stderr, flush=True)
    rows = []
    ours = HERE.parent / "src"
    for size in args.sizes.split(","):
        rows.append(run_size(size.strip(), args.out.resolve(), not args.no_semhash,
                             not args.no_incremental, max(1, args.repeat), args.encode_rows,
                             src=ours))
        if args.old_src is not None:
            rows.append(run_size(size.strip(), args.out.resolve(), False,
                                 not args.no_incremental, max(1, args.repeat), 0,
                                 src=args.old_src.resolve(), label=f"{size.strip()} (old)"))
    print(f"{os.cpu_count()} cores; load average (1/5/15 min) {before} before, {load()} after; "
          f"median of {max(1, args.repeat)} interleaved run(s); distillation: none, packaged "
          "model; times in seconds\n")
    print(table(rows))
    head, cells = table_cells(rows)
    encoding = "; ".join(
        f"static encoding, {r['size']} ({r['encoding']['rows']:,} train rows, same process): "
        f"model2vec {r['encoding']['model2vec']:,.0f} rows/s, ours {r['encoding']['ours']:,.0f} rows/s"
        for r in rows if "encoding" in r)
    results.write("run", head, [dict(zip(head, c)) for c in cells], load=f"{before} before, {load()} after",
                  notes=f"Times in seconds unless marked; median of {max(1, args.repeat)} interleaved run(s); "
                        f"distillation: none, packaged model. {encoding}")
    print("\nfindings (cold): " + "; ".join(
        f"{r['size']}: " + ", ".join(f"{k} {v}" for k, v in sorted(r["cold"]["findings"].items()))
        for r in rows))
    for r in rows:
        if "encoding" in r:
            e = r["encoding"]
            print(f"static encoding, {r['size']} ({e['rows']:,} train rows, same process): "
                  f"model2vec {e['model2vec']:,.0f} rows/s, ours {e['ours']:,.0f} rows/s")
        print(f"{r['size']}: all runs: cold " + ", ".join(f"{x:.1f}" for x in r["cold"]["runs"])
              + ("; semhash " + ", ".join(f"{x:.1f}" for x in r["semhash"]["runs"])
                 if "semhash" in r else ""))


if __name__ == "__main__":
    main()
