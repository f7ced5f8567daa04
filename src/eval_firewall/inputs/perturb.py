"""Semantically equivalent variants of eval prompts, for the invariance audit.

Kinds (each row gets at most one variant per kind, and none where the kind cannot apply
safely):

- ``reorder``: a leading "If ..., how many ...?" clause moved behind the question (or back),
  or else two adjacent context sentences swapped when neither refers to the other (no pronoun,
  no sequence word, no shared content word). The question sentence never moves.
- ``options``: multiple-choice options (lines ``A) ...``, ``(B) ...``, ``C. ...``) shuffled, the
  label's letter remapped. Skipped when an option refers to others ("all of the above").
- ``synonym``: up to three lower-case words replaced from the offline lexicon shipped in
  ``eval_firewall/data/synonyms.json``.
- ``preamble``: an irrelevant sentence put in front: a neutral one that fits any text (a word
  problem, a review, a passage), or one of ``audits.invariance.preambles``.
- ``noise``: doubled spaces, surrounding whitespace, a lower-cased sentence-initial function word.

No kind changes a number, a capitalized word inside a sentence (a named entity) or a negation.
Everything is deterministic for a seed: each row and kind draws from its own seeded generator.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache, partial
from importlib import resources

from ..records import Variant
from ..records import prompt_sha as prompt_sha  # re-exported: the CLI and tests name it here
from ..rows import Row
from ..text.matching import choice_letter

KINDS: tuple[str, ...] = ("reorder", "options", "synonym", "preamble", "noise")
ORIGINAL = "original"

# What a kind makes of a row: (prompt, label, option letters), or None where it cannot apply.
Made = tuple[str, str | None, tuple[tuple[str, str], ...]] | None

NEGATIONS = frozenset("""
not no never none nobody nothing neither nor without cannot nowhere hardly barely
don't doesn't didn't isn't aren't wasn't weren't won't can't couldn't shouldn't wouldn't
hasn't haven't hadn't mustn't needn't
""".split())
NUMBER_WORDS = frozenset("""
zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety
hundred hundreds thousand thousands million millions billion half halves twice thrice double
triple quadruple dozen dozens pair pairs couple quarter quarters third thirds fourth fifth sixth
seventh eighth ninth tenth first second once single percent both
""".split())
# Words that refer back to something earlier, or order events: a sentence holding one of them
# is never moved.
ANAPHORA = frozenset("""
he she it they him her them his hers its their theirs himself herself itself themselves this
that these those then there here after afterwards before later next finally also too again
another other others remaining rest left more less same such each every total now already
still so thus therefore meanwhile instead while when which who whom whose one ones and but
or because since until unless
""".split())
FUNCTION_WORDS = frozenset("""
the a an how what if in on at there this each every she he they it we you his her their its
after before when while for from to of with by as so then
""".split())
# Neutral: nothing in them assumes a question, a task or a subject.
PREAMBLES = (
    "Please read the following carefully.",
    "Here is the input.",
    "Take your time.",
    "Consider the following.",
    "Read the text below.",
)
OPTION_REFERENCE = re.compile(
    r"(?i)\b(?:all|none|both|neither|either)\s+of\s+(?:the\s+)?(?:above|these|them|the\s+options)"
    r"|\babove\b|\bbelow\b|\b[A-J]\s+(?:and|or|&)\s+[A-J]\b|\boption\s+[A-J]\b")
_OPTION_LINE = re.compile(r"^(\s*)(\(?)([A-J])([).:])(\s+)(\S.*)$")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'A-Z])")
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "no",
                            "mt", "ft", "oz", "lb", "lbs", "approx", "e.g", "i.e"})
_IF_FIRST = re.compile(r"^If\s+(?P<cond>[^,?]+?),\s+(?P<main>(?:how (?:many|much|long|far|old|fast|"
                       r"tall|heavy)|what)\b[^,?]*\?)\s*$")
_IF_LAST = re.compile(r"^(?P<main>(?:How (?:many|much|long|far|old|fast|tall|heavy)|What)\b"
                      r"[^,?]*?)\s+if\s+"
                      r"(?P<cond>[^,?]+)\?\s*$")


def variant_id(row_id: str, kind: str) -> str:
    """A prompt's id: its row id and its kind."""
    return f"{row_id}~{kind}"


