"""Why one eval row was or was not flagged by the overlap audit, against its nearest train rows.

Each stage of the overlap audit runs for that one row with the configured settings, and every
near train row gets the :class:`~eval_firewall.findings.Evidence` a finding would carry (the
same numbers: similarity, threshold, probability, features), plus why it was not flagged. The
verdict is the audit's: the strongest stage that flags the row (exact, then near-duplicate,
then paraphrase).

One difference from a full audit: the paraphrase stage picks exact or static search by the
size of the whole job (all eval rows and train rows), as the audit does when no eval row is
already flagged; the retrieval floor of static search may keep a far train row out of the list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..audits.overlap import STAGE
from ..config import Config, NearDuplicateConfig
from ..embeddings import Models
from ..engine import load_all
from ..errors import UserError
from ..findings import Evidence
from ..overlap import semantic
from ..overlap.corpus import Corpus
from ..overlap.finders import TrainSide, lexical_similarity
from ..progress import Progress
from ..rows import Row
from ..search.paraphrase import ParaphraseSearch

RULE_OF_STAGE = {stage: rule for rule, stage in STAGE.items()}


@dataclass(frozen=True, slots=True)
class Nearest:
    """One train row near the eval row at one stage, and what that stage made of it."""

    train: Row
    evidence: Evidence
    flagged: bool


@dataclass(frozen=True)
class Explanation:
    """Everything ``eval-firewall explain`` prints about one eval row."""

    row: Row
    rule: str | None                 # the overlap rule that flags it, or None
    match: Row | None                # the train row it is flagged against
    stages: dict[str, list[Nearest]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def find_row(rows: Sequence[Row], which: str) -> Row:
    """The eval row ``which`` names: its id, or ``path:line``; a one-line error otherwise."""
    found = [r for r in rows if r.row_id == which] or [r for r in rows if r.location == which]
    if not found:
        raise UserError(f"no eval row '{which}': give a row id, or path:line of an eval row "
                        "(path relative to the repository root)")
    if len(found) > 1:
        names = ", ".join(f"{r.dataset} {r.location}" for r in found[:3])
        raise UserError(f"'{which}' names {len(found)} eval rows ({names}): give path:line")
    return found[0]


def explain(config: Config, which: str, *, top: int = 3,
            progress: Progress | None = None, models: Models | None = None) -> Explanation:
    """Run each overlap stage for the eval row ``which`` against the train rows."""
    progress = progress or Progress(enabled=False)
    cfg = config.audits.overlap
    loaded = load_all(config, progress)
    eval_rows = [r for d in loaded.values() if d.role == "eval" for r in d.rows]
    row = find_row(eval_rows, which)
    train = Corpus.of_datasets([d for d in loaded.values() if d.role == "train"])
    notes: list[str] = []
    if not cfg.enabled:
        notes.append("the overlap audit is disabled (audits.overlap.enabled: false)")
    one = Corpus.of([row])
    side = TrainSide(train.norm, train.texts)
    stages: dict[str, list[Nearest]] = {}

    exact = side.exact.get(one.norm[0]) if one.norm[0] and cfg.exact.enabled else None
    stages["exact"] = [] if exact is None else [
        Nearest(train.rows[exact], Evidence("exact", 1.0), True)]
    if not cfg.exact.enabled:
        notes.append("exact: disabled")

    near_cfg = cfg.near_duplicate
    lexical: list[int] = []
    nearest: list[Nearest] = []
    if near_cfg.enabled and len(train):
        lexical, nearest = _near_duplicate(near_cfg, one, side, train, top)
    elif not near_cfg.enabled:
        notes.append("near-duplicate: disabled")
    stages["near-duplicate"] = nearest

    sem = cfg.semantic
    if sem.enabled and len(train):
        stages["paraphrase"] = _paraphrase(config, row, train, lexical, top, progress, models,
                                           len(eval_rows))
    elif not sem.enabled:
        notes.append("paraphrase: disabled (audits.overlap.semantic.enabled: false)")

    rule = match = None
    for stage in ("exact", "near-duplicate", "paraphrase"):
        hit = next((n for n in stages.get(stage, []) if n.flagged), None)
        if hit is not None and cfg.enabled:
            rule, match = RULE_OF_STAGE[stage], hit.train
            break
    if rule in ("exact-duplicate", "near-duplicate") and stages.get("paraphrase"):
        notes.append("the audit stops at the strongest stage: the paraphrase stage is shown "
                     "for information")
    return Explanation(row, rule, match, stages, notes)


def _near_duplicate(near_cfg: NearDuplicateConfig, one: Corpus, side: TrainSide, train: Corpus,
                    top: int) -> tuple[list[int], list[Nearest]]:
    """The near-duplicate stage for one row: its lexical candidates, and the ``top`` most
    similar of them scored (only the first can be flagged)."""
    lexical = [int(j) for j in side.lexical.candidates(one.norm, near_cfg.candidates)[0]]
    scored = sorted(((lexical_similarity(one.norm[0], side.norm[j]), j) for j in lexical),
                    key=lambda p: (-p[0], p[1]))
    nearest: list[Nearest] = []
    for rank, (score, j) in enumerate(scored[:top]):
        flagged = rank == 0 and score >= near_cfg.threshold
        why = None if flagged else (
            f"similarity {score:.4f} below threshold {near_cfg.threshold}"
            if score < near_cfg.threshold else "a more similar train row is flagged")
        nearest.append(Nearest(train.rows[j], Evidence(
            "near-duplicate", round(score, 4), threshold=near_cfg.threshold,
            not_flagged=why), flagged))
    return lexical, nearest


def _paraphrase(config: Config, row: Row, train: Corpus, lexical: list[int], top: int,
                progress: Progress, models: Models | None, eval_count: int) -> list[Nearest]:
    """The paraphrase stage for one row: its scored candidates, most probable first."""
    sem = config.audits.overlap.semantic
    if sem.retriever == "auto":   # as the audit chooses, by the size of the whole job
        exact = semantic.use_exact(sem, eval_count + len(train))
        sem = sem.model_copy(update={"retriever": "exact" if exact else "static"})
    models = models or Models(sem.model, sem.batch_size, config_path=config.source,
                              announce=progress.stage)
    search = ParaphraseSearch(sem, embedder=models.embedder(), retriever=models.retriever,
                              progress=progress).for_train(train.texts)
    scored = search.score([row.text], set(), {0: lexical})
    prob, bar = semantic.probabilities(scored, sem)
    best = semantic.decide_pairs(scored, sem).get(0)
    order = sorted(range(len(scored)), key=lambda k: (-float(prob[k]), -scored[k].cosine))
    out = []
    for k in order[:top]:
        s, p = scored[k], float(prob[k])
        flagged = best is not None and best[0].train == s.train
        why = None
        if not flagged:
            if s.cosine < sem.threshold:
                why = f"cosine {s.cosine:.4f} below the cosine floor threshold {sem.threshold}"
            elif p < bar:
                why = (f"probability {p:.4f} below min_probability {bar}"
                       if sem.scoring == "model" else
                       "numbers differ (same_numbers)" if p == float("-inf") else
                       f"cosine {p:.4f} below threshold {bar}")
            else:
                why = "a more probable train row is flagged"
        out.append(Nearest(train.rows[s.train], semantic.evidence_of(s, p, sem, why), flagged))
    return out
