"""Paraphrase scoring: a small calibrated model over a handful of pair features.

One cosine cannot tell a reworded question (synonyms pull its cosine down) from another
instance of the same template (other numbers, cosine up to 0.98). So each candidate pair
(eval row, train row) gets six features:

- ``cosine``: the full model's cosine of the two texts;
- ``margin``: that cosine minus the mean cosine of the eval row's next best train candidates
  (as in bitext mining): a unique partner stands out, a row in a dense template neighbourhood
  does not; missing neighbours count as :data:`FILL`;
- ``numbers_agree`` / ``numbers_differ``: number evidence from
  :func:`eval_firewall.text.numbers.compare`, split in two so each gets its own weight: the agreement
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

The scoring is chosen by what the rows look like: a pair where either side looks like source
code (:func:`looks_like_code`) is scored by a second regression fitted on code (the ``code``
entry of the JSON), with both number features held at 0: a rephrased function
keeps or changes the numbers of its doctests and constants as it likes, so numbers can neither
veto nor confirm code. The feature vector carries the domain as its last column (``code``:
1 for a code pair).
For texts in different scripts (a translation) the number, shared-words and length features
take their ``neutral`` values (the mean over true paraphrases in calibration): they can
neither veto nor confirm a translated pair; the cosine (of a multilingual model) decides.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import numpy as np

from ..text.numbers import Evidence, compare, same_script

FEATURES = ("cosine", "margin", "numbers_agree", "numbers_differ", "shared", "length",
            "question_shift")
# What a pair's feature vector holds: the model's features, then the domain (1: code).
COLUMNS = FEATURES + ("code",)
NUMBER_FEATURES = (2, 3)   # numbers_agree, numbers_differ: neutral for code and translations
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

# A line of source code: a statement keyword, a doctest prompt, a line ending in ":", "{", "}"
# or ";", or an indented line with brackets or an assignment.
_CODE_LINE = re.compile(
    r"^\s*(?:def |class |return\b|import |from \S+ import |if\b.*:$|elif\b|else\s*:|for\b.*:$|"
    r"while\b.*:$|try\s*:|except\b|with\b.*:$|>>>|#include|function\b|const |let |var |"
    r"public |private |fn |func |package |\}|@\w+)"
    r"|[:{};]\s*$|^(?:\s{2,}|\t).*(?:[()\[\]=]).*$")
CODE_LINES = 3        # a text needs this many non-blank lines to be code ...
CODE_SHARE = 0.4      # ... and this share of them code-like


@lru_cache(maxsize=1 << 16)   # bounded: train texts pass through it
def looks_like_code(text: str) -> bool:
    """Whether ``text`` is source code: at least :data:`CODE_LINES` non-blank lines, at least
    :data:`CODE_SHARE` of them code-like (a keyword, a doctest, a block or statement end)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < CODE_LINES:
        return False
    return sum(1 for line in lines if _CODE_LINE.search(line)) >= CODE_SHARE * len(lines)


def is_code_pair(a: str, b: str) -> bool:
    """Whether a pair is scored as code: either side looks like code."""
    return looks_like_code(a) or looks_like_code(b)


@cache
def _stop_words() -> frozenset[str]:
    """scikit-learn's English stop words (a copy: importing scikit-learn is slow; the docs'
    Benchmarks page has the figure)."""
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
    """A logistic regression over :data:`FEATURES` (standardized with ``mean``/``scale``), and
    the one for code pairs (``code``; without it code pairs use this one)."""

    coef: tuple[float, ...]
    intercept: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    neutral: tuple[float, ...]
    fingerprint: str
    code: Model | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Model:
        """The model stored as JSON (``data/paraphrase_model.json``)."""
        if tuple(data["features"]) != FEATURES:
            raise ValueError(f"paraphrase model features {data['features']} != {FEATURES}")
        blob = json.dumps(data, sort_keys=True).encode()
        code = None
        if data.get("code") is not None:
            code = cls.from_json({"features": data["features"], **data["code"]})
        return cls(tuple(data["coef"]), float(data["intercept"]), tuple(data["mean"]),
                   tuple(data["scale"]), tuple(data["neutral"]),
                   hashlib.sha256(blob).hexdigest()[:16], code)

    def for_code(self) -> Model:
        """The regression code pairs are scored with."""
        return self.code or self

    def _linear(self, x: np.ndarray) -> np.ndarray:
        z = ((x - np.array(self.mean)) / np.array(self.scale)) @ np.array(self.coef)
        return np.asarray(1.0 / (1.0 + np.exp(-(z + self.intercept))))

    def probability(self, features: np.ndarray) -> np.ndarray:
        """P(paraphrase) for each row of ``features`` (n x len(COLUMNS); without the domain
        column, n x len(FEATURES), every row is prose)."""
        x = np.atleast_2d(np.asarray(features, dtype=float))
        out = self._linear(x[:, :len(FEATURES)])
        if x.shape[1] > len(FEATURES):
            code = x[:, len(FEATURES)] > 0.5
            if code.any():
                out[code] = self.for_code()._linear(x[code, :len(FEATURES)])
        return out


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
    code = is_code_pair(eval_text, train_text)
    used = model.for_code() if code else model
    if not same_script(eval_text, train_text):
        return np.array([cosine, cosine - neighbours, *used.neutral[2:], float(code)]), \
            Evidence(0.0)
    evidence = compare(eval_text, train_text) if numbers and not code else Evidence(0.0)
    shared, _ = shared_words(eval_text, train_text)
    la, lb = len(eval_text.split()), len(train_text.split())
    length = min(la, lb) / max(la, lb, 1)
    agree, differ = max(evidence.value, 0.0), float(evidence.value < 0)
    if code:   # numbers neither veto nor confirm code (doctests, constants): constant
        agree, differ = 0.0, 0.0
    return np.array([cosine, cosine - neighbours, agree, differ, shared, length,
                     question_shift(eval_text, train_text), float(code)]), evidence


def feature_map(features: np.ndarray) -> dict[str, float]:
    """A feature vector as {name: value} (rounded for reports), the domain as 0/1."""
    return {name: round(float(v), 4) for name, v in zip(COLUMNS, features)}


def explain(eval_text: str, train_text: str, cosine: float) -> str:
    """Why a pair counts as the same question, in words, e.g. "same question reworded: 93%
    similar, numbers agree (1/3 = a third), shares 'shoeboxes', 'Phil'"."""
    parts = [f"{int(cosine * 100 + 1e-9)}% similar"]
    if is_code_pair(eval_text, train_text):
        _, common = shared_words(eval_text, train_text)
        parts.append("code (numbers not compared)")
        if common:
            parts.append("shares " + ", ".join(f"'{w[:LONGEST_QUOTED]}'" for w in common[:3]))
    elif same_script(eval_text, train_text):
        evidence = compare(eval_text, train_text)
        if evidence.describe():
            parts.append(evidence.describe())
        _, common = shared_words(eval_text, train_text)
        if common:
            parts.append("shares " + ", ".join(f"'{w[:LONGEST_QUOTED]}'" for w in common[:3]))
    else:
        parts.append("written in another script (a translation)")
    return "same question reworded: " + ", ".join(parts)
