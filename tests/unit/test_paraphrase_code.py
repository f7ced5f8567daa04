"""Code pairs: recognized by how the rows look, scored by their own regression, and never vetoed
by numbers (doctests and constants a rephrasing keeps or changes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from eval_firewall.findings import Evidence
from eval_firewall.overlap import score as paraphrase_score
from eval_firewall.overlap.cached import _evidence
from eval_firewall.overlap.score import COLUMNS, FEATURES
from eval_firewall.search.paraphrase import _numbers_differ

DATA = Path(__file__).parents[1] / "data"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


HUMANEVAL = _jsonl(DATA / "rephrased-humaneval" / "humaneval.jsonl")
REPHRASED = [r["text"] for r in _jsonl(DATA / "rephrased-humaneval" / "rephrased_python.jsonl")]
GSM8K = [r["question"] for r in _jsonl(DATA / "gsm8k" / "test.jsonl")]
MMLU = _jsonl(DATA / "rephrased-mmlu" / "pairs.jsonl")


def test_code_is_told_from_prose():
    code = [p["prompt"] + p["canonical_solution"] for p in HUMANEVAL]
    assert sum(map(paraphrase_score.looks_like_code, code)) >= 0.95 * len(code)
    prose = GSM8K + [p["original"] for p in MMLU] + [p["rephrased"] for p in MMLU]
    assert not any(map(paraphrase_score.looks_like_code, prose))


def test_numbers_changed_in_doctests_veto_nothing():
    original = HUMANEVAL[0]["prompt"] + HUMANEVAL[0]["canonical_solution"]
    rephrased = REPHRASED[0]            # its doctests use other numbers (1.5, 2.5, 3.5, 0.7)
    assert paraphrase_score.compare(original, rephrased).value < 0   # prose: a conflict
    assert _numbers_differ([original], [rephrased], {0: [(0, 0.8)]}) == {0: [(0, 0.8)]}
    features, _ = paraphrase_score.pair_features(original, rephrased, 0.8, 0.6)
    named = dict(zip(COLUMNS, features))
    assert named["code"] == 1.0 and named["numbers_agree"] == named["numbers_differ"] == 0.0
    # the same rephrasing with the original's doctest numbers kept scores exactly the same
    kept = rephrased.replace("1.5, 2.5, 3.5], 0.7", "1.0, 2.0, 3.0], 0.5")
    assert kept != rephrased
    again, _ = paraphrase_score.pair_features(original, kept, 0.8, 0.6)
    model = paraphrase_score.default_model()
    assert model.code is not None
    assert model.probability(again)[0] == model.probability(features)[0]


def test_the_code_regression_scores_code_rows_only():
    model = paraphrase_score.default_model()
    x = np.array([0.8, 0.2, 0.5, 0.0, 0.5, 0.8, 0.0])
    prose, code = model.probability(np.append(x, 0.0)), model.probability(np.append(x, 1.0))
    assert prose == model.probability(x)             # no domain column: prose
    assert code != prose
    assert len(FEATURES) + 1 == len(COLUMNS)


def test_a_cached_evidence_is_checked_before_use():
    good = {"stage": "paraphrase", "similarity": 0.9, "threshold": 0.65, "probability": 0.8,
            "min_probability": 0.4, "features": {"cosine": 0.9, "code": 0.0},
            "not_flagged": None}
    assert _evidence(["paraphrase", 3, 0.9, good]) == Evidence(**good)
    assert _evidence(["paraphrase", 3, 0.9]) is None               # an older cache entry
    for bad in ({**good, "features": {"<b>": 1.0}}, {**good, "probability": "0.9"},
                {**good, "stage": "telepathy"}, {**good, "extra": 1},
                {**good, "similarity": float("nan")}, {**good, "probability": True}):
        assert _evidence(["paraphrase", 3, 0.9, bad]) is None
