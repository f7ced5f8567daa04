"""Answer matchers: exact, numeric (GSM8K style, money, units), fuzzy, choice letters, auto."""

from __future__ import annotations

import pytest

from conftest import gsm8k
from eval_firewall.text.matching import (
    Matcher,
    choice_letter,
    final_number,
    make_matcher,
    pick_kind,
)


@pytest.mark.parametrize("text, number", [
    ("Janet sells 9 eggs.\nShe makes 9 * 2 = $<<9*2=18>>18.\n#### 18", 18.0),
    ("#### 70,000", 70000.0),
    ("$1,200", 1200.0),
    ("$ 12.50", 12.5),
    ("The answer is 18.", 18.0),
    ("18 dollars", 18.0),
    ("42 cm", 42.0),
    ("3/4", 0.75),
    ("50%", 50.0),
    ("-5 degrees", -5.0),
    ("16 - 3 - 4", 4.0),        # a subtraction, not minus four
    ("it fell to -3", -3.0),
    ("no number here", None),
    ("", None),
    (None, None),
])
def test_final_number(text, number):
    assert final_number(text) == number


@pytest.mark.parametrize("text, letter", [
    ("B", "B"), ("(b)", "B"), ("c.", "C"), ("B) Paris", "B"), ("D. 42", "D"),
    ("Answer: C", "C"), ("The correct answer is D.", "D"), ("option a", "A"),
    ("#### B", "B"),
    ("A dog", None), ("Paris", None), ("I think B", None), ("", None), ("K", None),
])
def test_choice_letter(text, letter):
    assert choice_letter(text) == letter


def test_numeric_matcher_reads_gsm8k_labels_and_human_answers():
    m = Matcher("numeric")
    label = "It takes 2/2=<<2/2=1>>1 bolt\nSo 2+1=<<2+1=3>>3\n#### 3"
    assert m.same("3", label)
    assert m.same("3 bolts", label)
    assert not m.same("1", label)
    assert m.same("$1,200", "#### 1200")
    assert m.same("1200.0", "#### 1,200")
    assert not m.same("", "#### 3") and not m.same(None, "#### 3")
    assert m.show(label) == "3"


def test_numeric_tolerance():
    assert not Matcher("numeric", tolerance=1e-6).same("3.14", "#### 3.14159")
    assert Matcher("numeric", tolerance=0.01).same("3.14", "#### 3.14159")


def test_exact_fuzzy_and_choice():
    assert Matcher("exact").same("  Positive! ", "positive")
    assert not Matcher("exact").same("positive", "negative")
    fuzzy = Matcher("fuzzy", fuzzy_threshold=0.85)
    assert fuzzy.same("The capital of France is Paris", "the capital of france is paris.")
    assert fuzzy.same("The capital of France is Pariss", "The capital of France is Paris")
    assert not fuzzy.same("Berlin", "The capital of France is Paris")
    choice = Matcher("choice")
    assert choice.same("(b)", "B") and choice.same("B) Paris", "b")
    assert not choice.same("A", "B")
    assert Matcher("choice").categorical and Matcher("exact").categorical
    assert not Matcher("numeric").categorical and not Matcher("fuzzy").categorical


def test_auto_picks_per_dataset():
    assert pick_kind(r["answer"] for r in gsm8k("test", 200)) == "numeric"
    assert pick_kind(["A", "b", "(C)", "D."]) == "choice"
    assert pick_kind(["12", "1,200", "$5", "-3"]) == "numeric"
    assert pick_kind(["positive", "negative", "neutral"]) == "exact"
    assert pick_kind(["The sun rises in the east every morning.",
                      "Water boils at a lower temperature on a mountain."]) == "fuzzy"
    # A few odd labels do not change the choice (90% share).
    labels = [r["answer"] for r in gsm8k("test", 50)] + ["(recomputed)"]
    assert pick_kind(labels) == "numeric"
    assert make_matcher("auto", ["A", "B"]).kind == "choice"
    assert make_matcher("fuzzy", ["A", "B"], fuzzy_threshold=0.5) == Matcher("fuzzy", 1e-6, 0.5)
