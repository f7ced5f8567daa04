"""Benchmark: eval items inside longer train documents; this branch, the old code, a 13-gram
overlap check (lm-eval-harness's method) and semhash, side by side in one run; prints Markdown.

    python bench/contain.py --old /tmp/base-contain [--shared ../shared/data] [--out /tmp/bench-contain]
                            [--speed 10000x1000000] [--docs 10000x100000] [--no-semhash]

``--old`` is a checkout of the code to compare with (e.g. ``git worktree add --detach
/tmp/base-contain main``); both run through the same ``eval-firewall`` command, with
``PYTHONPATH`` pointing at their ``src``. Scenarios (each a git repository under ``--out``):

- ``gsm8k-embedded``: 200 GSM8K test questions as eval (label: their worked solution), train =
  1,000 GSM8K train questions + 20 documents that each quote one eval question verbatim
  (re-wrapped, upper-cased), the even ones with its worked solution, between 3-5 other
  problems. Measured: quoted items found (and with the document and a span holding the item
  named), clean items flagged, leak kind right (``input+label`` exactly for the even ones).
- ``mmlu-embedded`` / ``humaneval-embedded``: the originals as eval (MMLU question; HumanEval
  prompt + canonical solution), train = 1,000 GSM8K train questions + one document per planted
  item holding its GPT-4 rephrasing (``../shared`` dev sets) among 3 other rows: 80 MMLU items,
  82 HumanEval items. Measured: planted found (any overlap rule), clean flagged.
- speed, ``--speed`` (bench/data.py's generated short rows): cold audit, this branch and the old
  code, 13-gram overlap and semhash; wall time and peak RSS.
- long documents, ``--docs``: eval rows of bench/data.py against train documents of about 1,000
  words (GSM8K-derived problems joined): cold audit of this branch, wall time and peak RSS
  (``0`` to skip).

The load average is printed before and after: the machine may be shared, so compare only
figures of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import data  # noqa: E402
import run  # noqa: E402

NEW = HERE.parent / "src"
CONFIG = run.CONFIG
LEAK_RULES = {"exact-duplicate", "near-duplicate", "contained", "paraphrase"}

NGRAM_JOB = r"""
import json, re, sys
N = 13
def words(text):
    return re.sub(r"[^\w\s]", " ", text.lower()).split()   # lm-eval: case, punctuation, spaces
def grams(ws):
    return {" ".join(ws[i:i + N]) for i in range(len(ws) - N + 1)}
def texts(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line)["question"] for line in fh]
train, evals = texts(sys.argv[1]), texts(sys.argv[2])
wanted = {}
for i, t in enumerate(evals):
    for g in grams(words(t)):
        wanted.setdefault(g, []).append(i)
flagged = set()
for t in train:
    ws = words(t)
    for k in range(len(ws) - N + 1):
        hit = wanted.get(" ".join(ws[k:k + N]))
        if hit:
            flagged.update(hit)
print(json.dumps({"flagged": sorted(flagged)}))
"""

SEMHASH_JOB = r"""
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
position = {}
for i, t in enumerate(evals):
    position.setdefault(t, []).append(i)
flagged = sorted({i for d in result.filtered for i in position.get(d.record, [])})
print(json.dumps({"flagged": flagged}))
"""


def measure(argv: list[str], cwd: Path, log: Path, src: Path | None = None) -> dict:
    """Run a command (with ``src`` first on the path); wall time, peak RSS, its stdout."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    started = time.perf_counter()
    with open(log, "w") as err, open(log.with_suffix(".out"), "w") as out:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    return {"seconds": time.perf_counter() - started, "rss_gib": usage.ru_maxrss / 2**20,
            "exit": os.waitstatus_to_exitcode(status),
            "stdout": log.with_suffix(".out").read_text()}


