"""The index in object storage: what a pull request's run fetches, against fetching it all.

    python bench/remote_index.py [--rows 200000] [--shards 8] [--eval 1000] [--changed 20]

Writes ``--rows`` train rows (bench/data.py) as ``--shards`` JSONL objects in a local
S3-compatible server (moto's, on 127.0.0.1, started here), and ``--eval`` eval rows in a git
repository whose config names ``index.location: s3://bench/index``. Then, each a fresh
``eval-firewall`` process, timed, with the bytes the server sent counted by kind:

1. ``index build`` (the trusted job): builds the index and publishes it to the bucket;
2. **pull request, cold**: ``audit`` with an empty cache directory (a runner without the
   index): every eval row is searched against the index in the bucket;
3. **pull request, results cached**: ``audit --base HEAD~1`` after ``--changed`` eval rows
   changed, with the results of the base's eval rows in the cache directory but not the index
   (a CI cache of the results alone, the index left in the bucket);
4. the peer: fetching the whole index (every object under the prefix, as ``aws s3 sync`` does).

Prints a Markdown table and the load average before and after, and writes
bench/results/remote_index.json (``python docs/generate.py`` puts it in the docs).
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
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from index_build import CONFIG as LOCAL  # noqa: E402  (bench/, put on the path above)

from s3_server import S3Server  # noqa: E402  (tests/, too)

CONFIG = LOCAL.replace('"data/train/shard-*.jsonl"', '"s3://bench/train/shard-*.jsonl"') + \
    'index:\n  location: "s3://bench/index"\n'
assert "s3://bench/train/" in CONFIG


def since(server: S3Server, mark: int) -> dict[str, int]:
    """Bytes sent since GET number ``mark``: train objects, index arrays, rows files."""
    out = {"train": 0, "arrays": 0, "postings": 0, "rows": 0, "manifests": 0}
    for path, size in server.sent[mark:]:
        kind = ("train" if "/train/" in path else "rows" if path.endswith("rows.arrow")
                else "postings" if path.endswith("lexical.rows.npy")
                else "manifests" if path.endswith("MANIFEST.json") else "arrays")
        out[kind] += size
    return out


def make(directory: Path, rows: int, shards: int, evals: int, env: dict[str, str]) -> None:
    import boto3
    from data import generate

    generate(evals, rows, directory)
    lines = (directory / "data/train/train.jsonl").read_text(encoding="utf-8").splitlines(True)
    shutil.rmtree(directory / "data/train")
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    s3.create_bucket(Bucket="bench")
    size = (len(lines) + shards - 1) // shards
    for i in range(shards):
        s3.put_object(Bucket="bench", Key=f"train/shard-{i:02d}.jsonl",
                      Body="".join(lines[i * size:(i + 1) * size]).encode())
    (directory / ".eval-firewall.yml").write_text(CONFIG)
    (directory / ".gitignore").write_text("cache-*/\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=b@example.com"]
    subprocess.run(["git", "init", "-q"], cwd=directory, check=True)
    subprocess.run([*git, "add", "-A"], cwd=directory, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=directory, check=True)


def change_evals(directory: Path, changed: int) -> None:
    path = directory / "data/eval/eval.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(True)
    for i in range(len(lines) - changed, len(lines)):
        row = json.loads(lines[i])
        row["question"] = f"{row['question']} (revised {i})"
        lines[i] = json.dumps(row) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=b@example.com"]
    subprocess.run([*git, "commit", "-qam", "change"], cwd=directory, check=True)


def timed(directory: Path, env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    pre = os.environ.get("BENCH_PRE", "")
    code = (f"exec(open({pre!r}).read()); " if pre else "") + \
        "import sys; from eval_firewall.cli import main; main(sys.argv[1:], prog_name='eval-firewall')"
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=directory,
                          env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1) or "Traceback" in done.stderr:
        sys.exit(f"{' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--eval", type=int, default=1000)
    parser.add_argument("--changed", type=int, default=20)
    args = parser.parse_args()
    server = S3Server()
    env = {**os.environ, **server.env}
    os.environ.update(server.env)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        make(repo, args.rows, args.shards, args.eval, env)
        figures: dict[str, dict[str, float]] = {}
        mark = len(server.sent)
        figures["index build (trusted job)"] = {"s": timed(repo, env, "index", "build", "-q",
                                                           "--cache-dir", "cache-trusted"),
                                                **since(server, mark)}
        mark = len(server.sent)
        figures["pull request, cold (empty cache)"] = {
            "s": timed(repo, env, "audit", "-q", "--cache-dir", "cache-pr"), **since(server, mark)}
        change_evals(repo, args.changed)
        shutil.rmtree(repo / "cache-pr/index")
        mark = len(server.sent)
        figures[f"pull request, {args.changed} eval rows changed, results cached"] = {
            "s": timed(repo, env, "audit", "-q", "--base", "HEAD~1", "--cache-dir", "cache-pr"),
            **since(server, mark)}
        import boto3

        s3 = boto3.client("s3", endpoint_url=server.url)
        mark, start = len(server.sent), time.perf_counter()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench",
                                                                 Prefix="index/"):
            for o in page.get("Contents", []):
                s3.get_object(Bucket="bench", Key=o["Key"])["Body"].read()
        figures["peer: fetch the whole index"] = {"s": time.perf_counter() - start,
                                                  **since(server, mark)}
    load_after = os.getloadavg()
    from results import write

    columns = ["Run", "Wall (s)", "Train objects (MB)", "Scanned arrays (MB)",
               "Lexical postings (MB)", "Rows files (MB)", "Manifests (KB)"]
    rows = [{"Run": name, "Wall (s)": f"{f['s']:.1f}", "Train objects (MB)": f"{f['train'] / 1e6:.1f}",
             "Scanned arrays (MB)": f"{f['arrays'] / 1e6:.1f}",
             "Lexical postings (MB)": f"{f['postings'] / 1e6:.1f}",
             "Rows files (MB)": f"{f['rows'] / 1e6:.1f}",
             "Manifests (KB)": f"{f['manifests'] / 1e3:.0f}"} for name, f in figures.items()]
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f}\n")
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(row[c] for c in columns) + " |")
    write("remote_index", columns, rows,
          load=f"{load_before[0]:.1f} before, {load_after[0]:.1f} after",
          notes=f"{args.rows:,} train rows in {args.shards} JSONL objects, {args.eval:,} eval rows, "
                "against moto's S3 server on 127.0.0.1 (no network latency in these times); "
                "bytes are what the server sent.")

if __name__ == "__main__":
    main()
