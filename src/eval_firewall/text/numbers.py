"""Number equivalence: do two texts state the same quantities, however they write them?

A rephrased question keeps its numbers but often writes them differently: "1/3" as "a third",
"3 times" as "thrice", "2" as "a pair" or "twice", "12" as "a dozen", "40 years" as "four
decades", "50%" as "half". :func:`mentions` reads every number a text states, each as the set
of values it can stand for (a *mention*: "third" is 1/3 or 3, "50%" is 50 or 0.5, "two dozen"
is 2 or 24); :func:`compare` weighs the mentions of two texts as evidence:

- ``+1`` agree: every number stated firmly (in digits, or as a cardinal word like "four") on
  either side is matched by the other side, in any form ("a dozen" matches 12);
- ``+0.5`` partly: some numbers match, one side states a number the other leaves out;
- ``0`` no evidence: no firm numbers on either side, or texts in different scripts (a
  translation writes its numbers in words we do not parse: never a veto);
- ``-1`` conflict: both sides firmly state numbers that the other side does not have
  (another instance of the same template: another problem).

A 1 is not held against a pair whose other text says "a", "an", "one", "each", ... ("1 apple"
is "an apple").

Hand-written rather than a library: the PyPI parsers (``word2number``, ``text2num``) turn
cardinal words into digits, but none reads fractions ("three quarters"), multiplicatives
("thrice", "double") or collectives ("a pair", "two dozen", "four decades"), which are most of
what rephrasings change; cardinal words are the easy part and take thirty lines here.

Every reading of numbers out of text is in this module: besides :func:`mentions`, the cheap
ones other stages use (:data:`DIGITS`, a template's digit signature; :func:`numbers_of`, the
paraphrase features' set of numbers; :data:`NUMBER_IN_ANSWER`, the answer matchers' number).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

Mention = frozenset[float]

_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2)}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
# fraction words: denominator (singular and plural); "third" is also the ordinal 3
_FRACTIONS = {"half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4,
              "fourth": 4, "fourths": 4, "fifth": 5, "fifths": 5, "sixth": 6, "sixths": 6,
              "eighth": 8, "eighths": 8, "tenth": 10, "tenths": 10}
_MULTIPLICATIVES = {"twice": 2, "double": 2, "doubled": 2, "doubles": 2, "thrice": 3,
                    "triple": 3, "tripled": 3, "triples": 3, "quadruple": 4, "quadrupled": 4}
# collectives: how many one of them is ("two dozen" = 24; "four decades" = 40 years)
_COLLECTIVES = {"pair": 2, "pairs": 2, "couple": 2, "dozen": 12, "dozens": 12, "decade": 10,
                "decades": 10, "century": 100, "centuries": 100, "score": 20}
_PERCENT = {"percent", "%"}
_WORDS_FIRM = set(_UNITS) | set(_TENS)
# words that can say "1" without the digit
_ONE = {"a", "an", "one", "each", "every", "per", "single", "once", "apiece"}

# the words a number in words can start with (see _word_mention and _cardinal)
_WORD_STARTS = frozenset(_UNITS) | set(_TENS) | {"a", "an"} | set(_FRACTIONS) | \
    set(_MULTIPLICATIVES) | set(_COLLECTIVES)

_TOKEN = re.compile(r"\d+(?:,\d{3})+(?:\.\d+)?|\d*\.\d+|\d+(?:/\d+)?|%|[^\W\d_]+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Stated:
    """One number a text states: the values it can stand for, how it is written, and whether
    it is stated firmly (digits, or a cardinal word other than "one")."""

    values: Mention
    text: str
    digits: bool

    @property
    def firm(self) -> bool:
        """Whether the number is stated in digits or a cardinal word (not "one", "a")."""
        return self.digits or (self.text.split()[0] not in ("one", "a", "an")
                               and self.text.split()[0] in _WORDS_FIRM)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the numbers of two texts say about the pair (see the module docstring)."""

    value: float
    equivalences: tuple[str, ...] = ()    # e.g. "1/3 = a third": same number, written otherwise
    differing: tuple[str, ...] = ()       # digits one side states and the other does not

    def describe(self) -> str:
        """The evidence in words, for a finding's message ("" when there is none)."""
        if self.value <= -1:
            return "numbers differ (" + ", ".join(self.differing[:4]) + ")"
        if self.value >= 1:
            extra = f" ({', '.join(self.equivalences[:3])})" if self.equivalences else ""
            return "numbers agree" + extra
        if self.value > 0:
            return "numbers partly agree"
        return ""


def _key(value: float) -> float:
    return round(float(value), 6)