def audit(repo: Path, out: Path, name: str, src: Path) -> dict:
    """A cold ``eval-firewall audit`` of ``repo`` with the code in ``src``; its JSON findings."""
    report, cache = out / f"{name}.json", out / f"{name}-cache"
    subprocess.run(["rm", "-rf", str(cache)], check=True)
    result = measure([run.CLI, "audit", "-q", "--format", "json", "-o", str(report),
                      "--cache-dir", str(cache)], repo, out / f"{name}.log", src)
    if result["exit"] not in (0, 1):
        raise SystemExit(f"{name}: exit {result['exit']}; see {out / (name + '.log')}")
    result["findings"] = [f for f in json.loads(report.read_text())["findings"]
                          if f["audit"] == "overlap" and f["rule"] in LEAK_RULES]
    return result


def peer(job: str, args: list[str], repo: Path, out: Path, name: str) -> dict:
    script = out / f"{name}_job.py"
    script.write_text(job)
    result = measure([run.PYTHON, str(script), *args], repo, out / f"{name}.log")
    if result["exit"] != 0:
        raise SystemExit(f"{name}: exit {result['exit']}; see {out / (name + '.log')}")
    result["flagged"] = json.loads(result["stdout"].strip().splitlines()[-1])["flagged"]
    return result


def ngram(repo: Path, out: Path, name: str) -> dict:
    return peer(NGRAM_JOB, [str(repo / "data/train/train.jsonl"),
                            str(repo / "data/eval/eval.jsonl")], repo, out, name)


def semhash(repo: Path, out: Path, name: str) -> dict:
    return peer(SEMHASH_JOB, [str(run.static_model_dir()), str(repo / "data/train/train.jsonl"),
                              str(repo / "data/eval/eval.jsonl")], repo, out, name)


def write_repo(repo: Path, train: list[dict], evals: list[dict]) -> Path:
    subprocess.run(["rm", "-rf", str(repo)], check=True)
    for role, rows in (("train", train), ("eval", evals)):
        target = repo / "data" / role / f"{role}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
    (repo / ".eval-firewall.yml").write_text(CONFIG, encoding="utf-8")
    run.git(repo, "init", "-q", "-b", "main")
    run.git(repo, "-c", "user.email=b@example.com", "-c", "user.name=b", "add", "-A")
    run.git(repo, "-c", "user.email=b@example.com", "-c", "user.name=b", "commit", "-q", "-m", "d")
    return repo


