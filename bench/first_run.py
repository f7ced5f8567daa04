"""Benchmark of a first run and of the audit path without torch; prints a Markdown table.

    python bench/first_run.py [--image TAG] [--out bench/out/first-run]

Runs the real CLI in a subprocess, each case with an empty audit cache (``--cache-dir``) and a
per-user home of its own (no prebuilt models but the static model the package ships):
- a 2-row audit (one train row, one eval row: the paraphrase search scores the pair with the
  full model) with the home empty: the model is exported to ONNX, once (first use);
- the same 2-row audit again, the home now warm (the export exists): the issue's ≤ 3 s;
- the bundled example (examples/gsm8k) with that warm home and a cold audit cache: ≤ 10 s;
- ``eval-firewall --help`` (the median of 5 runs).
Each run lists the heavy modules it imported (torch, transformers, sentence_transformers) through
a ``sitecustomize`` hook on PYTHONPATH. Then, in this process: the paraphrase findings and pair
scores of the calibration setup's held-out rows (bench/calibrate.py's ``setup``) with the full
model on ONNX Runtime against sentence-transformers (torch). With ``--image``: that image's
size and an end-to-end run of it as GitHub runs it (docker/run_action.py).
Runs on whatever the machine is doing at the time: read the load averages printed with it.
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
ROOT = HERE.parent
EXAMPLE = ROOT / "examples" / "gsm8k"
PYTHON = sys.executable
CLI = str(Path(PYTHON).with_name("eval-firewall"))
HEAVY = ("torch", "transformers", "sentence_transformers")
TINY_CONFIG = """\
datasets:
  - {name: train, role: train, paths: [train.jsonl], text: question}
  - {name: eval, role: eval, paths: [eval.jsonl], text: question}