def _digits(token: str) -> float | None:
    token = token.replace(",", "")
    if "/" in token:
        num, den = token.split("/")
        return int(num) / int(den) if int(den) else None
    return float(token)


@lru_cache(maxsize=1 << 16)
def mentions(text: str) -> tuple[Stated, ...]:
    """Every number ``text`` states, in order, with the values each can stand for."""
    return tuple(_mentions(text))


def _mentions(text: str) -> list[Stated]:
    tokens = [t.lower() for t in _TOKEN.findall(text.replace("-", " "))]
    out: list[Stated] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok[0].isdigit() or (tok[0] == "." and len(tok) > 1):
            stated, i = _digit_mention(tokens, i)
        elif tok not in _WORD_STARTS:   # most words: _word_mention would give (None, i + 1)
            i += 1
            continue
        else:
            stated, i = _word_mention(tokens, i)
        if stated is not None:
            out.append(stated)
    return out


def _digit_mention(tokens: list[str], i: int) -> tuple[Stated | None, int]:
    """The number written in digits at ``tokens[i]`` (with a following %, collective or
    "times"), and the index after it."""
    tok = tokens[i]
    value = _digits(tok)
    i += 1
    if value is None:
        return None, i
    words = [tok]
    values = {value}
    nxt = tokens[i] if i < len(tokens) else ""
    pair = " ".join(tokens[i:i + 2])
    if nxt == "%" or nxt == "percent" or pair == "per cent":
        values.add(value / 100)
        i += 2 if pair == "per cent" else 1
        words.append("%")
    elif nxt in _COLLECTIVES:
        values.add(value * _COLLECTIVES[nxt])
        words.append(nxt)
        i += 1
    elif nxt == "times":
        words.append(nxt)
        i += 1
    return Stated(frozenset(map(_key, values)), " ".join(words).replace(" %", "%"), True), i


def _word_mention(tokens: list[str], i: int) -> tuple[Stated | None, int]:
    """The number written in words at ``tokens[i]`` (a cardinal, with a following fraction,
    collective or percent; or a fraction, multiplicative or collective word), and the index
    after it."""
    value, used = _cardinal(tokens, i)
    if used:
        words = tokens[i:i + used]
        i += used
        nxt = tokens[i] if i < len(tokens) else ""
        values = {value}
        if nxt in _FRACTIONS and value < _FRACTIONS[nxt]:
            values = {value / _FRACTIONS[nxt]}
            words.append(nxt)
            i += 1
        elif nxt in _COLLECTIVES:
            values.add(value * _COLLECTIVES[nxt])
            words.append(nxt)
            i += 1
        elif nxt in _PERCENT or " ".join(tokens[i:i + 2]) == "per cent":
            values.add(value / 100)
            words.append(nxt)
            i += 1 if nxt in _PERCENT else 2
        return Stated(frozenset(map(_key, values)), " ".join(words), False), i
    tok = tokens[i]
    article = i > 0 and tokens[i - 1] in ("a", "an", "one")
    phrase = (tokens[i - 1] + " " + tok) if article else tok
    stated = None
    if tok in _FRACTIONS:
        den = _FRACTIONS[tok]
        values = {1 / den} if den == 2 or article else {1 / den, den}
        stated = Stated(frozenset(map(_key, values)), phrase, False)
    elif tok in _MULTIPLICATIVES:
        stated = Stated(frozenset({_key(_MULTIPLICATIVES[tok])}), tok, False)
    elif tok in _COLLECTIVES and (article or tok not in ("score", "couple")):
        stated = Stated(frozenset({_key(_COLLECTIVES[tok])}), phrase, False)
    return stated, i + 1


def _cardinal(tokens: list[str], i: int) -> tuple[float, int]:
    """The number written in words from ``tokens[i]`` ("three hundred and five"), and how many
    tokens it takes (0 when there is none). "a hundred" counts; a bare "a" does not."""
    total, current, used, seen = 0, 0, 0, False
    j = i
    if j + 1 < len(tokens) and tokens[j] in ("a", "an") and tokens[j + 1] in _SCALES:
        current, j, seen = 1, j + 1, True
    while j < len(tokens):
        tok = tokens[j]
        if tok in _UNITS:
            if seen and current % 10 and current < 100:
                break                       # "two three": two numbers
            current += _UNITS[tok]
        elif tok in _TENS:
            if seen and current % 100:
                break
            current += _TENS[tok]
        elif tok in _SCALES and seen:
            scale = _SCALES[tok]
            if scale == 100:
                current = max(current, 1) * 100
            else:
                total += max(current, 1) * scale
                current = 0
        elif tok == "and" and seen and j + 1 < len(tokens) and (
                tokens[j + 1] in _UNITS or tokens[j + 1] in _TENS) and current >= 100:
            j += 1
            continue
        else:
            break
        seen = True
        j += 1
        used = j - i
    return float(total + current), used