def gsm8k(split: str) -> list[dict]:
    return [json.loads(line) for line in
            (data.GSM8K / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]


def document(rng: random.Random, fillers: list[dict], quoted: str, answer: str | None) -> str:
    """A train document: 3-5 problems with their solutions, one of them the quoted item."""
    parts = [f"Problem. {f['question']}\nSolution. {f['answer']}" for f in fillers]
    item = textwrap.fill(quoted.upper(), 60) + (f"\nSolution. {answer}" if answer else "")
    parts.insert(rng.randrange(len(parts) + 1), "Problem. " + item)
    return "\n\n".join(parts)


def gsm8k_embedded(out: Path) -> tuple[Path, dict]:
    rng = random.Random(0)
    test, train = gsm8k("test")[:200], gsm8k("train")
    rows = [{"id": f"t{i}", "question": r["question"], "answer": r["answer"]}
            for i, r in enumerate(train[:1000])]
    planted = {}
    for k in range(20):
        fillers = rng.sample(train[1000:], rng.randint(2, 4))
        answer = test[k]["answer"] if k % 2 == 0 else None
        planted[f"e{k}"] = (f"doc{k}", test[k]["question"], answer is not None)
        rows.append({"id": f"doc{k}", "question": document(rng, fillers, test[k]["question"],
                                                           answer), "answer": ""})
    evals = [{"id": f"e{i}", "question": r["question"], "answer": r["answer"]}
             for i, r in enumerate(test)]
    return write_repo(out / "gsm8k-embedded", rows, evals), planted


def rephrased_embedded(out: Path, shared: Path, kind: str) -> tuple[Path, dict]:
    rng = random.Random(1)
    if kind == "mmlu":
        pairs = [json.loads(l) for l in (shared / "rephrased-mmlu/pairs.jsonl").open()]
        originals = [p["original"] for p in pairs]
        rephrased = [p["rephrased"] for p in pairs]
        planted_n = 80
    else:
        problems = [json.loads(l) for l in (shared / "rephrased-humaneval/humaneval.jsonl").open()]
        originals = [p["prompt"] + p["canonical_solution"] for p in problems]
        rephrased = [json.loads(l)["text"] for l in
                     (shared / "rephrased-humaneval/rephrased_python.jsonl").open()]
        planted_n = 82
    train = gsm8k("train")
    rows = [{"id": f"t{i}", "question": r["question"], "answer": ""}
            for i, r in enumerate(train[:1000])]
    planted = {}
    for k in range(planted_n):
        fillers = [f["question"] for f in rng.sample(train[1000:], 3)]
        fillers.insert(rng.randrange(4), rephrased[k])
        planted[f"e{k}"] = (f"doc{k}", rephrased[k], False)
        rows.append({"id": f"doc{k}", "question": "\n\n".join(fillers), "answer": ""})
    evals = [{"id": f"e{i}", "question": t, "answer": ""} for i, t in enumerate(originals)]
    return write_repo(out / f"{kind}-embedded", rows, evals), planted


def normalize_words(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def score(findings: list[dict] | None, flagged: list[int] | None, planted: dict, n_eval: int,
          repo: Path) -> dict:
    """Found / clean flagged (and, for our findings, document + span named, leak kind right)."""
    if findings is not None:
        ids = {f["row_id"] for f in findings}
    else:
        ids = {f"e{i}" for i in flagged or []}
    found = sum(1 for k in planted if k in ids)
    clean = sum(1 for k in ids if k not in planted)
    out = {"found": found, "planted": len(planted), "clean": clean,
           "clean_total": n_eval - len(planted)}
    if findings is not None:
        named = kinds = 0
        for f in findings:
            if f["row_id"] not in planted:
                continue
            doc, quoted, with_answer = planted[f["row_id"]]
            span = (f.get("match") or {}).get("span")
            text = f["match"].get("text") or ""
            if f["match"]["row_id"] == doc and (span is None or f["rule"] != "contained" or
                                                normalize_words(quoted) in
                                                normalize_words(text[span["start"]:span["end"]])):
                named += f["rule"] == "contained" and span is not None or f["rule"] != "contained"
            kinds += f.get("leak") == ("input+label" if with_answer else "input")
        out["named"], out["kinds"] = named, kinds
    return out


def quality(out: Path, old: Path, shared: Path, with_semhash: bool) -> list[str]:
    lines = ["| Scenario | Tool | Planted found | Doc + span named | Leak kind right | "
             "Clean flagged | Time |", "|---|---|---|---|---|---|---|"]
    scenarios = [("gsm8k-embedded (verbatim)", *gsm8k_embedded(out))]
    if (shared / "rephrased-mmlu").exists():
        scenarios.append(("mmlu-embedded (GPT-4 rephrasing)", *rephrased_embedded(out, shared, "mmlu")))
        scenarios.append(("humaneval-embedded (GPT-4 rephrasing)",
                          *rephrased_embedded(out, shared, "humaneval")))
    for title, repo, planted in scenarios:
        n_eval = sum(1 for _ in (repo / "data/eval/eval.jsonl").open())
        tools = [("this branch", lambda: audit(repo, out, f"{repo.name}-new", NEW)),
                 ("old main", lambda: audit(repo, out, f"{repo.name}-old", old / "src")),
                 ("13-gram overlap", lambda: ngram(repo, out, f"{repo.name}-13gram"))]
        if with_semhash:
            tools.append(("semhash 0.9", lambda: semhash(repo, out, f"{repo.name}-semhash")))
        for tool, job in tools:
            r = job()
            s = score(r.get("findings"), r.get("flagged"), planted, n_eval, repo)
            named = (f"{s['named']} of {s['planted']}" if "named" in s else "-")
            kinds = (f"{s['kinds']} of {s['planted']}" if "kinds" in s else "-")
            lines.append(f"| {title} | {tool} | {s['found']} of {s['planted']} "
                         f"({s['found'] / s['planted']:.0%}) | {named} | {kinds} | "
                         f"{s['clean']} of {s['clean_total']} | {r['seconds']:.1f} s |")
            print(lines[-1], file=sys.stderr, flush=True)
    return lines


def long_documents(n_eval: int, n_docs: int, directory: Path, words: int = 1000) -> Path:
    """bench/data.py's eval rows; train: documents of about ``words`` words of GSM8K-derived
    problems."""
    if (directory / ".git").exists():
        return directory
    rng = random.Random(2)
    base = data.questions("train")
    tmp = directory / "_eval"
    data.generate(n_eval, 1000, tmp)
    evals = [json.loads(l) for l in (tmp / "data/eval/eval.jsonl").open()]
    subprocess.run(["rm", "-rf", str(tmp)], check=True)
    rows = []
    for d in range(n_docs):
        parts, count = [], 0
        while count < words:
            q = data.vary(base[rng.randrange(len(base))], rng)
            parts.append(q)
            count += len(q.split())
        rows.append({"id": f"d{d}", "question": "\n\n".join(parts), "answer": ""})
    return write_repo(directory, rows, evals)


def speed(out: Path, old: Path, size: str, docs: str, with_semhash: bool) -> list[str]:
    lines = ["| Job | Tool | Cold time | Peak RSS | Leak findings |", "|---|---|---|---|---|"]
    repo = run.prepare(size, out)
    jobs = [("this branch", lambda: audit(repo, out, "speed-new", NEW)),
            ("old main", lambda: audit(repo, out, "speed-old", old / "src")),
            ("13-gram overlap", lambda: ngram(repo, out, "speed-13gram"))]
    if with_semhash:
        jobs.append(("semhash 0.9", lambda: semhash(repo, out, "speed-semhash")))
    times = {}
    for tool, job in jobs:
        r = job()
        times[tool] = r["seconds"]
        n = len(r["findings"]) if "findings" in r else len(r["flagged"])
        lines.append(f"| cold {size} short rows | {tool} | {r['seconds']:.1f} s | "
                     f"{r['rss_gib']:.2f} GiB | {n} |")
        print(lines[-1], file=sys.stderr, flush=True)
    lines.append(f"| | this branch / old main | {times['this branch'] / times['old main']:.2f} x"
                 " | | |")
    if docs != "0":
        n_eval, n_docs = (int(x) for x in docs.split("x"))
        drepo = long_documents(n_eval, n_docs, out / f"docs-{docs}")
        r = audit(drepo, out, "docs-new", NEW)
        lines.append(f"| cold {n_eval} eval x {n_docs} documents of ~1,000 words | this branch | "
                     f"{r['seconds']:.1f} s | {r['rss_gib']:.2f} GiB | {len(r['findings'])} |")
        print(lines[-1], file=sys.stderr, flush=True)
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=Path, required=True)
    parser.add_argument("--shared", type=Path, default=HERE.parents[1] / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-contain"))
    parser.add_argument("--speed", default="10000x1000000")
    parser.add_argument("--docs", default="10000x100000")
    parser.add_argument("--no-semhash", action="store_true")
    parser.add_argument("--only", choices=["quality", "speed"], default=None)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {run.load()}")
    if args.only != "speed":
        print("\n".join(quality(args.out, args.old, args.shared, not args.no_semhash)))
    if args.only != "quality":
        print()
        print("\n".join(speed(args.out, args.old, args.speed, args.docs, not args.no_semhash)))
    print(f"\nload average after: {run.load()}")


if __name__ == "__main__":
    main()