"""
HOOK = """\
import atexit, os, sys
def _dump():
    with open(os.environ['BENCH_MODULES'], 'w') as out:
        out.write('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))
if os.environ.get('BENCH_MODULES'):
    atexit.register(_dump)
"""


def run(argv: list[str], cwd: Path, home: Path, out: Path, name: str) -> dict:
    """Wall and CPU seconds, peak RSS, heavy modules imported and stderr lines of one run,
    with ``home`` as the per-user home and no prebuilt models."""
    hook = out / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(HOOK)
    modules = out / f"{name}.modules"
    env = {**os.environ, "EVAL_FIREWALL_HOME": str(home), "BENCH_MODULES": str(modules),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))}
    env.pop("EVAL_FIREWALL_MODELS", None)
    log = out / f"{name}.log"
    started = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {code}; see {log}")
    imported = set(modules.read_text().split()) if modules.exists() else set()
    return {"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime,
            "rss_gib": usage.ru_maxrss / 2**20, "heavy": sorted(imported & set(HEAVY)),
            "onnxruntime": "onnxruntime" in imported, "load": os.getloadavg(),
            "exported": any(re.search(r"export .* to ONNX", line)
                            for line in log.read_text().splitlines())}


def audit(cwd: Path, home: Path, out: Path, name: str) -> dict:
    cache = out / f"{name}-cache"
    shutil.rmtree(cache, ignore_errors=True)
    result = run([CLI, "audit", "--cache-dir", str(cache)], cwd, home, out, name)
    print(f"{name}: {result['seconds']:.1f}s", file=sys.stderr, flush=True)
    return result


def paraphrase_equivalence(out: Path) -> dict:
    """The calibration setup's paraphrase pairs scored with the full model on ONNX Runtime and
    on torch (same static retrieval, same scoring model): the held-out rows' findings (eval row
    -> train row at the default probability and cosine floor) and the largest score gap."""
    sys.path[:0] = [str(ROOT / "src"), str(HERE)]
    import calibrate
    import numpy as np

    from eval_firewall.config import SemanticConfig
    from eval_firewall.embeddings import load_embedder, static_embedder
    from eval_firewall.overlap.finders import TrainSide, exact_matches, near_matches
    from eval_firewall.overlap.score import default_model
    from eval_firewall.search import paraphrase as search
    from eval_firewall.text.normalize import normalize

    train, evals, meta = calibrate.setup()
    side = TrainSide([normalize(t) for t in train], train)
    eval_norm = [normalize(t) for t in evals]
    skip = set(exact_matches(eval_norm, side))
    lexical: dict[int, list[int]] = {}
    near = near_matches(eval_norm, side, 0.8, 10, skip=skip, candidates=lexical)
    skip |= {i for i in near if meta[i]["group"] == "gsm8k"}
    held = {i for i in range(len(evals)) if i not in skip and meta[i]["part"] == "held-out"}
    cfg = SemanticConfig(retriever="static", threshold=0.0)
    defaults, model = SemanticConfig(), default_model()
    runs = {}
    for runtime in ("onnx", "torch"):
        full = load_embedder(runtime=runtime, home=out / "home-equivalence")   # type: ignore[arg-type]
        static = static_embedder(full, out / "home-equivalence")
        started = time.perf_counter()
        scored = search.ParaphraseSearch(cfg, embedder=full, retriever=static).for_train(
            train).score(evals, skip, lexical)
        seconds = time.perf_counter() - started
        scored = [s for s in scored if s.eval in held]
        prob = model.probability(np.stack([s.features for s in scored]))
        flags = calibrate.flagged_rows(scored, prob, defaults.min_probability, defaults.threshold)
        runs[runtime] = {"pairs": {(s.eval, s.train): (s.cosine, float(p))
                                   for s, p in zip(scored, prob)},
                         "flags": flags, "seconds": seconds}
        print(f"paraphrase scoring on {runtime}: {seconds:.1f}s", file=sys.stderr, flush=True)
    onnx, torch = runs["onnx"], runs["torch"]
    common = onnx["pairs"].keys() & torch["pairs"].keys()
    gaps = [max(abs(onnx["pairs"][k][0] - torch["pairs"][k][0]),
                abs(onnx["pairs"][k][1] - torch["pairs"][k][1])) for k in common]
    return {"held_out_rows": len(held), "pairs": len(common),
            "same_pairs": onnx["pairs"].keys() == torch["pairs"].keys(),
            "findings": len(onnx["flags"]), "identical": onnx["flags"] == torch["flags"],
            "max_gap": max(gaps, default=0.0), "seconds": {k: v["seconds"] for k, v in runs.items()},
            "load": os.getloadavg()}


def image(tag: str, out: Path) -> dict:
    size = int(subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", tag],
                              check=True, capture_output=True, text=True).stdout)
    started = time.perf_counter()
    done = subprocess.run([PYTHON, str(ROOT / "docker" / "run_action.py"), tag],
                          capture_output=True, text=True)
    (out / "image-run.log").write_text(done.stdout + done.stderr)
    return {"size_mb": size / 1e6, "run_ok": done.returncode == 0,
            "run_seconds": time.perf_counter() - started,
            "misses": [line[5:] for line in done.stdout.splitlines() if line.startswith("MISS")],
            "load": os.getloadavg()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "out" / "first-run")
    parser.add_argument("--image", help="an image built by docker/build-here.sh: size and a run")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    load_before = os.getloadavg()
    tiny = out / "tiny"
    tiny.mkdir()
    (tiny / ".eval-firewall.yml").write_text(TINY_CONFIG)
    # Two unrelated questions: nothing is a duplicate, so the paraphrase search runs (with the
    # full model, exact: two rows are far too few for static retrieval).
    (tiny / "train.jsonl").write_text(json.dumps(
        {"question": "Natalia sold clips to 48 of her friends in April. How many clips?"}) + "\n")
    (tiny / "eval.jsonl").write_text(json.dumps(
        {"question": "Weng earns $12 an hour for babysitting. How much did she earn?"}) + "\n")
    home = out / "home"
    rows = {"first-use": audit(tiny, home, out, "first-use"),
            "two-rows": audit(tiny, home, out, "two-rows"),
            "example": audit(EXAMPLE, home, out, "example")}
    helps = [run([CLI, "--help"], out, out / "home-help", out, "help") for _ in range(5)]
    rows["help"] = helps[0] | {"seconds": statistics.median(r["seconds"] for r in helps),
                               "cpu": statistics.median(r["cpu"] for r in helps)}
    equivalence = paraphrase_equivalence(out)
    built = image(args.image, out) if args.image else None
    (out / "result.json").write_text(json.dumps(
        {"runs": rows, "equivalence": equivalence, "image": built}, indent=2, default=str))
    print(table(rows, equivalence, built, load_before))


LABELS = {"first-use": ("A 2-row audit, per-user home empty (exports the model once)", "-"),
          "two-rows": ("A 2-row audit, warm per-user home", "≤ 3 s"),
          "example": ("Bundled example, cold audit cache (warm home)", "≤ 10 s"),
          "help": ("`eval-firewall --help` (median of 5)", "≤ 0.5 s")}


HEAD = ["case", "target", "wall", "CPU (user+sys)", "peak RSS", "exported to ONNX", "heavy imports",
        "load average after (1, 5, 15 min)"]


def table(rows: dict, eq: dict, built: dict | None, load_before: tuple[float, ...]) -> str:
    before = " ".join(f"{x:.2f}" for x in load_before)
    cells = []
    for name, (label, target) in LABELS.items():
        r = rows[name]
        cells.append([label, target, f"{r['seconds']:.2f} s", f"{r['cpu']:.1f} s",
                      f"{r['rss_gib']:.2f} GiB", "yes" if r["exported"] else "no",
                      ", ".join(r["heavy"]) or "none", ", ".join(f"{x:.1f}" for x in r["load"])])
    lines = [f"load average before: {before}", "", "| " + " | ".join(HEAD) + " |",
             "|" + "---|" * len(HEAD)]
    lines += ["| " + " | ".join(c) + " |" for c in cells]
    measures = [
        ["Heavy imports during `audit` (warm home)", "none",
         ", ".join(sorted(set(rows["two-rows"]["heavy"]) | set(rows["example"]["heavy"]))) or "none"],
        [f"Paraphrase findings on the held-out rows ({eq['held_out_rows']} rows, {eq['pairs']} pairs)",
         "identical", f"{'identical' if eq['identical'] and eq['same_pairs'] else 'DIFFERENT'} "
         f"({eq['findings']} findings)"],
        ["Their scores (cosine, probability): largest gap to torch's", "≤ 1e-5", f"{eq['max_gap']:.1e}"],
        ["Scoring the pairs: ONNX Runtime / torch", "-",
         f"{eq['seconds']['onnx']:.1f} s / {eq['seconds']['torch']:.1f} s"]]
    if built is not None:
        measures += [["Image size (`docker image inspect`)", "≤ 900 MB", f"{built['size_mb']:.0f} MB"],
                     ["The image, run as GitHub runs it, local GitHub server", "comment, check, outputs",
                      f"{'all there' if built['run_ok'] else 'missed: ' + '; '.join(built['misses'])}"
                      f" ({built['run_seconds']:.1f} s)"]]
    lines += ["", "| measure | target | result |", "|---|---|---|"]
    lines += ["| " + " | ".join(m) + " |" for m in measures]
    after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    notes = "; ".join(f"{m[0]}: {m[2]} (target {m[1]})" for m in measures)
    results.write("first_run", HEAD, [dict(zip(HEAD, c)) for c in cells],
                  load=f"{before} before; after each case in its row", notes=notes)
    lines.append(f"\nload average at the end: {after}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
