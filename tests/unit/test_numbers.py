"""Number equivalence: every written form of a number, and the evidence two texts give."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eval_firewall.text import numbers
from eval_firewall.text.numbers import compare, mentions, same_script, script_of


def values(text: str) -> list[set[float]]:
    return [set(m.values) for m in mentions(text)]


@pytest.mark.parametrize("text, expected", [
    # digits, separators, decimals, fractions
    ("3 apples", [{3}]),
    ("$80,000 and $1,250.50", [{80000}, {1250.5}]),
    ("costs 1.50 or .5", [{1.5}, {0.5}]),
    ("1/3 of the cake", [{0.333333}]),
    ("1/4 and 3/4", [{0.25}, {0.75}]),
    # percentages
    ("50% off", [{50, 0.5}]),
    ("50 percent off", [{50, 0.5}]),
    ("twenty per cent", [{20, 0.2}]),
    # number words: one to ninety-nine, hundreds, thousands
    ("one", [{1}]),
    ("seven dwarfs", [{7}]),
    ("nineteen", [{19}]),
    ("twenty-five", [{25}]),
    ("ninety nine", [{99}]),
    ("a hundred people", [{100}]),
    ("three hundred and five", [{305}]),
    ("two thousand", [{2000}]),
    ("twenty-five thousand four hundred", [{25400}]),
    ("one two", [{1}, {2}]),
    # fraction words
    ("half of it", [{0.5}]),
    ("a third of them", [{0.333333}]),
    ("one third", [{0.333333}]),
    ("two-thirds", [{0.666667}]),
    ("a quarter", [{0.25}]),
    ("three quarters", [{0.75}]),
    ("the third day", [{0.333333, 3}]),           # ordinal or fraction: either matches
    # multiplicatives
    ("twice as many", [{2}]),
    ("double the price", [{2}]),
    ("thrice a week", [{3}]),
    ("it tripled", [{3}]),
    ("quadruple", [{4}]),
    ("4 times a day", [{4}]),
    # collectives
    ("a pair of shoes", [{2}]),
    ("three pairs", [{3, 6}]),
    ("a dozen eggs", [{12}]),
    ("two dozen roses", [{2, 24}]),
    ("5 dozen", [{5, 60}]),
    ("four decades", [{4, 40}]),
    ("a couple of days", [{2}]),
    # no numbers
    ("no numbers here", []),
    ("a cat on a mat", []),
    ("hundreds of birds", []),
])
def test_mentions_read_every_written_form(text, expected):
    assert values(text) == expected


def test_digits_are_marked_as_explicit():
    found = mentions("three cats and 4 dogs")
    assert [(m.text, m.digits) for m in found] == [("three", False), ("4", True)]
    assert [m.firm for m in mentions("one, three, a dozen, half, 4")] == [False, True, False,
                                                                         False, True]


@pytest.mark.parametrize("a, b, equivalence", [
    ("Phil gives away 1/3 of his 12 shoeboxes.", "Phil hands out a third of his dozen shoeboxes.",
     "1/3 = a third"),
    ("She runs 3 times a week.", "She runs thrice weekly.", "3 times = thrice"),
    ("He buys 2 socks.", "He buys a pair of socks.", "2 = a pair"),
    ("He is 2 times as old.", "He is double the age.", "2 times = double"),
    ("A box of 12 eggs.", "A box holding a dozen eggs.", "12 = a dozen"),
    ("She worked 40 years.", "She worked four decades.", "40 = four decades"),
    ("It is 50% off.", "It is half off.", "50% = half"),
    ("It costs $3.", "It costs three dollars.", "3 = three"),
    ("It takes 0.5 hours.", "It takes half an hour.", "0.5 = half"),
    ("Take 3/4 of it.", "Take three quarters of it.", "3/4 = three quarters"),
])
def test_numbers_written_in_words_count_as_a_match(a, b, equivalence):
    evidence = compare(a, b)
    assert evidence.value == 1.0
    assert equivalence.lower() in [e.lower() for e in evidence.equivalences]
    assert compare(b, a).value == 1.0                        # symmetric
    assert "numbers agree" in evidence.describe()


def test_other_numbers_are_evidence_against():
    evidence = compare("James runs 3 sprints of 60 meters.", "James runs 4 sprints of 50 meters.")
    assert evidence.value == -1.0
    assert set(evidence.differing) == {"3", "60", "4", "50"}
    assert evidence.describe().startswith("numbers differ")


def test_a_number_only_one_side_states_is_weak_evidence_not_a_veto():
    assert compare("He buys 3 apples for $2.", "He buys 3 apples.").value == 0.5
    assert compare("He buys 1 apple.", "He buys an apple.").value == 0.0   # 1 = "an"
    assert compare("He buys 3 apples.", "He buys three apples.").value == 1.0
    assert compare("no numbers", "none here either").value == 0.0
    assert compare("3 apples", "some apples").value == 0.0
    assert compare("He buys 1 apple and 3 pears.", "He buys 3 pears and 2 figs.").value == -1.0


def test_the_same_template_negatives_are_all_against():
    """The 29 hand-written same-template-other-numbers pairs: the numbers say 'other problem'."""
    pairs = [json.loads(line) for line in
             (Path(__file__).parents[1] / "data" / "paraphrase_pairs.jsonl").read_text().splitlines()]
    numbers = [p for p in pairs if p["kind"] == "numbers"]
    assert len(numbers) == 29
    assert all(compare(p["b"], p["a"]).value < 0 for p in numbers)
    positives = [p for p in pairs if p["label"] == 1]
    assert sum(compare(p["b"], p["a"]).value < 0 for p in positives) == 0


def test_scripts():
    assert script_of("Hello world") == "LATIN"
    assert script_of("Привет мир") == "CYRILLIC"
    assert script_of("你好世界") == "CJK"
    assert script_of("123 !") == ""
    assert same_script("Les canards de Janet", "Janet's ducks")
    assert not same_script("У Джоша 3 дома", "Josh has 4 houses")
    assert same_script("42", "Josh has 4 houses")      # no letters: nothing to tell apart


def test_texts_in_different_scripts_give_no_number_evidence():
    # a translation writes its numbers in words we do not read: never a veto
    assert compare("Джош купил 5 домов за 80 000 долларов", "Josh bought five houses for "
                   "$90,000").value == 0.0


def test_each_number_matches_once():
    # "4 eggs in 4 weeks" against "4 eggs in 6 weeks": the second 4 has no partner
    assert compare("a 4 egg omelet for 4 weeks", "a 4 egg omelet for 6 weeks").value == -1.0
    assert compare("three times as old, four times older, 2 years",
                   "four times as old, two times older, 2 years").value == -1.0
    assert compare("3 sprints 3 times", "3 times, 3 sprints").value == 1.0


def _mentions_word_by_word(text: str) -> list:
    """mentions without the shortcut over words no number starts with: every token goes
    through _digit_mention or _word_mention, as before the shortcut."""
    tokens = [t.lower() for t in numbers._TOKEN.findall(text.replace("-", " "))]
    out, i = [], 0
    while i < len(tokens):
        tok = tokens[i]
        digit = tok[0].isdigit() or (tok[0] == "." and len(tok) > 1)
        stated, i = (numbers._digit_mention if digit else numbers._word_mention)(tokens, i)
        if stated is not None:
            out.append(stated)
    return out


_VOCABULARY = sorted(numbers._WORD_STARTS | set(numbers._SCALES) | numbers._PERCENT | numbers._ONE
                     | {"and", "times", "per", "cent", "apples", "the", "cost", "x", "hundreds"})


@given(st.lists(st.sampled_from(_VOCABULARY), min_size=1, max_size=8),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=9))
def test_a_word_no_number_starts_with_is_skipped_as_before(tail, word):
    """The shortcut's premise: a token outside _WORD_STARTS starts no number in words."""
    if word not in numbers._WORD_STARTS:
        assert numbers._word_mention([word, *tail], 0) == (None, 1)
    text = " ".join([word, *tail])
    assert list(mentions(text)) == _mentions_word_by_word(text)


def test_mentions_of_real_questions_are_unchanged_by_the_shortcut():
    questions = [json.loads(line)["question"] for line in
                 (Path(__file__).parents[1] / "data" / "gsm8k" / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert any(mentions(q) for q in questions)
    assert all(list(mentions(q)) == _mentions_word_by_word(q) for q in questions)
