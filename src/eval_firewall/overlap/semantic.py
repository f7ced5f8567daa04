"""The paraphrase rule and its verdict: which scored candidate pairs count as paraphrases.

The search itself (retrieval, template collapsing, features) is
:class:`eval_firewall.search.paraphrase.ParaphraseSearch`; the scoring model is
:mod:`.paraphrase_score`. What stays here is pure: the rule, the choice between exact and
static search, the cache key of the scoring, and :func:`decide`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..config import SemanticConfig
from ..findings import Evidence
from . import score as paraphrase_score

# auto: at most this many rows to encode go through the full model alone; above, static
# retrieval. The default model's static model ships in the package; another model's is
# distilled once per user (minutes of CPU, see the docs' Benchmarks page), which this bound
# keeps small audits from paying. Results differ only in which pairs get rescored.
EXACT_MAX_ROWS = 1000

def use_exact(cfg: SemanticConfig, rows_to_encode: int) -> bool:
    """Whether to skip static retrieval and search with the full model alone."""
    if cfg.retriever == "auto":
        return rows_to_encode <= EXACT_MAX_ROWS
    return cfg.retriever == "exact"


def scoring_key(cfg: SemanticConfig) -> str:
    """What the paraphrase verdicts depend on beyond the config: the shipped model's
    fingerprint (a cache of earlier results must not outlive a recalibration)."""
    return f"paraphrase-score-v1:{paraphrase_score.default_model().fingerprint}" \
        if cfg.scoring == "model" else "paraphrase-cosine-v1"


@dataclass(frozen=True, slots=True)
class Scored:
    """One candidate pair after scoring: eval row, train row, full-model cosine, features."""

    eval: int
    train: int
    cosine: float
    features: np.ndarray


def probabilities(scored: Sequence[Scored], cfg: SemanticConfig) -> tuple[np.ndarray, float]:
    """Each pair's score under ``cfg`` and the bar it must reach: the calibrated probability
    and ``min_probability`` (``scoring: model``), or the cosine (-inf when vetoed by its
    numbers) and ``threshold`` (``scoring: cosine``)."""
    if not scored:
        return np.zeros(0), 0.0
    if cfg.scoring == "model":
        return (paraphrase_score.default_model().probability(np.stack([s.features
                                                                        for s in scored])),
                cfg.min_probability)
    return np.array([s.features[0] for s in scored]), cfg.threshold


def decide_pairs(scored: Sequence[Scored], cfg: SemanticConfig
                 ) -> dict[int, tuple[Scored, float]]:
    """Each eval row's best pair that counts as a paraphrase under ``cfg``, with its score
    (see :func:`probabilities`)."""
    prob, bar = probabilities(scored, cfg)
    best: dict[int, tuple[tuple[float, float, int], Scored]] = {}
    for s, p in zip(scored, prob):
        if s.cosine < cfg.threshold or p < bar:
            continue
        key = (float(p), s.cosine, -s.train)
        if s.eval not in best or key > best[s.eval][0]:
            best[s.eval] = (key, s)
    return {i: (s, k[0]) for i, (k, s) in best.items()}


def evidence_of(pair: Scored, probability: float, cfg: SemanticConfig,
                not_flagged: str | None = None) -> Evidence:
    """The evidence of one scored pair, as findings and ``explain`` report it."""
    model = cfg.scoring == "model"
    return Evidence("paraphrase", round(pair.cosine, 4), threshold=cfg.threshold,
                    probability=round(float(probability), 4) if model else None,
                    min_probability=cfg.min_probability if model else None,
                    features=paraphrase_score.feature_map(pair.features) if model else None,
                    not_flagged=not_flagged)


def decide(scored: Sequence[Scored], cfg: SemanticConfig) -> dict[int, tuple[int, float]]:
    """Each eval row's best pair that counts as a paraphrase under ``cfg``: (train row,
    cosine)."""
    return {i: (s.train, s.cosine) for i, (s, _) in decide_pairs(scored, cfg).items()}