@lru_cache(maxsize=1 << 16)
def script_of(text: str) -> str:
    """The writing system most of the letters of ``text`` belong to ("LATIN", "CYRILLIC", "CJK",
    ...); "" for a text without letters."""
    if text.isascii():
        return "LATIN" if any(ch.isalpha() for ch in text) else ""
    counts: dict[str, int] = {}
    for ch in text:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            script = name.split(" ")[0] if name else ""
            if script in ("HIRAGANA", "KATAKANA"):
                script = "CJK"
            counts[script] = counts.get(script, 0) + 1
    return max(counts, key=lambda s: counts[s]) if counts else ""


def same_script(a: str, b: str) -> bool:
    """Whether two texts are written in one script (or either has no letters)."""
    sa, sb = script_of(a), script_of(b)
    return not sa or not sb or sa == sb


def _unmatched(mine: tuple[Stated, ...], taken: set[int], other_words: set[str]
               ) -> list[str]:
    """The firm numbers of one side the other does not match (a 1 the other side says as
    "a", "an", "each", ... is matched)."""
    return [m.text for k, m in enumerate(mine) if k not in taken and m.firm
            and (m.values != {1.0} or not other_words & _ONE)]


def _one_to_one(ma: tuple[Stated, ...], mb: tuple[Stated, ...]) -> dict[int, int]:
    """Match mentions one to one: each matches at most one of the other side ("4 eggs in 4
    weeks" is not "4 eggs in 6 weeks"); the same spelling first, then any equal value."""
    partner_a: dict[int, int] = {}
    used: set[int] = set()
    for same_text in (True, False):
        for x, m in enumerate(ma):
            if x in partner_a:
                continue
            for y, o in enumerate(mb):
                if y not in used and m.values & o.values and (
                        not same_text or m.text.lower() == o.text.lower()):
                    partner_a[x] = y
                    used.add(y)
                    break
    return partner_a


@lru_cache(maxsize=1 << 18)
def compare(a: str, b: str) -> Evidence:
    """The evidence the numbers of ``a`` and ``b`` give that they state the same problem."""
    if not same_script(a, b):
        return Evidence(0.0)
    ma, mb = mentions(a), mentions(b)
    words = ({w.lower() for w in _TOKEN.findall(a)}, {w.lower() for w in _TOKEN.findall(b)})
    partner_a = _one_to_one(ma, mb)
    used = set(partner_a.values())
    equivalences: list[str] = []
    matched = 0
    for x, y in partner_a.items():
        m, o = ma[x], mb[y]
        if m.firm or o.firm:
            matched += 1
        if m.text.lower() != o.text.lower() and m.digits != o.digits:
            pair = f"{m.text} = {o.text}" if m.digits else f"{o.text} = {m.text}"
            if pair not in equivalences:
                equivalences.append(pair)
    unmatched = (_unmatched(ma, set(partner_a), words[1]), _unmatched(mb, used, words[0]))
    differing = tuple(unmatched[0] + unmatched[1])
    if unmatched[0] and unmatched[1]:
        return Evidence(-1.0, tuple(equivalences), differing)
    if matched == 0:
        return Evidence(0.0, (), differing)
    if differing:
        return Evidence(0.5, tuple(equivalences), differing)
    return Evidence(1.0, tuple(equivalences))


# ---- numbers as written: the cheap readings other stages use ------------------------------

# A run of digits, with decimal or thousands separators: how a text writes a number in digits.
DIGITS = re.compile(r"\d+(?:[.,]\d+)*|\.\d+")
# Number words count as their digits; "one" does not (it is as often a pronoun or article).
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split(), start=0) if i > 1}
_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)


def numbers_of(text: str) -> frozenset[str]:
    """The numbers a text mentions (digits, or a number word from two to twenty), normalized."""
    found = set()
    for raw in DIGITS.findall(text):
        value = raw.replace(",", "")
        try:
            number = float(value)
        except ValueError:
            continue
        found.add(f"{number:g}")
    found.update(_NUMBER_WORDS[w.lower()] for w in _WORD.findall(text))
    return frozenset(found)


# An answer's number: an optional sign and currency, digits with separators, an optional
# denominator ("-3", "$1,200.50", "3/4"); ``matching.final_number`` takes the last one.
NUMBER_IN_ANSWER = re.compile(r"(?<![\w.])([-−])?\$?\s?(\d[\d,]*(?:\.\d+)?|\.\d+)(?:\s*/\s*(\d+))?")
