"""Overlap: eval rows that are copies of train rows, exact or near.

Rules:
- ``exact-duplicate``: the normalized text of an eval row equals a train row's.
- ``near-duplicate``: an eval row lexically close to a train row (edits, reordered or
  substituted words, changed numbers): candidates from :class:`LexicalIndex`, scored with
  rapidfuzz.
- ``eval-duplicate``: two rows of the eval set that are the same question (exact or near).

Each eval row gets at most one overlap finding against train, the strongest kind.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rapidfuzz import fuzz

from ..config import OverlapConfig
from ..findings import AuditResult, Finding, Match, Severity, Stat
from ..normalize import normalize
from ..progress import Progress
from ..rows import Row
from ..search.lexical import LexicalIndex

AUDIT = "overlap"


def lexical_similarity(a: str, b: str) -> float:
    """Similarity of two normalized texts in 0..1: edits, or the same words reordered."""
    return max(fuzz.ratio(a, b), fuzz.token_sort_ratio(a, b)) / 100.0


def _percent(score: float) -> str:
    """A similarity as a whole percentage, rounded down: only identical texts show 100%."""
    return f"{math.floor(score * 100 + 1e-9)}%"


def exact_matches(eval_norm: Sequence[str], train_norm: Sequence[str]) -> dict[int, int]:
    """eval index -> index of the first train row with the same normalized text."""
    first: dict[str, int] = {}
    for j, text in enumerate(train_norm):
        first.setdefault(text, j)
    return {i: first[t] for i, t in enumerate(eval_norm) if t in first}


def near_matches(eval_norm: Sequence[str], train_norm: Sequence[str], threshold: float,
                 k: int, skip: set[int] | None = None) -> dict[int, tuple[int, float]]:
    """eval index -> (best train index, score) for scores at or above ``threshold``."""
    skip = skip or set()
    todo = [i for i in range(len(eval_norm)) if i not in skip]
    index = LexicalIndex(train_norm)
    found: dict[int, tuple[int, float]] = {}
    for i, cands in zip(todo, index.candidates([eval_norm[i] for i in todo], k)):
        best, best_score = -1, 0.0
        for j in cands:
            score = lexical_similarity(eval_norm[i], train_norm[j])
            if score > best_score:
                best, best_score = int(j), score
        if best >= 0 and best_score >= threshold:
            found[i] = (best, best_score)
    return found


def self_matches(norm: Sequence[str], threshold: float | None, k: int
                 ) -> dict[int, tuple[int, float]]:
    """Row index -> (earlier row index, score) for rows repeating an earlier row of the same set.

    With ``threshold`` None only rows with the same normalized text count.
    """
    first: dict[str, int] = {}
    found: dict[int, tuple[int, float]] = {}
    for i, text in enumerate(norm):
        j = first.setdefault(text, i)
        if j != i:
            found[i] = (j, 1.0)
    if threshold is None:
        return found
    index = LexicalIndex(norm)
    for i, cands in enumerate(index.candidates(norm, k + 1)):
        if i in found:
            continue
        best, best_score = -1, 0.0
        for j in cands:
            if j >= i:
                continue
            score = lexical_similarity(norm[i], norm[j])
            if score > best_score:
                best, best_score = int(j), score
        if best >= 0 and best_score >= threshold:
            found[i] = (best, best_score)
    return found


def audit(evals: Sequence[Row], train: Sequence[Row], cfg: OverlapConfig, *,
          progress: Progress | None = None) -> AuditResult:
    progress = progress or Progress(enabled=False)
    findings: list[Finding] = []
    with progress.stage("normalize") as stage:
        eval_norm = [normalize(r.text) for r in evals]
        train_norm = [normalize(r.text) for r in train]
        stage.advance(len(eval_norm) + len(train_norm))

    flagged: dict[int, Finding] = {}
    if cfg.exact.enabled:
        for i, j in exact_matches(eval_norm, train_norm).items():
            flagged[i] = Finding.for_row(
                AUDIT, "exact-duplicate", Severity.ERROR,
                f"same text as train row {train[j].location}", evals[i], score=1.0,
                match=Match.of(train[j]))
    near_dup = cfg.near_duplicate
    if near_dup.enabled and train:
        with progress.stage("near-duplicate search", total=len(evals)) as stage:
            near = near_matches(eval_norm, train_norm, near_dup.threshold, near_dup.candidates,
                                skip=set(flagged))
            stage.advance(len(evals))
        for i, (j, score) in near.items():
            flagged[i] = Finding.for_row(
                AUDIT, "near-duplicate", Severity.ERROR,
                f"{_percent(score)} similar to train row {train[j].location}", evals[i],
                score=round(score, 4), match=Match.of(train[j]))
    findings.extend(flagged[i] for i in sorted(flagged))

    within = 0
    near_within = near_dup.enabled and near_dup.within_eval
    if (near_within or cfg.exact.enabled) and len(evals) > 1:
        threshold = near_dup.threshold if near_within else None
        for i, (j, score) in sorted(self_matches(eval_norm, threshold,
                                                 near_dup.candidates).items()):
            within += 1
            kind = ("same text as" if eval_norm[i] == eval_norm[j]
                    else f"{_percent(score)} similar to")
            findings.append(Finding.for_row(
                AUDIT, "eval-duplicate", Severity.WARNING,
                f"{kind} eval row {evals[j].location}", evals[i], score=round(score, 4),
                match=Match.of(evals[j])))

    rules = [f.rule for f in findings]
    stats = [Stat("eval rows checked", len(evals)), Stat("train rows indexed", len(train)),
             Stat("exact duplicates of train rows", rules.count("exact-duplicate")),
             Stat("near-duplicates of train rows", rules.count("near-duplicate")),
             Stat("duplicates inside the eval set", within)]
    return AuditResult(AUDIT, "Overlap", findings, stats)
