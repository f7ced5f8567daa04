"""Unicode evasion of the overlap rules (issue #18, item 4): train rows copied into eval with an
invisible character between every character, or with Cyrillic look-alikes for Latin letters,
passed exact, near-duplicate and paraphrase. Every matcher now sees the text without
default-ignorable code points, and the exact and near-duplicate keys fold mixed-script
homoglyphs; each such row also gets a `disguised-text` notice. Reports keep the original."""

from __future__ import annotations

import pytest

from conftest import BASIC_CONFIG, gsm8k
from eval_firewall.config import load_config
from eval_firewall.engine import run_audits
from eval_firewall.text.normalize import disguise, fold_homoglyphs, model_text, normalize

TRAIN = [r["question"] for r in gsm8k("train", 80)]
HOMOGLYPHS = str.maketrans({"a": "а", "e": "е", "o": "о", "p": "р", "c": "с"})


def interleave(text: str, char: str) -> str:
    return char.join(text)


EVASIONS = {
    "zero-width space": lambda t: interleave(t, "\u200b"),
    "soft hyphen": lambda t: interleave(t, "\u00ad"),
    "variation selector": lambda t: interleave(t, "\ufe0f"),
    "cyrillic look-alikes": lambda t: t.translate(HOMOGLYPHS),
}


def audit(repo, evals: list[str], exact: bool = True, near: bool = True,
          semantic: bool = False, contained: bool = True):
    config = BASIC_CONFIG.replace(
        "    semantic: {enabled: false}\n",
        f"    semantic: {{enabled: {str(semantic).lower()}}}\n"
        f"    exact: {{enabled: {str(exact).lower()}}}\n"
        f"    near_duplicate: {{enabled: {str(near).lower()}}}\n"
        f"    containment: {{enabled: {str(contained).lower()}}}\n") + \
        "  provenance: {enabled: false}\n"
    root = repo([{"question": q, "answer": "1"} for q in TRAIN],
                [{"question": q, "answer": "1"} for q in evals], config)
    return run_audits(load_config(root / ".eval-firewall.yml"), cache_dir=None)


@pytest.mark.parametrize("evasion", EVASIONS, ids=list(EVASIONS))
def test_exact_and_near_duplicates_see_through_the_evasion(repo, evasion):
    disguised = [EVASIONS[evasion](q) for q in TRAIN[:3]]
    report = audit(repo, disguised)
    leaks = [f for f in report.findings if f.rule == "exact-duplicate"]
    assert [(f.line, f.match.line) for f in leaks] == [(1, 1), (2, 2), (3, 3)]
    assert [f.text for f in leaks] == disguised              # the report keeps the original
    notices = [f for f in report.findings if f.rule == "disguised-text"]
    assert [(f.line, f.severity.value) for f in notices] == [(1, "notice"), (2, "notice"),
                                                             (3, "notice")]
    # Exact matching off: the near-duplicate search finds them as identical.
    near = audit(repo, disguised, exact=False)
    assert [(f.rule, f.line, f.score) for f in near.findings if f.audit == "overlap"
            and f.rule != "disguised-text"] == [("near-duplicate", i, 1.0) for i in (1, 2, 3)]


@pytest.mark.model
def test_the_model_reads_the_text_without_invisible_characters(repo):
    """The paraphrase search alone (exact and near off) finds a copy with a zero-width space
    between every character: the model sees the same tokens as the train row's."""
    disguised = [interleave(TRAIN[i], "\u200b") for i in (5, 6)]
    report = audit(repo, disguised, exact=False, near=False, semantic=True, contained=False)
    found = [(f.line, f.match.line) for f in report.findings if f.rule == "paraphrase"]
    assert found == [(1, 6), (2, 7)]
    # With the containment search on, it sees through them first (it reads normalized text).
    report = audit(repo, disguised, exact=False, near=False, semantic=True)
    found = [(f.rule, f.line, f.match.line) for f in report.findings if f.audit == "overlap"
             and f.rule != "disguised-text"]
    assert found == [("contained", 1, 6), ("contained", 2, 7)]


def test_the_normalization_functions():
    text = "Natalia sold clips to a cape of her friends"
    assert normalize(text.translate(HOMOGLYPHS)) == normalize(text)
    assert model_text(interleave(text, "\u200b")) == text
    assert model_text(text.translate(HOMOGLYPHS)) != text            # the model's words kept
    # A word all in one script is folded only inside a text of another script.
    assert fold_homoglyphs("москва") == "москва"
    assert fold_homoglyphs("привет, сорок") == "привет, сорок"
    assert fold_homoglyphs("pаypal") == "paypal" and fold_homoglyphs("москвa") == "москва"
    # Digits and symbols are never folded (no 0 -> O skeleton).
    assert normalize("0 apples and 1 pear") == "0 apples and 1 pear"
    assert disguise(text) is None and disguise("Привет, café") is None
    assert disguise(interleave("abc", "\u200b")) == \
        "2 invisible characters (U+200B ZERO WIDTH SPACE)"
    assert disguise("pаypal") == \
        "1 look-alike letter of another script (U+0430 CYRILLIC SMALL LETTER A)"


def test_emoji_sequences_are_not_disguised_text():
    """A variation selector or zero-width joiner inside an emoji hides nothing."""
    assert disguise("I love it \u2764\ufe0f and my family \U0001F468\u200d\U0001F469") is None
    assert disguise("lo\u200bve") == "1 invisible character (U+200B ZERO WIDTH SPACE)"
