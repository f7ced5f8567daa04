"""Perturbations keep the meaning: numbers, named entities and negations never change; the
question sentence never moves; options are remapped; everything is deterministic for a seed."""

from __future__ import annotations

import json
import re
from collections import Counter
from difflib import SequenceMatcher

import pytest

from conftest import gsm8k
from eval_firewall.inputs.perturb import (
    KINDS,
    NEGATIONS,
    NUMBER_WORDS,
    ORIGINAL,
    lexicon,
    perturb_rows,
    split_sentences,
    variants,
)
from eval_firewall.rows import Row

NUMBER = re.compile(r"\d[\d,.]*\d|\d")
TOKEN = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)?|[.!?:\n]")


def row(text: str, label: str | None = "#### 1", row_id: str = "r1") -> Row:
    return Row("eval", "eval", "data/eval.jsonl", 1, row_id, text, label)


def gsm8k_rows(n: int | None = None) -> list[Row]:
    return [row(r["question"], r["answer"], f"test-{i}")
            for i, r in enumerate(gsm8k("test", n))]


def numbers(text: str) -> Counter:
    return Counter(NUMBER.findall(text))


def words(text: str) -> list[str]:
    return [w.lower() for w in TOKEN.findall(text) if w[0].isalpha()]


def entities(text: str) -> Counter:
    """Capitalized words inside a sentence (not the first word of a sentence or a line)."""
    out: Counter = Counter()
    start = True
    for tok in TOKEN.findall(text):
        if tok in ".!?:\n":
            start = True
            continue
        if tok[0].isupper() and not start:
            out[tok] += 1
        start = False
    return out


def negations(text: str) -> Counter:
    return Counter(w for w in words(text) if w in NEGATIONS or w.endswith("n't"))


@pytest.fixture(scope="module")
def all_variants():
    return perturb_rows(gsm8k_rows(), seed=0)


def test_every_kind_applies_to_real_questions(all_variants):
    kinds = Counter(v.kind for v in all_variants)
    assert kinds[ORIGINAL] == 1319
    assert kinds["preamble"] == kinds["noise"] == 1319
    assert kinds["synonym"] > 500          # most questions hold a lexicon word
    assert kinds["reorder"] > 200          # mostly "If ..., how many ...?" clauses
    assert kinds["options"] == 0           # GSM8K is not multiple choice


def test_numbers_entities_and_negations_never_change(all_variants):
    for v in all_variants:
        original = v.row.text
        assert numbers(v.prompt) == numbers(original), (v.kind, v.prompt)
        assert entities(v.prompt) == entities(original), (v.kind, v.prompt)
        assert negations(v.prompt) == negations(original), (v.kind, v.prompt)
        number_words = Counter(w for w in words(v.prompt) if w in NUMBER_WORDS)
        assert number_words == Counter(w for w in words(original) if w in NUMBER_WORDS)


def test_each_variant_names_its_kind_and_row(all_variants):
    for v in all_variants:
        assert v.kind in KINDS or v.kind == ORIGINAL
        assert v.id == f"{v.row.row_id}~{v.kind}"
        assert v.label == v.row.label                # only ``options`` remaps labels
        if v.kind != ORIGINAL:
            assert v.prompt != v.row.text


def test_synonyms_change_only_lexicon_words(all_variants):
    lex = lexicon()
    for v in (v for v in all_variants if v.kind == "synonym"):
        before, after = words(v.row.text), words(v.prompt)
        ops = [op for op in SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes()
               if op[0] != "equal"]
        replaced = [w for tag, i1, i2, _, _ in ops for w in before[i1:i2]]
        assert all(tag == "replace" for tag, *_ in ops), ops
        assert 1 <= len(replaced) <= 3 and all(w in lex for w in replaced), replaced


def test_reorder_keeps_the_question_sentence_last(all_variants):
    for v in (v for v in all_variants if v.kind == "reorder"):
        before, after = split_sentences(v.row.text.strip()), split_sentences(v.prompt)
        assert after[-1].endswith("?") == before[-1].endswith("?")
        assert Counter(words(" ".join(after))) == Counter(words(" ".join(before)))
        if after[:-1] == [s.strip() for s in before[:-1]]:
            # The context is untouched: the question's "If ..." clause moved.
            assert "if " in after[-1].lower()


def test_reorder_moves_if_clause_and_back():
    [v] = variants(row("Tom has 3 apples. If he eats 1, how many apples are left?"),
                   seed=0, kinds=["reorder"])
    assert v.prompt == "Tom has 3 apples. How many apples are left if he eats 1?"
    [back] = variants(row(v.prompt), seed=0, kinds=["reorder"])
    assert back.prompt == "Tom has 3 apples. If he eats 1, how many apples are left?"


