"""Paraphrase scoring: a small calibrated model over a handful of pair features.

One cosine cannot tell a reworded question (synonyms pull its cosine down) from another
instance of the same template (other numbers, cosine up to 0.98). So each candidate pair
(eval row, train row) gets six features:

- ``cosine``: the full model's cosine of the two texts;
- ``margin``: that cosine minus the mean cosine of the eval row's next best train candidates
  (as in bitext mining): a unique partner stands out, a row in a dense template neighbourhood
  does not; missing neighbours count as :data:`FILL`;
- ``numbers_agree`` / ``numbers_differ``: number evidence from
  :func:`eval_firewall.numbers.compare`, split in two so each gets its own weight: the agreement
  (1 agree, 0.5 partly, 0 none; a number written in words counts as a match), and 1 when both
  sides state numbers the other lacks (another instance of a template: another problem);
- ``shared``: the share of content words (no stop words, no numbers) of the shorter text that
  the other text also uses: names, objects, rare words;
- ``length``: the ratio of the two texts' lengths in words (shorter / longer);
- ``question_shift``: how much more the two texts share in their setup than in the question
  they end with (shared words of the setups minus shared words of the questions, at least 0):
  "same facts, another question" shares the setup word for word and asks something else,
  a rewording changes both alike. 0 when either text asks no final question.

A logistic regression turns them into a probability. Its coefficients live in
``data/paraphrase_model.json`` (plain JSON, no pickle), fitted by ``bench/calibrate.py``.
For texts in different scripts (a translation) the number, shared-words and length features
take their ``neutral`` values (the mean over true paraphrases in calibration): they can
neither veto nor confirm a translated pair; the cosine (of a multilingual model) decides.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from ..numbers import Evidence, compare, same_script

FEATURES = ("cosine", "margin", "numbers_agree", "numbers_differ", "shared", "length",
            "question_shift")
# How many of the eval row's other candidates make its neighbourhood, and the cosine a missing
# neighbour counts as (candidates below the retrieval floor are not scored).
NEIGHBOURS = 3
FILL = 0.6

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# The question a text ends with: its last sentence ending in "?", from its last question word
# on ("If she works 45 hours, how much does she earn?" asks "how much does she earn?").
_SENTENCE = re.compile(r"[^.!?]*[?]\s*$")
_ASKS = re.compile(r"\b(?:how|what|which|who|whom|whose|when|where|why|find|calculate|"
                   r"determine|compute)\b", re.IGNORECASE)
LONGEST_QUOTED = 24   # characters of a shared word quoted in a message


@cache
def _stop_words() -> frozenset[str]:
    """scikit-learn's English stop words (a copy: importing scikit-learn takes ~1.5 s)."""
    text = resources.files("eval_firewall").joinpath("data/english_stop_words.txt").read_text()
    listed = {w for w in text.split("\n") if w and not w.startswith("#")}
    return frozenset(listed) | {"does", "did", "let", "use", "used", "following"}


def _stem(word: str) -> str:
    word = word.lower()
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def content_words(text: str) -> dict[str, str]:
    """Stem -> first spelling of each content word of ``text`` (three letters or more)."""
    stops = _stop_words()
    out: dict[str, str] = {}
    for word in _WORD.findall(text):
        if len(word) >= 3 and word.lower() not in stops:
            out.setdefault(_stem(word), word)
    return out


def split_question(text: str) -> tuple[str, str] | None:
    """(setup, question) of a text that ends with a question after some setup, else None."""
    stripped = text.strip()
    last = _SENTENCE.search(stripped)
    if last is None:
        return None
    asks = list(_ASKS.finditer(last.group()))
    start = last.start() + (asks[-1].start() if asks else 0)
    setup, question = stripped[:start], stripped[start:]
    if len(setup.split()) < 4 or not content_words(question):
        return None
    return setup, question


def _overlap(a: str, b: str) -> float:
    """Share of the shorter text's content words that the other uses."""
    wa, wb = content_words(a), content_words(b)
    if not wa or not wb:
        return 0.0
    return sum(1 for w in wa if w in wb) / min(len(wa), len(wb))


