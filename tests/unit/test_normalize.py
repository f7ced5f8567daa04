"""Normalization for exact matching: what makes two questions the same, and what does not."""

from hypothesis import given, settings
from hypothesis import strategies as st

from eval_firewall.text.normalize import normalize


def test_case_width_punctuation_and_whitespace_do_not_matter():
    assert normalize("Ｈｏｗ  many\tAPPLES, does   Tom have?!") == "how many apples does tom have"
    assert normalize("STRASSE") == normalize("straße")
    assert normalize("A deep-sea monster.") == normalize("a deep sea monster")
    assert normalize("“Quoted”… text") == normalize('"quoted" text')


def test_arithmetic_operators_make_questions_different():
    assert normalize("What is 5 + 3?") != normalize("What is 5 - 3?")
    assert normalize("What is 5 × 3?") == normalize("what is 5*3")
    assert normalize("What is 5 − 3?") == normalize("What is 5-3?")
    assert normalize("Is 7 > 4?") != normalize("Is 7 < 4?")
    assert normalize("It costs 50%") != normalize("It costs 50")
    assert normalize("1/2 of the cake") != normalize("1 2 of the cake")


@given(st.text(max_size=60))
def test_normalizing_twice_changes_nothing(text):
    once = normalize(text)
    assert normalize(once) == once


@given(st.text(max_size=60))
def test_output_is_tokens_separated_by_single_spaces(text):
    out = normalize(text)
    assert out == out.strip()
    assert "  " not in out


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=60))
def test_ascii_fast_path_equals_the_general_definition(text):
    from eval_firewall.text.normalize import _general

    assert normalize(text) == _general(text)


# ASCII made of what the bulk path treats specially: letters either side of hyphens, digits,
# operators, punctuation runs, controls, tabs and newlines.
_ASCII_PARTS = st.sampled_from(["a", "Z", "q", "7", "0", "-", "--", "+", "*", "/", "=", "<", ">",
                                "%", "^", "_", ".", "?!", "...", "\t", "\n", "\r", " ", "  ",
                                "\x00", "\x01", "\x1c", "\x1f", "\x7f", "'", '"', "\\", "(", ")"])
_ASCII_TEXT = st.one_of(st.lists(_ASCII_PARTS, max_size=30).map("".join),
                        st.text(alphabet=st.characters(max_codepoint=127), max_size=60))


@settings(deadline=None)   # the first call imports pyarrow.compute
@given(st.lists(st.one_of(_ASCII_TEXT, st.text(max_size=40)), max_size=30))
def test_normalize_many_equals_normalize_of_each(texts):
    from eval_firewall.text.normalize import normalize_many

    assert normalize_many(texts) == [normalize(t) for t in texts]


def test_normalize_many_chains_of_hyphens_and_mixed_rows():
    from eval_firewall.text.normalize import normalize_many

    texts = ["a-b-c-d-e-f", "x-y", "-a-", "5-3-b-c", "Ünï-côdé", "", "A-B--C---D", "a-" * 50,
             " " * 20 + "x-y", "?!" * 9 + "+5", "  \t- a",
             "e\u0301", "\u0301a", "ΣΑΣ ς", "ﬁ-ﬂ", "x\x00y", "é-", "-é", "½ × 3", "Å\u0327"]
    out = normalize_many(texts)
    assert out == [normalize(t) for t in texts]
    assert out[0] == "a b c d e f" and out[4] == normalize("Ünï-côdé")
    without_nul = [t for t in texts if "\x00" not in t]    # the non-ASCII texts joined
    assert normalize_many(without_nul) == [normalize(t) for t in without_nul]


def test_normalize_many_over_several_chunks_of_bytes():
    from eval_firewall.text.normalize import _CHUNK_BYTES, normalize_many

    base = ["Tom-and-Jerry ate 3-2=1 apples!", "-x-", "Ünï-côdé?", "", "a-b-c-d."]
    texts = [f"{base[i % len(base)]} #{i}-th row-{i % 7}" for i in range(3 * _CHUNK_BYTES // 30)]
    assert sum(map(len, texts)) > 2 * _CHUNK_BYTES
    assert normalize_many(texts) == [normalize(t) for t in texts]


def test_normalize_array_of_chunks_and_slices():
    import pyarrow as pa

    from eval_firewall.text.normalize import normalize_array

    texts = ["Ünï-côdé!", "a-b", "", "5×3=15", "Tom's", "x-ÿ", "ΣΑΣ"] * 3
    chunked = pa.chunked_array([pa.array(texts[:8]).slice(2), pa.array(texts[8:])])
    expected = [normalize(t) for t in texts[2:8] + texts[8:]]
    assert normalize_array(chunked).to_pylist() == expected
