"""Paraphrase retrieval's exact search, old against new, side by side; prints Markdown.

    python bench/search.py [--queries 9500] [--repeat 1] [--data bench/out/10000x1000000/data]

The vectors are the benchmark's (``bench/run.py``): its train and eval questions encoded by the
packaged static model (1M rows take about 15 s; kept in ``--cache``, a temporary folder by
default, keyed by the files' size and time). Without the benchmark repository, generated
vectors stand in: 1M unit rows in 128 dimensions drawn around 20k templates, the queries
around the same templates.

"old" is ``VectorIndex.search_above`` as it was before the two-stage search (one float32
product of every pair, hits above each query's bar); "new" is today's. Both run in this
process on the same vectors, alternately when ``--repeat`` is more than 1 (the table gives
the median; peak memory is the most numpy allocated at once during a search, by
tracemalloc); the load average is printed before and after. Agreement counts the queries
whose hits (rows and order) are the same, and, of the others, those whose scores agree to
float32 rounding (old scores depend on where a pair falls in the blocked product, so equal
rows can differ in the last bit there and swap places; new ones are the exact products'
rounding, equal rows tie and come by row number).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from eval_firewall.search import vectors  # noqa: E402
from eval_firewall.search.vectors import VectorIndex, _merge_hits  # noqa: E402

THRESHOLD, K = 0.7, 15      # search/paraphrase.py: STATIC_FLOOR, default candidates x RETRIEVE
DATA = HERE / "out" / "10000x1000000" / "data"


def old_search_above(index: VectorIndex, queries: np.ndarray, threshold: float, k: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """search_above before the two stages (commit c985336): every pair's float32 score."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    indices, scores = index._empty(len(queries), k)
    floor = np.full(len(queries), threshold, dtype=np.float32)
    if len(index) > 2 * vectors.FLOOR_SAMPLE:
        sample = index.vectors[:: len(index) // vectors.FLOOR_SAMPLE].astype(np.float32).T
        kth = sample.shape[1] - k
        for q0 in range(0, len(queries), vectors.QUERY_BLOCK):
            sims = queries[q0:q0 + vectors.QUERY_BLOCK] @ sample
            best = np.partition(sims, kth, axis=1)[:, kth]
            floor[q0:q0 + len(sims)] = np.maximum(threshold, best)
    for q0, r0, sims in index._blocks(queries):
        end = q0 + len(sims)
        bar = np.maximum(floor[q0:end], scores[q0:end, k - 1])
        hits = np.flatnonzero(sims >= bar[:, None])
        if len(hits):
            rows, cols = np.divmod(hits, sims.shape[1])
            _merge_hits(indices, scores, rows + q0, cols + r0, sims.ravel()[hits], k)
    below = scores < threshold
    indices[below] = -1
    scores[below] = -np.inf
    return indices, scores


def questions(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line)["question"] for line in fh]


