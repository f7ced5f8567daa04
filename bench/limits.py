"""Peak memory of `eval-firewall audit` on hostile input, at the default limits; prints Markdown.

    python bench/limits.py [--gzip-gib 2] [--line-mb 200] [--beyond-gib 5] [--lines 10000000]
                           [--cases baseline,gzip,beyond,line,dictionary,cell,unreadable]

Cases (each a fresh repository in a temporary folder; semantic audit off, so no model loads):
- baseline: a one-row eval set, the process's own footprint;
- gzip bomb: a .jsonl.gz of about 2 MB that expands to ``--gzip-gib`` GiB, one line of zeros
  (the issue's bomb): under limits.max_file_bytes, so the line is read in bounded chunks,
  skipped, and reported as one invalid row (exit 1);
- gzip bomb past the file limit: ``--beyond-gib`` GiB, more than limits.max_file_bytes: reading
  stops at the limit with a one-line error (exit 2);
- long line: one JSONL line of ``--line-mb`` MB, an invalid row (exit 1);
- Parquet dictionary bomb: a 1,031-byte file whose dictionary page holds one 8 MiB string that
  20,000 rows reference (160 GiB decoded): refused with one line before it expands (exit 2);
- Parquet cell: a 10 KB file with one 300 MB cell, over limits.max_row_bytes: an invalid row
  (exit 1), its neighbours read;
- unreadable lines: a JSONL file of ``--lines`` lines ``1`` (none an object): 1,000 invalid-row
  findings and one for the rest (exit 1).
The target of issue #18: peak RSS at most 1.5 GiB on every case.

Peak RSS is the child's ``ru_maxrss``, measured by a parent whose only child is the audit.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results  # noqa: E402

HERE = Path(__file__).resolve().parent
CLI = Path(sys.executable).parent / "eval-firewall"

CONFIG = """\
datasets:
  - name: train
    role: train
    paths: ["data/train/*.jsonl"]
    text: [question]
  - name: eval
    role: eval
    paths: ["data/eval/*"]
    text: [question]
audits:
  overlap:
    semantic: {enabled: false}
    distribution: {enabled: false}
  provenance: {enabled: false}
"""

PROBE = """\
import resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
took = time.perf_counter() - start
last = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, took)
print(last[0])
"""


def repo(root: Path, make) -> Path:
    (root / "data/train").mkdir(parents=True)
    (root / "data/eval").mkdir(parents=True)
    (root / "data/train/train.jsonl").write_text('{"question": "t"}\n', encoding="utf-8")
    (root / ".eval-firewall.yml").write_text(CONFIG, encoding="utf-8")
    make(root / "data/eval")
    return root


def clean(folder: Path) -> None:
    (folder / "eval.jsonl").write_text('{"question": "e"}\n', encoding="utf-8")


def bomb(gib: float):
    def make(folder: Path) -> None:
        chunk = b"0" * (1 << 24)
        with gzip.open(folder / "bomb.jsonl.gz", "wb", compresslevel=9) as fh:
            fh.write(b'{"question": "first"}\n')
            for _ in range(int(gib * (1 << 30)) // len(chunk)):
                fh.write(chunk)
    return make


def long_line(mb: int):
    def make(folder: Path) -> None:
        with open(folder / "long.jsonl", "w", encoding="utf-8") as fh:
            fh.write('{"question": "first"}\n{"question": "')
            block = "x" * 1_000_000
            for _ in range(mb):
                fh.write(block)
            fh.write('"}\n{"question": "after"}\n')
    return make


def dictionary_bomb(folder: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    column = pa.DictionaryArray.from_arrays(pa.array(np.zeros(20_000, np.int32)),
                                            pa.array(["a" * (8 << 20)]))
    pq.write_table(pa.table({"question": column}), folder / "dictionary.parquet",
                   compression="zstd")


def huge_cell(folder: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"question": ["first", "a" * (300 << 20), "after"]})
    pq.write_table(table, folder / "cell.parquet", compression="zstd", use_dictionary=False)


def unreadable(lines: int):
    def make(folder: Path) -> None:
        with open(folder / "unreadable.jsonl", "wb") as fh:
            for _ in range(lines // 1_000_000):
                fh.write(b"1\n" * 1_000_000)
            fh.write(b"1\n" * (lines % 1_000_000))
    return make


def measure(root: Path) -> tuple[int, float, float, str]:
    done = subprocess.run([sys.executable, "-c", PROBE, str(CLI), "audit", "-q"], cwd=root,
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    first, last = (done.stdout.splitlines() + ["", ""])[:2]
    code, rss, took = first.split()
    return int(code), int(rss) / 1024, float(took), last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gzip-gib", type=float, default=2.0)
    parser.add_argument("--beyond-gib", type=float, default=5.0)
    parser.add_argument("--line-mb", type=int, default=200)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--cases", default="baseline,gzip,beyond,line,dictionary,cell,unreadable")
    args = parser.parse_args()
    every = {
        "baseline": ("baseline (one row)", clean),
        "gzip": (f"gzip bomb, {args.gzip_gib:g} GiB of one line", bomb(args.gzip_gib)),
        "beyond": (f"gzip bomb, {args.beyond_gib:g} GiB (past max_file_bytes)",
                   bomb(args.beyond_gib)),
        "line": (f"one JSONL line of {args.line_mb} MB", long_line(args.line_mb)),
        "dictionary": ("Parquet: one 8 MiB dictionary value, 20,000 rows", dictionary_bomb),
        "cell": ("Parquet: one 300 MB cell", huge_cell),
        "unreadable": (f"JSONL: {args.lines:,} unreadable lines", unreadable(args.lines)),
    }
    cases = [every[name.strip()] for name in args.cases.split(",")]
    before = results.load()
    print(f"load average: {before}; target: peak RSS <= 1.5 GiB\n")
    head = ["Case", "Input on disk", "Exit", "Peak RSS", "Time", "Last line on stderr"]
    print("| " + " | ".join(head) + " |")
    print("|---|---:|---:|---:|---:|---|")
    measured = []
    with tempfile.TemporaryDirectory(prefix="eval-firewall-limits-") as tmp:
        for i, (name, make) in enumerate(cases):
            root = repo(Path(tmp) / str(i), make)
            size = sum(f.stat().st_size for f in (root / "data/eval").iterdir())
            code, rss, took, last = measure(root)
            shown = f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size:,} B"
            cells = [name, shown, str(code), f"{rss:.0f} MiB", f"{took:.1f} s",
                     json.dumps(last)[1:-1][:150]]
            measured.append(dict(zip(head, cells)))
            print("| " + " | ".join(cells) + " |", flush=True)
            for f in (root / "data/eval").iterdir():
                f.unlink()
    results.write("limits", head, measured, load=f"{before} before, {results.load()} after",
                  notes="At the default limits; the baseline is the same process reading a one-row eval set.")


if __name__ == "__main__":
    start = time.time()
    main()
    print(f"\n({time.time() - start:.0f} s)")
