"""Same-generator check: can the eval set be told apart from the train set at all?

An eval set drawn from the same process as the training set can leak nothing row by row and
still only measure how well a model imitates that process. This audit runs a classifier
two-sample test: a logistic regression on sentence embeddings learns to tell eval rows from
train rows (equal-size samples), and its cross-validated ROC AUC is the statistic. AUC near
0.5 means the two sets are indistinguishable (same generator); near 1.0, clearly different.
A nearest-neighbour figure is reported beside it: the mean cosine of eval rows to their
nearest train row, against the same figure for held-out train rows (the baseline).

Rule ``same-generator`` (warning by default) fires when the AUC is at most ``max_auc``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..config import DistributionConfig
from ..findings import AuditResult, Finding, Severity, Stat
from ..inputs import Inputs
from ..rows import Row
from ..rules import Noun, Rule
from ..search.vectors import VectorIndex

if TYPE_CHECKING:
    from ..embeddings import Embedder

AUDIT = "distribution"
TITLE = "Same-generator check"
SAMPLE = 2000   # rows per side: the AUC's standard error is about 0.01 at this size
FOLDS = 5

RULES = (
    Rule("same-generator", AUDIT, Severity.WARNING, "The eval set cannot be told apart from the "
         "train set: it looks like another sample of the same generator.",
         severity_key="audits.distribution.severity",
         noun=Noun("eval set indistinguishable from train",
                   "eval sets indistinguishable from train"), new_when="auc"),
)


def classifier_auc(eval_vectors: np.ndarray, train_vectors: np.ndarray, seed: int = 0) -> float:
    """Cross-validated ROC AUC of a logistic regression telling eval (1) from train (0)."""
    from sklearn.linear_model import LogisticRegression  # here: sklearn is slow to import
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = np.vstack([eval_vectors, train_vectors])
    y = np.r_[np.ones(len(eval_vectors)), np.zeros(len(train_vectors))]
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    model = LogisticRegression(C=1.0, max_iter=2000)
    proba = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, proba))


def nearest_similarity(queries: np.ndarray, corpus: np.ndarray) -> float:
    """Mean cosine of each query to its nearest corpus row."""
    _, scores = VectorIndex(corpus).search(queries, 1)
    return float(scores[:, 0].mean())


def audit(inputs: Inputs, cfg: DistributionConfig) -> AuditResult:
    """The check on every eval row against every train row, with the run's embedder."""
    if inputs.embedder is None:
        raise ValueError("the same-generator check needs the 'embedder' input")
    return check(inputs.rows("eval"), inputs.rows("train"), cfg, embedder=inputs.embedder)


def check(evals: Sequence[Row], train: Sequence[Row], cfg: DistributionConfig, *,
          embedder: Embedder | Callable[[int], Embedder], seed: int = 0) -> AuditResult:
    """The check on up to :data:`SAMPLE` rows a side. ``embedder`` may be a function of the
    number of rows to encode returning the embedder, called only when the check runs (so a
    skipped check loads no model)."""
    n = min(len(evals), len(train) // 2 if len(train) >= 2 * cfg.min_rows else len(train),
            SAMPLE)
    if n < cfg.min_rows:
        return AuditResult(AUDIT, TITLE, skipped=(
            f"needs at least {cfg.min_rows} eval rows and {2 * cfg.min_rows} "
            f"train rows (has {len(evals)} and {len(train)})"))
    rng = np.random.default_rng(seed)
    eval_pick = np.sort(rng.choice(len(evals), n, replace=False))
    train_pick = rng.choice(len(train), min(len(train), 2 * n), replace=False)
    train_a, train_b = np.sort(train_pick[:n]), np.sort(train_pick[n:])
    if callable(embedder):
        embedder = embedder(n + len(train_pick))
    eval_vec = embedder.encode([evals[i].text for i in eval_pick])
    train_vec = embedder.encode([train[i].text for i in train_a])
    auc = classifier_auc(eval_vec, train_vec, seed)

    stats = [Stat("rows compared (each side)", n),
             Stat("classifier AUC (eval vs train; 0.5 = indistinguishable)", round(auc, 3))]
    if len(train_b):
        held_out = embedder.encode([train[i].text for i in train_b])
        stats.append(Stat("eval to nearest train row, mean cosine",
                          round(nearest_similarity(eval_vec, held_out), 3)))
        stats.append(Stat("held-out train to nearest train row, mean cosine (baseline)",
                          round(nearest_similarity(train_vec, held_out), 3)))
    findings = []
    if auc <= cfg.max_auc:
        verdict = (f"The eval set is indistinguishable from the train set (classifier "
                   f"AUC {auc:.2f}, at most {cfg.max_auc:.2f}): it looks like another "
                   f"sample of the same generator, so scores on it measure how well a "
                   f"model imitates that generator rather than how it generalizes.")
        if cfg.severity != "off":
            findings.append(Finding(
                AUDIT, "same-generator", Severity(cfg.severity),
                f"eval set indistinguishable from train set (classifier AUC {auc:.2f} <= "
                f"{cfg.max_auc:.2f})", dataset=evals[0].dataset, score=round(auc, 4)))
    else:
        verdict = (f"The eval set is distinguishable from the train set (classifier "
                   f"AUC {auc:.2f} > {cfg.max_auc:.2f}): not just another sample of "
                   f"the train generator.")
    return AuditResult(AUDIT, TITLE, findings, stats, verdict, sample_size=n)