@lru_cache(maxsize=1)
def lexicon() -> dict[str, tuple[str, ...]]:
    """The shipped synonym lexicon: lower-case word -> safe replacements."""
    raw = json.loads(resources.files("eval_firewall").joinpath("data/synonyms.json")
                     .read_text(encoding="utf-8"))
    return {word: tuple(subs) for word, subs in raw["synonyms"].items()}


def perturb_rows(rows: Iterable[Row], *, seed: int, kinds: Sequence[str] = KINDS,
                 preambles: Sequence[str] | None = None) -> list[Variant]:
    """Every row's original prompt followed by its variants, in row order.

    ``preambles``: the sentences the ``preamble`` kind picks from (default :data:`PREAMBLES`).
    """
    out = []
    for row in rows:
        out.append(Variant(variant_id(row.row_id, ORIGINAL), row, ORIGINAL, row.text, row.label))
        out.extend(variants(row, seed=seed, kinds=kinds, preambles=preambles))
    return out


def variants(row: Row, *, seed: int, kinds: Sequence[str] = KINDS,
             preambles: Sequence[str] | None = None) -> list[Variant]:
    """One row's variants, at most one per kind of ``kinds``, in :data:`KINDS` order."""
    out = []
    makers: dict[str, Callable[[Row, random.Random], Made]] = {
        **_MAKERS, "preamble": partial(_preamble, preambles=preambles or PREAMBLES)}
    for kind in KINDS:
        if kind not in kinds:
            continue
        rng = random.Random(f"{seed}\x1f{row.row_id}\x1f{kind}")
        made = makers[kind](row, rng)
        if made is None:
            continue
        text, label, letters = made
        if text != row.text:
            out.append(Variant(variant_id(row.row_id, kind), row, kind, text, label, letters))
    return out


# --- sentences --------------------------------------------------------------------------------


def split_sentences(text: str) -> list[str]:
    """Sentences of one paragraph; abbreviations and initials do not end a sentence."""
    pieces, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        before = text[start:m.start()]
        last = before.rsplit(None, 1)[-1] if before.split() else ""
        word = last.rstrip(".!?").lower()
        if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            continue
        pieces.append(before)
        start = m.end()
    pieces.append(text[start:])
    return [p for p in pieces if p]


def _words(sentence: str) -> list[str]:
    return _WORD.findall(sentence)


def _content(sentence: str) -> set[str]:
    out = set()
    for w in _words(sentence):
        low = re.sub(r"'s$", "", w.lower())
        if low in FUNCTION_WORDS or low in ANAPHORA or len(low) < 3:
            continue
        out.add(low[:-1] if low.endswith("s") else low)
    return out


def _independent(sentence: str) -> bool:
    words = [w.lower() for w in _words(sentence)]
    return bool(words) and not any(w in ANAPHORA or w in NEGATIONS for w in words)


def _reorder(row: Row, rng: random.Random) -> Made:
    text = row.text
    if "\n" in text.strip():
        return None  # several paragraphs or an option list: leave the layout alone
    stripped = text.strip()
    sentences = split_sentences(stripped)
    question = sentences[-1]
    context = sentences[:-1]
    clause = _move_if_clause(question)
    if clause is not None:
        return " ".join(context + [clause]), row.label, ()
    if any(s.endswith("?") for s in context):
        return None  # the question is not last: do not touch the order
    # The sentence moved forward must not name anything definite ("the ...") either: in a
    # story that almost always points back to something introduced earlier.
    pairs = [i for i in range(len(context) - 1)
             if _independent(context[i]) and _independent(context[i + 1])
             and "the" not in {w.lower() for w in _words(context[i + 1])}
             and not (_content(context[i]) & _content(context[i + 1]))]
    if not pairs:
        return None
    i = rng.choice(pairs)
    context[i], context[i + 1] = context[i + 1], context[i]
    return " ".join(context + [question]), row.label, ()


def _move_if_clause(sentence: str) -> str | None:
    m = _IF_FIRST.match(sentence)
    if m:
        main = m.group("main")
        return f"{main[0].upper()}{main[1:-1]} if {m.group('cond')}?"
    m = _IF_LAST.match(sentence)
    if m:
        main = m.group("main")
        return f"If {m.group('cond')}, {main[0].lower()}{main[1:]}?"
    return None


# --- options ----------------------------------------------------------------------------------


