"""Calibrate the paraphrase threshold on hand-labelled GSM8K pairs.

    python bench/calibrate.py [--model all-MiniLM-L6-v2] [--cache-dir DIR]

Reads tests/data/paraphrase_pairs.jsonl (real GSM8K test questions ``a``, rewritten by hand
into true paraphrases and hard non-paraphrases ``b``) and prints, as Markdown:
1. recall and false-positive rate per cosine threshold of the full model, with and without
   the same-numbers check, and the false-positive rate per kind of hard negative;
2. the static (distilled) model's cosine on true paraphrases, which sets the retrieval floor;
3. retrieval recall: how often the static model ranks the partner in the top-k among all
   8,792 GSM8K questions (train + test).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from eval_firewall.audits.semantic import STATIC_FLOOR, numbers_of  # noqa: E402
from eval_firewall.config import DEFAULT_MODEL  # noqa: E402
from eval_firewall.embeddings import load_embedder, static_embedder  # noqa: E402
from eval_firewall.search.vectors import VectorIndex  # noqa: E402

PAIRS = ROOT / "tests" / "data" / "paraphrase_pairs.jsonl"
GSM8K = ROOT / "tests" / "data" / "gsm8k"
THRESHOLDS = [0.70, 0.75, 0.80, 0.82, 0.84, 0.85, 0.86, 0.88, 0.90, 0.92, 0.94]


def load_pairs(path: Path = PAIRS) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def pair_scores(pairs: list[dict], embedder) -> np.ndarray:
    a = embedder.encode([p["a"] for p in pairs])
    b = embedder.encode([p["b"] for p in pairs])
    return (a * b).sum(axis=1)


def rates(pairs: list[dict], scores: np.ndarray, threshold: float, same_numbers: bool
          ) -> tuple[float, float]:
    """(recall on paraphrases, false-positive rate on non-paraphrases) at ``threshold``."""
    flagged = scores >= threshold
    if same_numbers:
        flagged &= np.array([numbers_of(p["a"]) == numbers_of(p["b"]) for p in pairs])
    labels = np.array([p["label"] for p in pairs]) == 1
    return float(flagged[labels].mean()), float(flagged[~labels].mean())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--skip-retrieval", action="store_true")
    args = parser.parse_args(argv)

    pairs = load_pairs()
    embedder = load_embedder(args.model)
    scores = pair_scores(pairs, embedder)
    labels = np.array([p["label"] for p in pairs])
    kinds = sorted({p["kind"] for p in pairs if p["label"] == 0})
    print(f"{len(pairs)} pairs: {int(labels.sum())} paraphrases, "
          f"{int((labels == 0).sum())} hard non-paraphrases; model {args.model}\n")
    print("| threshold | recall | FPR (cosine only) | recall (same numbers) | FPR (same numbers) | "
          + " | ".join(f"FPR {k}" for k in kinds) + " |")
    print("|---" * (5 + len(kinds)) + "|")
    for t in THRESHOLDS:
        r0, f0 = rates(pairs, scores, t, False)
        r1, f1 = rates(pairs, scores, t, True)
        per_kind = []
        for kind in kinds:
            sub = [i for i, p in enumerate(pairs) if p["kind"] == kind or p["label"] == 1]
            per_kind.append(rates([pairs[i] for i in sub], scores[sub], t, True)[1])
        print(f"| {t:.2f} | {r0:.0%} | {f0:.0%} | {r1:.0%} | {f1:.0%} | "
              + " | ".join(f"{v:.0%}" for v in per_kind) + " |")
    pos = scores[labels == 1]
    print(f"\nfull-model cosine of paraphrases: min {pos.min():.3f}, median "
          f"{np.median(pos):.3f}; of non-paraphrases: max {scores[labels == 0].max():.3f}")

    started = time.perf_counter()
    static = static_embedder(embedder, args.cache_dir)
    print(f"\nstatic model ready in {time.perf_counter() - started:.1f}s")
    static_scores = pair_scores(pairs, static)
    spos = static_scores[labels == 1]
    print(f"static cosine of paraphrases: min {spos.min():.3f}, 5th percentile "
          f"{np.percentile(spos, 5):.3f}, median {np.median(spos):.3f}; retrieval floor "
          f"{STATIC_FLOOR}: {np.mean(spos >= STATIC_FLOOR):.0%} of paraphrases above it")
    if args.skip_retrieval:
        return
    corpus = [json.loads(line)["question"] for split in ("train", "test")
              for line in (GSM8K / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]
    index = VectorIndex(static.encode(corpus))
    positives = [p for p in pairs if p["label"] == 1]
    where = {text: i for i, text in enumerate(corpus)}
    indices, _ = index.search(static.encode([p["b"] for p in positives]), 50)
    ranks = []
    for p, row in zip(positives, indices):
        hits = np.flatnonzero(row == where[p["a"]])
        ranks.append(int(hits[0]) + 1 if len(hits) else 10**9)
    ranks = np.array(ranks)
    print(f"\nstatic retrieval among {len(corpus):,} GSM8K questions: partner at rank 1 for "
          f"{np.mean(ranks <= 1):.0%}, top 5 {np.mean(ranks <= 5):.0%}, top 20 "
          f"{np.mean(ranks <= 20):.0%}, top 50 {np.mean(ranks <= 50):.0%}")


if __name__ == "__main__":
    main()