def question_shift(a: str, b: str) -> float:
    """How much more two texts share in their setups than in their final questions (>= 0)."""
    qa, qb = split_question(a), split_question(b)
    if qa is None or qb is None:
        return 0.0
    return max(0.0, _overlap(qa[0], qb[0]) - _overlap(qa[1], qb[1]))


def shared_words(a: str, b: str) -> tuple[float, list[str]]:
    """(share of the shorter text's content words the other uses, the shared words: names
    first, then the longest)."""
    wa, wb = content_words(a), content_words(b)
    if not wa or not wb:
        return 0.0, []
    common = [wa[s] for s in wa if s in wb]
    common.sort(key=lambda w: (not w[0].isupper(), -len(w), w))
    return len(common) / min(len(wa), len(wb)), common


@dataclass(frozen=True, slots=True)
class Model:
    """A logistic regression over :data:`FEATURES` (standardized with ``mean``/``scale``)."""

    coef: tuple[float, ...]
    intercept: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    neutral: tuple[float, ...]
    fingerprint: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Model:
        """The model stored as JSON (``data/paraphrase_model.json``)."""
        if tuple(data["features"]) != FEATURES:
            raise ValueError(f"paraphrase model features {data['features']} != {FEATURES}")
        blob = json.dumps(data, sort_keys=True).encode()
        return cls(tuple(data["coef"]), float(data["intercept"]), tuple(data["mean"]),
                   tuple(data["scale"]), tuple(data["neutral"]),
                   hashlib.sha256(blob).hexdigest()[:16])

    def probability(self, features: np.ndarray) -> np.ndarray:
        """P(paraphrase) for each row of ``features`` (n x len(FEATURES))."""
        x = (np.atleast_2d(features) - np.array(self.mean)) / np.array(self.scale)
        z = x @ np.array(self.coef) + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-z)))


@cache
def default_model() -> Model:
    """The calibrated model shipped in the package."""
    text = resources.files("eval_firewall").joinpath("data/paraphrase_model.json").read_text()
    return Model.from_json(json.loads(text))


def neighbourhood(cosines: list[float], k: int = NEIGHBOURS) -> list[float]:
    """For each candidate, the mean cosine of the ``k`` best *other* candidates of the same
    eval row (missing ones count as :data:`FILL`)."""
    order = sorted(cosines, reverse=True)
    out = []
    for c in cosines:
        others = list(order)
        others.remove(c)
        top = (others + [FILL] * k)[:k]
        out.append(float(np.mean(top)))
    return out


def pair_features(eval_text: str, train_text: str, cosine: float, neighbours: float,
                  *, numbers: bool = True, model: Model | None = None
                  ) -> tuple[np.ndarray, Evidence]:
    """The feature vector of one pair, and its number evidence (for the message)."""
    model = model or default_model()
    if not same_script(eval_text, train_text):
        return np.array([cosine, cosine - neighbours, *model.neutral[2:]]), Evidence(0.0)
    evidence = compare(eval_text, train_text) if numbers else Evidence(0.0)
    shared, _ = shared_words(eval_text, train_text)
    la, lb = len(eval_text.split()), len(train_text.split())
    length = min(la, lb) / max(la, lb, 1)
    return np.array([cosine, cosine - neighbours, max(evidence.value, 0.0),
                     float(evidence.value < 0), shared, length,
                     question_shift(eval_text, train_text)]), evidence


def explain(eval_text: str, train_text: str, cosine: float) -> str:
    """Why a pair counts as the same question, in words, e.g. "same question reworded: 93%
    similar, numbers agree (1/3 = a third), shares 'shoeboxes', 'Phil'"."""
    parts = [f"{int(cosine * 100 + 1e-9)}% similar"]
    if same_script(eval_text, train_text):
        evidence = compare(eval_text, train_text)
        if evidence.describe():
            parts.append(evidence.describe())
        _, common = shared_words(eval_text, train_text)
        if common:
            parts.append("shares " + ", ".join(f"'{w[:LONGEST_QUOTED]}'" for w in common[:3]))
    else:
        parts.append("written in another script (a translation)")
    return "same question reworded: " + ", ".join(parts)