def benchmark_vectors(data: Path, cache: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """(train float16, eval float32, description): the benchmark's questions, encoded once."""
    files = [data / "train" / "train.jsonl", data / "eval" / "eval.jsonl"]
    key = hashlib.sha256(repr([(str(f), f.stat().st_size, f.stat().st_mtime_ns)
                               for f in files]).encode()).hexdigest()[:16]
    target = cache / f"search-{key}.npz"
    if not target.exists():
        from eval_firewall.embeddings import PACKAGED
        from eval_firewall.embeddings.static import StaticEmbedder, _load_static
        model_dir = next(PACKAGED.glob("static128-*"))
        embedder = StaticEmbedder(_load_static(model_dir), model_dir.name)
        train, evals = (embedder.encode(questions(f)) for f in files)
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(target, train=train.astype(np.float16), eval=evals)
    arrays = np.load(target)
    return arrays["train"], arrays["eval"], f"benchmark's questions ({data})"


def generated_vectors(rows: int, queries: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Unit rows around templates (a mean direction plus noise), queries near the same."""
    rng = np.random.default_rng(0)
    templates = rng.standard_normal((20_000, 128)).astype(np.float32) + 2.0
    def around(n: int, noise: float) -> np.ndarray:
        x = templates[rng.integers(0, len(templates), n)]
        x += noise * rng.standard_normal(x.shape).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    train = np.concatenate([around(min(rows, 100_000), 0.5) for _ in range(0, rows, 100_000)])
    return train[:rows].astype(np.float16), around(queries, 0.6), "generated (no benchmark)"


class Counts:
    """Pairs stage two looked at: refined by the rotated tails, scored exactly."""

    def __init__(self) -> None:
        self.near = self.exact = 0
        near, exact = vectors._Side.near, vectors.exact_scores

        def counted_near(side, rows, qi, ri, bound):  # type: ignore[no-untyped-def]
            self.near += len(qi)
            return near(side, rows, qi, ri, bound)

        def counted_exact(queries, rows):  # type: ignore[no-untyped-def]
            self.exact += len(queries)
            return exact(queries, rows)

        vectors._Side.near = counted_near  # type: ignore[method-assign]
        vectors.exact_scores = counted_exact


def timed(search, index, queries) -> tuple[tuple[np.ndarray, np.ndarray], float, float, float]:
    """(hits, seconds, CPU seconds, peak MiB numpy allocated during the search)."""
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    c0, t0 = os.times(), time.perf_counter()
    found = search(index, queries, THRESHOLD, K)
    c1 = os.times()
    peak = (tracemalloc.get_traced_memory()[1] - base) / 2**20
    return found, time.perf_counter() - t0, c1.user + c1.system - c0.user - c0.system, peak


def agreement(old: tuple[np.ndarray, np.ndarray], new: tuple[np.ndarray, np.ndarray]
              ) -> tuple[int, int, int, int]:
    """(queries identical, others with scores equal to 2e-6, old hits, old hits new has)."""
    (oi, os_), (ni, ns) = old, new
    same = (oi == ni).all(axis=1)
    close = ~same & ((oi >= 0) == (ni >= 0)).all(axis=1) & \
        (np.abs(np.where(oi >= 0, os_, 0.0) - np.where(ni >= 0, ns, 0.0)) <= 2e-6).all(axis=1)
    kept = sum(len(set(o[o >= 0]) & set(n[n >= 0])) for o, n in zip(oi, ni))
    return int(same.sum()), int(close.sum()), int((oi >= 0).sum()), kept


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=9500)
    parser.add_argument("--rows", type=int, default=1_000_000, help="generated data only")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "ef-bench")
    args = parser.parse_args(argv)
    if (args.data / "train" / "train.jsonl").exists():
        train, evals, source = benchmark_vectors(args.data, args.cache)
    else:
        train, evals, source = generated_vectors(args.rows, args.queries)
    queries = np.ascontiguousarray(evals[:args.queries], dtype=np.float32)
    index = VectorIndex(train, storage=np.float16)
    counts = Counts()
    print(f"{len(queries):,} queries x {len(index):,} rows, {source}; threshold {THRESHOLD}, "
          f"k {K}; load average before {load()}")
    runs: dict[str, list[tuple[float, float, float]]] = {"old": [], "new": []}
    tracemalloc.start()
    found = {}
    searches = {"old": old_search_above, "new": VectorIndex.search_above}
    for _ in range(args.repeat):
        for name, search in searches.items():
            counts.near = counts.exact = 0
            found[name], wall, cpu, peak = timed(search, index, queries)
            runs[name].append((wall, cpu, peak))
    same, close, hits, kept = agreement(found["old"], found["new"])
    print(f"load average after {load()}\n")
    print("| search | seconds | CPU seconds | peak MiB allocated | pairs refined "
          "| pairs scored exactly |")
    print("|---|---|---|---|---|---|")
    for name in searches:
        wall = statistics.median(w for w, _, _ in runs[name])
        cpu = statistics.median(c for _, c, _ in runs[name])
        peak = max(p for _, _, p in runs[name])
        pairs = (f"{counts.near:,} | {counts.exact:,}" if name == "new"
                 else f"- | {len(queries) * len(index):,} (all)")
        print(f"| {name} | {wall:.1f} | {cpu:.1f} | {peak:.0f} | {pairs} |")
    print(f"\nAgreement: {same:,} of {len(queries):,} queries identical; {close:,} more with "
          f"the same scores to float32 rounding (equal rows in another order); "
          f"{kept:,} of the old {hits:,} hits found by the new search.")


if __name__ == "__main__":
    main()
