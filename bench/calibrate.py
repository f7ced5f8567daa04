"""Calibrate the paraphrase scoring model and print its per-threshold table.

    python bench/calibrate.py [--model all-MiniLM-L6-v2] [--write] [--retrieval-rows N]

The pipeline's own code (retrieval, template collapsing, features: ``TrainSearch.score``)
runs on one planted setup built from vendored data only (tests/data):
- train: GSM8K train (7,473), templated distractors (other numbers and names, bench/data.py's
  ``vary``: 1,000 of GSM8K train and 3 of each hand-written original), the 60 originals of the
  hand-written pairs (tests/data/paraphrase_pairs.jsonl) and the GPT-4 rephrasings of half the
  rephrased-MMLU questions (tests/data/rephrased-mmlu; every other question is planted);
- eval: the 120 hand-written ``b`` texts (60 paraphrases, 60 hard negatives), all 293 MMLU
  originals (planted: a leak; the rest: clean) and the first 400 GSM8K test questions (clean; the
  rows the near-duplicate check flags are left out, as in an audit).

A logistic regression over the features is fitted (on pairs with a cosine of at least 0.6:
below, no floor lets a pair through) on the *fit* part (the hand-written pairs,
MMLU questions 0 and 1 mod 4, even GSM8K test rows) and reported on the *held-out* part
(MMLU 2 and 3 mod 4, odd GSM8K test rows), plus 5-fold cross-validation over eval rows.
``--write`` stores the coefficients in src/eval_firewall/data/paraphrase_model.json.
Full-model embeddings are cached under bench/out/ (git-ignored) between runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import data as bench_data  # noqa: E402

from eval_firewall.audits import paraphrase_score, semantic  # noqa: E402
from eval_firewall.audits.overlap import TrainSide, exact_matches, near_matches  # noqa: E402
from eval_firewall.audits.paraphrase_score import FEATURES  # noqa: E402
from eval_firewall.config import DEFAULT_MODEL, SemanticConfig  # noqa: E402
from eval_firewall.embeddings import load_embedder, static_embedder  # noqa: E402
from eval_firewall.normalize import normalize  # noqa: E402
from eval_firewall.search import paraphrase as search  # noqa: E402

DATA = ROOT / "tests" / "data"
OUT = ROOT / "bench" / "out"
MODEL_JSON = ROOT / "src" / "eval_firewall" / "data" / "paraphrase_model.json"
PROBABILITIES = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
FLOORS = [0.6, 0.65, 0.7, 0.75, 0.8, 0.86]
FIT_FLOOR = 0.6   # pairs below every floor never decide anything: the fit ignores them


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


class CachedEmbedder:
    """The full model, with every vector kept on disk under bench/out/ (encode each text once)."""

    def __init__(self, inner, path: Path) -> None:
        self.inner, self.path = inner, path
        self.key = getattr(inner, "key", "model")
        self.vectors: dict[str, np.ndarray] = {}
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                self.vectors = dict(zip(z["keys"].tolist(), z["vectors"]))

    @property
    def dim(self) -> int:
        return self.inner.dim

    @staticmethod
    def _h(text: str) -> str:
        return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()

    def encode(self, texts):
        keys = [self._h(t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in self.vectors}.items())
        if missing:
            vecs = self.inner.encode([t for _, t in missing])
            self.vectors.update((k, v) for (k, _), v in zip(missing, vecs))
        return np.stack([self.vectors[k] for k in keys]) if keys else np.zeros((0, self.dim))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.vectors)
        np.savez(self.path, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))


def setup(gsm8k_rows: int = 400) -> tuple[list[str], list[str], list[dict]]:
    """(train texts, eval texts, per eval row: group, part, partner train index or None)."""
    rng = random.Random(0)
    gsm_train = [r["question"] for r in jsonl(DATA / "gsm8k" / "train.jsonl")]
    gsm_test = [r["question"] for r in jsonl(DATA / "gsm8k" / "test.jsonl")]
    hand = jsonl(DATA / "paraphrase_pairs.jsonl")
    mmlu = jsonl(DATA / "rephrased-mmlu" / "pairs.jsonl")
    train = list(gsm_train)
    train += [bench_data.vary(q, rng) for q in rng.sample(gsm_train, 1000)]
    originals = sorted({p["a"] for p in hand})
    for a in originals:
        train += [bench_data.vary(a, rng) for _ in range(3)]
    where = {}
    for a in originals:
        where[a] = len(train)
        train.append(a)
    evals, meta = [], []
    for p in hand:
        evals.append(p["b"])
        meta.append({"group": "hand", "part": "fit", "kind": p["kind"],
                     "partner": where[p["a"]] if p["label"] == 1 else None})
    for k, p in enumerate(mmlu):
        part = "fit" if k % 4 in (0, 1) else "held-out"
        partner = None
        if k % 2 == 0:
            partner = len(train)
            train.append(p["rephrased"])
        evals.append(p["original"])
        meta.append({"group": "mmlu", "part": part, "kind": "planted" if partner is not None
                     else "clean", "partner": partner})
    for k, q in enumerate(gsm_test[:gsm8k_rows]):
        evals.append(q)
        meta.append({"group": "gsm8k", "part": "fit" if k % 2 == 0 else "held-out",
                     "kind": "clean", "partner": None})
    return train, evals, meta


def fit(x: np.ndarray, y: np.ndarray) -> dict:
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-6] = 1.0          # a constant feature (numbers_differ after the prune)
    lr = LogisticRegression(C=10.0, class_weight="balanced", max_iter=1000)
    lr.fit((x - mean) / scale, y)
    return {"features": list(FEATURES), "coef": [round(float(c), 6) for c in lr.coef_[0]],
            "intercept": round(float(lr.intercept_[0]), 6),
            "mean": [round(float(v), 6) for v in mean],
            "scale": [round(float(v), 6) for v in scale],
            "neutral": [round(float(v), 6) for v in x[y == 1].mean(axis=0)]}


def flagged_rows(scored, prob: np.ndarray, bar: float, floor: float) -> dict[int, int]:
    """eval row -> train row of its best pair at or above ``bar`` (and the cosine ``floor``)."""
    best: dict[int, tuple[float, float, int]] = {}
    for s, p in zip(scored, prob):
        if s.cosine >= floor and p >= bar:
            key = (float(p), s.cosine, -s.train)
            if s.eval not in best or key > best[s.eval]:
                best[s.eval] = key
    return {i: -k[2] for i, k in best.items()}


def measures(flags: dict[int, int], meta: list[dict], rows: set[int]) -> dict[str, str]:
    def rate(select, hit) -> str:
        chosen = [i for i in rows if select(meta[i])]
        if not chosen:
            return "-"
        return f"{sum(hit(i) for i in chosen) / len(chosen):.1%}"

    found = lambda i: flags.get(i) == meta[i]["partner"]   # noqa: E731
    any_flag = lambda i: i in flags                          # noqa: E731
    return {
        "MMLU recall": rate(lambda m: m["group"] == "mmlu" and m["partner"] is not None, found),
        "hand recall": rate(lambda m: m["group"] == "hand" and m["partner"] is not None, found),
        "hard-negative FPR": rate(lambda m: m["group"] == "hand" and m["partner"] is None,
                                  any_flag),
        "other-numbers FPR": rate(lambda m: m.get("kind") == "numbers", any_flag),
        "MMLU clean FPR": rate(lambda m: m["group"] == "mmlu" and m["partner"] is None,
                               any_flag),
        "GSM8K clean FPR": rate(lambda m: m["group"] == "gsm8k", any_flag),
    }


def table(title: str, rows_of: list[tuple[str, dict[str, str]]]) -> None:
    cols = list(rows_of[0][1])
    print(f"\n{title}\n")
    print("| setting | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name, m in rows_of:
        print(f"| {name} | " + " | ".join(m[c] for c in cols) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--write", action="store_true", help="store the fitted coefficients")
    parser.add_argument("--probability", type=float, default=SemanticConfig().min_probability,
                        help="the probability at which the cosine floors are compared")
    parser.add_argument("--gsm8k-rows", type=int, default=400,
                        help="clean GSM8K test questions among the eval rows (1,319 at most)")
    parser.add_argument("--retrieval-rows", type=int, default=0,
                        help="also measure retrieval against this many templated train rows")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    full = load_embedder(args.model)
    embedder = CachedEmbedder(full, OUT / f"calibrate-vectors-{full.key[:16]}.npz")
    static = static_embedder(full, OUT / "cache")
    train, evals, meta = setup(args.gsm8k_rows)
    print(f"setup: {len(train):,} train rows, {len(evals):,} eval rows; model {args.model}")

    side = TrainSide([normalize(t) for t in train], train)
    eval_norm = [normalize(t) for t in evals]
    skip = set(exact_matches(eval_norm, side))
    lexical: dict[int, list[int]] = {}
    near = near_matches(eval_norm, side, 0.8, 10, skip=skip, candidates=lexical)
    skip |= {i for i in near if meta[i]["group"] == "gsm8k"}   # real GSM8K near-duplicates
    cfg = SemanticConfig(retriever="static", threshold=0.0)
    scored = search.ParaphraseSearch(cfg, embedder=embedder, retriever=static).for_train(
        train).score(evals, skip, lexical)
    embedder.save()
    rows = [i for i in range(len(evals)) if i not in skip]
    partners = {i: m["partner"] for i, m in enumerate(meta) if m["partner"] is not None}
    in_candidates = {(s.eval, s.train) for s in scored}
    reach = [(i, j) in in_candidates for i, j in partners.items() if i not in skip]
    print(f"retrieval: partner among the collapsed candidates for {np.mean(reach):.1%} of "
          f"{len(reach)} planted rows ({len(scored):,} pairs scored, "
          f"{time.perf_counter() - started:.0f}s)")

    x = np.stack([s.features for s in scored])
    y = np.array([partners.get(s.eval) == s.train for s in scored], dtype=int)
    part = np.array([meta[s.eval]["part"] for s in scored])
    # fit where the decision is made: pairs above the lowest cosine floor of the table
    near = x[:, 0] >= FIT_FLOOR
    fitted = fit(x[(part == "fit") & near], y[(part == "fit") & near])
    model = paraphrase_score.Model.from_json(fitted)
    prob = model.probability(x)
    print("\ncoefficients (standardized features): " + ", ".join(
        f"{f} {c:+.2f}" for f, c in zip(FEATURES, fitted["coef"])) +
        f"; intercept {fitted['intercept']:+.2f}")

    held = {i for i in rows if meta[i]["part"] == "held-out" or meta[i]["group"] == "hand"}
    floor = SemanticConfig().threshold
    cosines = np.array([s.cosine for s in scored])
    veto = np.array([semantic.numbers_of(evals[s.eval]) == semantic.numbers_of(train[s.train])
                     for s in scored])
    results = [("cosine 0.86 + same numbers (old default)",
                measures(flagged_rows(scored, np.where(veto, cosines, 0), 0.86, 0), meta, held)),
               ("cosine 0.86 alone", measures(flagged_rows(scored, cosines, 0.86, 0), meta,
                                               held))]
    for bar in PROBABILITIES:
        results.append((f"model, p >= {bar:.1f}",
                        measures(flagged_rows(scored, prob, bar, floor), meta, held)))
    for other in FLOORS:
        results.append((f"model, p >= {args.probability:.1f}, cosine floor {other:.2f}",
                        measures(flagged_rows(scored, prob, args.probability, other), meta,
                                 held)))
    table(f"Held-out rows (MMLU 2-3 mod 4, odd GSM8K test; hand-written pairs are in the fit "
          f"set), cosine floor {floor}:", results)

    # 5-fold cross-validation over eval rows (every part), at each probability
    rng = np.random.default_rng(0)
    fold_of = rng.integers(0, 5, len(evals))
    cv_prob = np.zeros(len(scored))
    folds = np.array([fold_of[s.eval] for s in scored])
    for f in range(5):
        train_part = (folds != f) & (x[:, 0] >= FIT_FLOOR)
        m = paraphrase_score.Model.from_json(fit(x[train_part], y[train_part]))
        cv_prob[folds == f] = m.probability(x[folds == f])
    table("5-fold cross-validation over all eval rows:",
          [(f"model, p >= {bar:.1f}", measures(flagged_rows(scored, cv_prob, bar, floor), meta,
                                                set(rows)))
           for bar in PROBABILITIES])

    if args.write:
        MODEL_JSON.write_text(json.dumps(fitted, indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {MODEL_JSON.relative_to(ROOT)}")
    if args.retrieval_rows:
        retrieval_at_scale(args.retrieval_rows, static, embedder)


def retrieval_at_scale(n_train: int, static, embedder) -> None:
    """How often the partner of each hand-written paraphrase survives retrieval and template
    collapsing among ``n_train`` templated rows (bench/data.py's train set)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        bench_data.generate(200, n_train, Path(tmp))
        train = [json.loads(line)["question"] for line in
                 (Path(tmp) / "data/train/train.jsonl").read_text().splitlines()]
    hand = [p for p in jsonl(DATA / "paraphrase_pairs.jsonl") if p["label"] == 1]
    where = {t: j for j, t in enumerate(train)}
    hand = [p for p in hand if p["a"] in where]
    evals = [p["b"] for p in hand]
    started = time.perf_counter()
    index = search.build_train_index(train, static)
    vectors = static.encode(evals)
    cfg = SemanticConfig()
    side = TrainSide([normalize(t) for t in train], train)
    lexical: dict[int, list[int]] = {}
    near_matches([normalize(t) for t in evals], side, 0.8, 10, candidates=lexical)
    found = {}
    top = cfg.candidates
    for name, lex, factor in ((f"static top {top}", {}, 1),
                              (f"static top {top * search.RETRIEVE}, collapsed", {},
                               search.RETRIEVE),
                              ("+ lexical, collapsed (default)", lexical, search.RETRIEVE)):
        cands = search._candidates(evals, train, list(range(len(evals))), vectors, index,
                                   search.STATIC_FLOOR, lex, cfg, retrieve=factor)
        found[name] = np.mean([where[p["a"]] in {j for j, _ in cands.get(k, [])}
                               for k, p in enumerate(hand)])
    print(f"\nretrieval among {n_train:,} templated train rows ({len(hand)} planted partners, "
          f"{time.perf_counter() - started:.0f}s): " +
          "; ".join(f"{k}: {v:.1%}" for k, v in found.items()))


if __name__ == "__main__":
    main()
