"""The lexical index against the scikit-learn pipeline it replaced, side by side; prints Markdown.

    python bench/lexical.py [--train N] [--eval N] [--repeat N] [--out bench/out]

Both build the near-duplicate index over the same normalized train texts and query it with the
eval texts (k = 10): ``columnar`` is :class:`eval_firewall.search.lexical.LexicalIndex`;
``scikit-learn`` featurizes with ``HashingVectorizer(analyzer=words)`` and normalizes with
``sklearn.preprocessing.normalize``, as the index did before. Each run is a fresh process
(interleaved, ``--repeat`` times, the median reported), so imports count and peak RSS is the
process's own (``ru_maxrss``; the texts alone are the "texts" column). The two must give the
same arrays and the same candidates: a digest of each is compared. Data: bench/data.py's train
and eval files of ``--train`` x ``--eval`` rows (generated if missing), normalized once by the
parent (into temporary files the runs read).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def normalized(jsonl: Path, out: Path) -> None:
    """Write the normalized questions of a JSONL file, one a line (they hold no line breaks)."""
    from eval_firewall.text.normalize import normalize

    with jsonl.open(encoding="utf-8") as fh, out.open("w", encoding="utf-8") as dst:
        for line in fh:
            dst.write(normalize(json.loads(line)["question"]) + "\n")


def texts(path: Path) -> list[str]:
    """The texts :func:`normalized` wrote, as Python strings (what the audit holds)."""
    with path.open(encoding="utf-8") as fh:
        return [line[:-1] for line in fh]


def sklearn_index(train: list[str]):
    """The pipeline before: the index's arrays, and its ``candidates`` function."""
    import numpy as np
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.preprocessing import normalize

    from eval_firewall.search.lexical import N_FEATURES, max_postings, words

    vectorizer = HashingVectorizer(n_features=N_FEATURES, analyzer=words, alternate_sign=False,
                                   binary=True, norm=None, dtype=np.float32)
    matrix = vectorizer.transform(train)
    df = np.bincount(matrix.indices, minlength=N_FEATURES)
    keep = (df > 0) & (df <= max_postings(len(train)))
    idf = np.zeros(N_FEATURES, dtype=np.float32)
    idf[keep] = np.log((1 + len(train)) / (1 + df[keep])) + 1.0
    matrix.data = idf[matrix.indices]
    matrix.eliminate_zeros()
    normalize(matrix, copy=False)
    t = matrix.T.tocsr()
    nonzero = np.flatnonzero(idf)
    arrays = {"size": np.array([len(train)]), "idf_at": nonzero, "idf": idf[nonzero],
              "data": t.data, "indices": t.indices, "indptr": t.indptr}

    def candidates(queries: list[str], k: int) -> list:
        out = []
        for start in range(0, len(queries), 512):
            q = vectorizer.transform(queries[start:start + 512])
            q.data = idf[q.indices]
            normalize(q, copy=False)
            scores = (q @ t).tocsr()
            for i in range(scores.shape[0]):
                cols = scores.indices[scores.indptr[i]:scores.indptr[i + 1]]
                vals = scores.data[scores.indptr[i]:scores.indptr[i + 1]]
                if len(cols) > k:
                    top = np.argpartition(-vals, k - 1)[:k]
                    cols, vals = cols[top], vals[top]
                out.append(cols[np.argsort(-vals, kind="stable")])
        return out

    return arrays, candidates


def child(variant: str, train_file: Path, eval_file: Path) -> dict:
    """One run in this process: build, query, digests, peak RSS."""
    train, evals = texts(train_file), texts(eval_file)
    rss_texts = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if variant == "scikit-learn":
        arrays, candidates = sklearn_index(train)
    else:
        from eval_firewall.search.lexical import LexicalIndex

        index = LexicalIndex(train)
        arrays, candidates = index.to_arrays(), index.candidates
    built = time.perf_counter()
    found = candidates(evals, 10)
    queried = time.perf_counter()
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(name.encode() + str(arrays[name].dtype).encode() + arrays[name].tobytes())
    for c in found:
        digest.update(c.astype("int64").tobytes() + b"|")
    return {"variant": variant, "build": built - start, "query": queried - built,
            "texts_mib": rss_texts / 1024, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "digest": digest.hexdigest()[:16], "sklearn": "sklearn" in sys.modules}


def main() -> None:
    """Run both variants interleaved and print a Markdown table of medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=1_000_000)
    parser.add_argument("--eval", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), Path(args.child[2]))))
        return
    data = args.out / f"{args.eval}x{args.train}" / "data"
    if not (data / "train" / "train.jsonl").exists():
        from data import generate

        generate(args.eval, args.train, data.parent)
    work = Path(tempfile.mkdtemp(prefix="bench-lexical-"))
    train_file, eval_file = work / "train.txt", work / "eval.txt"
    normalized(data / "train" / "train.jsonl", train_file)
    normalized(data / "eval" / "eval.jsonl", eval_file)
    print(f"load average before: {os.getloadavg()}")
    runs: dict[str, list[dict]] = {"scikit-learn": [], "columnar": []}
    for r in range(args.repeat):
        for variant in (["scikit-learn", "columnar"] if r % 2 == 0 else ["columnar", "scikit-learn"]):
            done = subprocess.run([sys.executable, __file__, "--child", variant, str(train_file), str(eval_file)],
                                  capture_output=True, text=True, check=True)
            runs[variant].append(json.loads(done.stdout))
    shutil.rmtree(work)
    print(f"load average after: {os.getloadavg()}\n")
    print(f"{args.eval} queries against {args.train} train rows, median of {args.repeat}:\n")
    print("| featurizer | build s | query s | texts MiB | peak RSS MiB | imports scikit-learn | digest |")
    print("|---|---|---|---|---|---|---|")
    for variant, results in runs.items():
        def med(key: str, results: list[dict] = results) -> float:
            return statistics.median(x[key] for x in results)
        print(f"| {variant} | {med('build'):.1f} | {med('query'):.2f} | {med('texts_mib'):.0f} | "
              f"{med('peak_mib'):.0f} | {results[0]['sklearn']} | {results[0]['digest']} |")
    digests = {x["digest"] for results in runs.values() for x in results}
    print("\nsame index and candidates: " + ("yes" if len(digests) == 1 else f"NO ({sorted(digests)})"))


if __name__ == "__main__":
    main()
