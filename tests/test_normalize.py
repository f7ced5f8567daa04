"""Normalization for exact matching: the ASCII fast path must equal the general definition."""

import re
import unicodedata

from hypothesis import given, strategies as st

from eval_firewall.normalize import normalize

_GENERAL = re.compile(r"[\W_]+", re.UNICODE)


def reference(text: str) -> str:
    return _GENERAL.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
def test_ascii_fast_path_matches_the_definition(text):
    assert normalize(text) == reference(text)


@given(st.text(max_size=40))
def test_any_text_matches_the_definition(text):
    assert normalize(text) == reference(text)


def test_case_width_punctuation_and_whitespace_do_not_matter():
    assert normalize("Ｈｏｗ  many\tAPPLES, does   Tom have?!") == "how many apples does tom have"
    assert normalize("STRASSE") == normalize("straße")