@pytest.mark.parametrize("text", [
    "Tom has 3 apples. He buys 2 more. How many apples does Tom have?",     # pronoun
    "Tom buys 3 apples. Then Ann buys 2 pears. How many fruits are there?",  # sequence word
    "Tom has 3 apples. Tom eats 2 apples. How many apples are left?",       # shared words
    "Kira bought 3 apples. Lola ate 2 pieces of the fruit. How many are left?",  # "the"
    "How many apples does Tom have? Tom has 3 apples. Ann has 2 pears.",    # question first
    "How can we tell if it rains?",                                          # "if" = whether
])
def test_reorder_leaves_dependent_sentences_alone(text):
    assert variants(row(text), seed=0, kinds=["reorder"]) == []


def test_reorder_swaps_independent_context_sentences():
    text = "An adult weighs 80 kg. Jack's lift holds 700 kg. How many adults can ride?"
    [v] = variants(row(text), seed=0, kinds=["reorder"])
    assert v.prompt == "Jack's lift holds 700 kg. An adult weighs 80 kg. How many adults can ride?"


def test_options_are_shuffled_and_the_label_remapped():
    text = "Which planet is the largest?\nA) Mars\nB) Jupiter\nC) Venus\nD) Earth"
    [v] = variants(row(text, label="B"), seed=3, kinds=["options"])
    lines = v.prompt.split("\n")
    assert lines[0] == "Which planet is the largest?"
    assert [l[:3] for l in lines[1:]] == ["A) ", "B) ", "C) ", "D) "]
    assert sorted(l[3:] for l in lines[1:]) == ["Earth", "Jupiter", "Mars", "Venus"]
    assert lines[1:] != text.split("\n")[1:]
    assert lines[1 + "ABCD".index(v.label)] == f"{v.label}) Jupiter"
    assert v.original_letter(v.label) == "B"
    for new, old in v.letters:
        assert lines[1 + "ABCD".index(new)][3:] == text.split("\n")[1 + "ABCD".index(old)][3:]


@pytest.mark.parametrize("text, label", [
    ("Pick one.\nA) red\nB) blue\nC) All of the above", "C"),
    ("Pick one.\nA) red\nB) blue\nC) A and B", "C"),
    ("Pick one.\nA) red\nB) blue", "#### 3"),     # the label is not a letter
    ("Pick one.\nA) red", "A"),                   # one option is no choice
])
def test_options_left_alone_when_they_refer_to_each_other(text, label):
    assert variants(row(text, label=label), seed=0, kinds=["options"]) == []


def test_synonym_keeps_articles_right_and_names_alone():
    text = "Tom wants an expensive car and a big house. Tom buys a car."
    for seed in range(30):
        [v] = variants(row(text), seed=seed, kinds=["synonym"])
        assert "an costly" not in v.prompt and "an pricey" not in v.prompt
        assert v.prompt.startswith("Tom ") and " Tom " in v.prompt


def test_noise_changes_only_spacing_and_the_case_of_function_words(all_variants):
    for v in (v for v in all_variants if v.kind == "noise"):
        assert v.prompt.split() == [w if w == o else o.lower() if w == o.lower() else o
                                    for w, o in zip(v.prompt.split(), v.row.text.split())]
        assert " ".join(v.prompt.split()).lower() == " ".join(v.row.text.split()).lower()


def test_preamble_is_prepended(all_variants):
    for v in (v for v in all_variants if v.kind == "preamble"):
        assert v.prompt.endswith(" " + v.row.text)


def test_deterministic_for_a_seed():
    rows = gsm8k_rows(200)
    first = [(v.id, v.prompt) for v in perturb_rows(rows, seed=11)]
    assert first == [(v.id, v.prompt) for v in perturb_rows(rows, seed=11)]
    other = [(v.id, v.prompt) for v in perturb_rows(rows, seed=12)]
    assert first != other
    # A row's variants do not depend on the other rows.
    alone = [(v.id, v.prompt) for v in perturb_rows(rows[5:6], seed=11)]
    assert alone == [p for p in first if p[0].startswith("test-5~")]


def test_kinds_select_what_is_made():
    made = perturb_rows(gsm8k_rows(20), seed=0, kinds=["preamble"])
    assert {v.kind for v in made} == {ORIGINAL, "preamble"}


def test_lexicon_is_safe():
    lex = lexicon()
    assert len(lex) > 150
    for word, subs in lex.items():
        assert word == word.lower() and word.isalpha(), word
        assert word not in NEGATIONS and word not in NUMBER_WORDS, word
        for sub in subs:
            assert sub == sub.lower() and sub != word and not re.search(r"\d", sub), sub
            assert not set(sub.split()) & (NEGATIONS | NUMBER_WORDS), sub


def test_lexicon_ships_in_the_package():
    from importlib import resources
    raw = json.loads(resources.files("eval_firewall").joinpath("data/synonyms.json")
                     .read_text(encoding="utf-8"))
    assert raw["synonyms"]["buys"] == ["purchases"]