def _options(row: Row, rng: random.Random) -> Made:
    letter = choice_letter(row.label)
    if letter is None:
        return None
    lines = row.text.split("\n")
    block: list[int] = []
    for i, line in enumerate(lines):
        m = _OPTION_LINE.match(line)
        if not block:
            if m and m.group(3) == "A":
                block = [i]
        elif m and i == block[-1] + 1 and m.group(3) == chr(ord("A") + len(block)):
            block.append(i)
        elif len(block) >= 2:
            break
        else:
            block = [i] if m and m.group(3) == "A" else []
    if len(block) < 2:
        return None
    parsed = [m for m in (_OPTION_LINE.match(lines[i]) for i in block) if m is not None]
    bodies = [m.group(6) for m in parsed]
    if any(OPTION_REFERENCE.search(b) for b in bodies):
        return None
    if ord(letter) - ord("A") >= len(bodies):
        return None
    order = list(range(len(bodies)))
    while order == sorted(order):
        rng.shuffle(order)
    for position, (line_no, m) in enumerate(zip(block, parsed)):
        new_letter = m.group(3)
        lines[line_no] = (f"{m.group(1)}{m.group(2)}{new_letter}{m.group(4)}{m.group(5)}"
                          f"{bodies[order[position]]}")
    letters = tuple((chr(ord("A") + pos), chr(ord("A") + src)) for pos, src in enumerate(order))
    new_label = next(v for v, o in letters if o == letter)
    label = re.sub(rf"\b{letter}\b", new_label, row.label, count=1) if row.label else new_label
    return "\n".join(lines), label, letters


# --- synonyms ---------------------------------------------------------------------------------


def _article_ok(article: str, word: str) -> bool:
    vowel = word[0] in "aeiou"
    return (article.lower() == "an") == vowel


def _synonym(row: Row, rng: random.Random) -> Made:
    lex = lexicon()
    text = row.text
    tokens = list(_WORD.finditer(text))
    candidates = []
    for i, m in enumerate(tokens):
        word = m.group(0)
        if word != word.lower() or word not in lex:
            continue
        if word in NEGATIONS or word in NUMBER_WORDS:
            continue
        before = text[m.start() - 1] if m.start() else ""
        after = text[m.end()] if m.end() < len(text) else ""
        if before in "-'’/" and before or after in "-'’/" and after:
            continue  # part of a compound or a possessive
        choices = list(lex[word])
        prev = tokens[i - 1].group(0) if i else ""
        if prev.lower() in ("a", "an") and text[tokens[i - 1].end():m.start()] == " ":
            choices = [c for c in choices if _article_ok(prev, c)]
        if choices:
            candidates.append((m, choices))
    if not candidates:
        return None
    picked = sorted(rng.sample(candidates, min(3, len(candidates))), key=lambda c: c[0].start())
    out, pos = [], 0
    for m, choices in picked:
        out.append(text[pos:m.start()])
        out.append(rng.choice(choices))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out), row.label, ()


# --- preamble and noise -----------------------------------------------------------------------


def _preamble(row: Row, rng: random.Random, preambles: Sequence[str] = PREAMBLES) -> Made:
    return f"{rng.choice(list(preambles))} {row.text}", row.label, ()


def _noise(row: Row, rng: random.Random) -> Made:
    text = row.text
    # Lower-case one sentence-initial function word ("The" -> "the"), never a name.
    starts = [m for m in re.finditer(r"(?:^|(?<=[.!?]\s))([A-Z][a-z]*)\b", text)
              if m.group(1).lower() in FUNCTION_WORDS]
    if starts:
        m = rng.choice(starts)
        text = text[:m.start(1)] + m.group(1).lower() + text[m.end(1):]
    # Double a few of the spaces between words.
    spaces = [m.start() for m in re.finditer(r"(?<=\S) (?=\S)", text)]
    doubled = set(rng.sample(spaces, min(len(spaces), max(1, len(spaces) // 8))))
    text = "".join(ch + (" " if i in doubled else "") for i, ch in enumerate(text))
    lead, trail = rng.choice(["", " ", "\n"]), rng.choice([" ", "\n", "  \n"])
    return f"{lead}{text}{trail}", row.label, ()


_MAKERS: dict[str, Callable[[Row, random.Random], Made]] = {
    "reorder": _reorder, "options": _options, "synonym": _synonym, "preamble": _preamble,
    "noise": _noise}
