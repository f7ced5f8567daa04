"""JSONL read through pyarrow's JSON reader gives exactly the rows, problems and errors of the
line-by-line Python path, or is not used: ordinary files take it, hostile ones never differ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import gsm8k
from eval_firewall.config import parse_config
from eval_firewall.datasets import iter_rows, load_dataset
from eval_firewall.datasets.columnar import WHITESPACE, read_columns
from eval_firewall.errors import UserError
from eval_firewall.rows import RowProblem

DATASET = """\
datasets:
  - name: tr
    role: eval
    paths: ['data/*.jsonl']
    text: {text}
{extra}
limits: {{max_row_bytes: 4000, max_json_depth: 8}}
"""


def configure(root: Path, text: str = "[question]", extra: str = "    label: answer\n"
              "    id: id\n    provenance: {label_source: src, generator: gen}"):
    config = parse_config(DATASET.format(text=text, extra=extra), source=".eval-firewall.yml",
                          root=root)
    return config, config.datasets[0]


def outcome(load):
    """(rows, problems) or the one-line error of a way of reading."""
    try:
        return load()
    except UserError as exc:
        return str(exc)


def both(root: Path, content: bytes, **kw):
    """The file read by load_dataset (fast path when it applies) and by the exact path alone;
    and whether the fast path took it."""
    path = root / "data/a.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    config, ds = configure(root, **kw)

    def fast():
        loaded = load_dataset(config, ds)
        return loaded.rows, loaded.problems

    def exact():
        items = list(iter_rows(config, ds))
        return ([i for i in items if not isinstance(i, RowProblem)],
                [i for i in items if isinstance(i, RowProblem)])

    taken = outcome(lambda: read_columns(path, ds, config.limits, "data/a.jsonl") is not None)
    return outcome(fast), outcome(exact), taken


def jsonl(records, end: bytes = b"\n") -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + end for r in records)


QUESTIONS = [r["question"] for r in gsm8k("test", 6)]


def test_an_ordinary_file_takes_the_fast_path_and_gives_the_same_rows(tmp_path):
    records = [{"id": f"q{i}", "question": q, "answer": str(i), "src": " human ", "gen": None,
                "meta": {"x": [1, 2]}} for i, q in enumerate(QUESTIONS)]
    records[2]["question"] = "Ünïcode\u2028 \\ \"quoted\" \x00 \u3000 – 5−3"
    records[3]["answer"] = "  "
    fast, exact, taken = both(tmp_path, b"\xef\xbb\xbf" + jsonl(records[:3]) + b"\n\n"
                              + jsonl(records[3:])[:-1])
    assert taken is True
    assert fast == exact and len(fast[0]) == 6
    assert [r.line for r in fast[0]] == [1, 2, 3, 6, 7, 8]
    assert fast[0][0].provenance.label_source == "human" and fast[0][3].label is None


@pytest.mark.parametrize("values", [
    {"id": 7, "answer": 12, "src": True},
    {"id": True, "answer": False, "src": -3},
    {"id": -9223372036854775808, "answer": 9223372036854775807, "src": ""},
    {"answer": None, "src": "\u3000x\t"},
])
def test_ids_labels_and_provenance_of_every_type_read_the_same(tmp_path, values):
    records = [{"question": q, **values} for q in QUESTIONS]
    fast, exact, taken = both(tmp_path, jsonl(records))
    assert fast == exact
    assert taken is True or "id" not in values


@pytest.mark.parametrize("content", [
    # rows that are problems: the whole file takes the exact path
    b'{"id": "a", "question": "ok"}\n{"id": "b"}\n',
    b'{"id": "a", "question": "ok"}\n{"id": "b", "question": null}\n',
    b'{"id": "a", "question": "ok"}\n{"id": "b", "question": 5}\n',
    b'{"id": "a", "question": "ok"}\n{"id": "b", "question": " \\u3000\\n"}\n',
    b'{"id": "a", "question": "ok"}\n{"id": "", "question": "x"}\n',
    b'{"id": "a", "question": "ok"}\n{"question": "x"}\n',
    b'{"id": "a", "question": "ok"}\n{"id": {"k": 1}, "question": "x"}\n',
    b'{"id": 1.5, "question": "ok"}\n',
    b'{"id": "a", "question": "ok", "answer": 1.5}\n',
    b'{"id": "a", "question": "ok", "answer": 1}\n{"id": "b", "question": "x", "answer": "1"}\n',
    b'{"id": "a", "question": "ok", "answer": [1]}\n',
    b'{"id": "a", "question": "ok", "answer": 123456789012345678901234567890}\n',
    b'{"id": "a", "question": "ok", "answer": NaN}\n',
    # numbers and literals
    b'{"id": "a", "question": "ok", "x": 123456789012345678901234567890}\n',
    b'{"id": "a", "question": "ok", "x": NaN}\n{"id": "b", "question": "y", "x": -Infinity}\n',
    b'{"id": "a", "question": "ok", "x": Inf}\n',
    b'{"id": "a", "question": "ok", "x": -Inf}\n',
    b'{"id": "a", "question": "ok", "x": -NaN}\n',
    b'{"id": "a", "question": "ok", "x": [1, -Inf]}\n',
    b'{"id": "a", "question": "Inf, NaN: -Inf"}\n',
    b'{"id": "a", "question": "ok", "x": 1e400}\n',
    # nesting
    b'{"id": "a", "question": "ok", "x": [[[[[[[[[[1]]]]]]]]]]}\n',
    b'{"id": "a", "question": "ok", "x": [[[[[[1]]]]]]}\n',
    b'{"id": "a", "question": "[[[[[[[[[[[[{{{{{{{"}\n',
    # one object per line
    b'{"id": "a", "question": "ok"}{"id": "b", "question": "x"}\n',
    b'{"id": "a", "question": "ok"} \t{"id": "b", "question": "x"}\n',
    b'{"id": "a", "question": "ok"} x\n',
    b'{"id": "a", "question": "ok"}\n[1]\n"s"\n5\nnull\n',
    b'{"id": "a",\n"question": "ok"}\n',
    b'{"id": "a", "question": "ok"}\n  \n\t{"id": "b", "question": "x"}\n',
    b'{"id": "a", "question": "ok"}\r\n{"id": "b", "question": "x"}\r\n',
    b'{"id": "a", "question": "ok"}\r{"id": "b", "question": "x"}\r',
    b'{"id": "a", "question": "ok"}\n\x0c\n',
    b'{"id": "a", "question": "ok",}\n',
    b'{"id": "a", "question": "ok"\n',
    # duplicate and escaped keys: Python's json keeps the last
    b'{"id": "a", "question": "one", "question": "two"}\n',
    b'{"id": "a", "question": "ok", "answer": "1", "\\u0061nswer": "2"}\n',
    b'{"id": "a", "question": "ok", "x": 1, "x": "y"}\n',
    b'{"\\u0069d": "a", "question": "ok"}\n',
    # encodings and strings
    b'{"id": "a", "question": "ok", "x": "\xff"}\n',
    b'{"id": "a", "question": "ok\xc3"}\n',
    b'{"id": "a", "question": "ok", "x": "\xed\xa0\x80"}\n',
    b'{"id": "a", "question": "\\ud800"}\n',
    b'{"id": "a", "question": "\\ud83d\\ude00 \\u00e9"}\n',
    b'{"id": "a", "question": "tab\there"}\n',
    b'\xef\xbb\xbf\xef\xbb\xbf{"id": "a", "question": "ok"}\n',
    # lines over the row limit (4000 bytes here), and a Git LFS pointer
    b'{"id": "a", "question": "ok"}\n{"id": "b", "question": "' + b"x" * 5000 + b'"}\n',
    b'{"id": "b", "question": "' + b"x" * 3960 + b'"}\n',
    b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n",
    b"",
    b"\n\n",
])
@pytest.mark.parametrize("after_a_good_line", [False, True])
def test_hostile_files_read_exactly_as_the_exact_path_reads_them(tmp_path, content,
                                                                 after_a_good_line):
    if after_a_good_line:       # the first row is the one whose types are taken
        content = b'{"id": "z", "question": "a good first row", "answer": "1"}\n' + content
    fast, exact, _ = both(tmp_path, content, extra="    id: id\n    label: answer")
    assert fast == exact


def test_a_file_over_the_size_limit_is_the_same_error(tmp_path):
    path = tmp_path / "data/a.jsonl"
    path.parent.mkdir()
    path.write_bytes(jsonl([{"id": "a", "question": "x" * 100}] * 20))
    config = parse_config(DATASET.format(text="[question]", extra="").replace(
        "max_json_depth: 8", "max_json_depth: 8, max_file_bytes: 1000"),
        source=".eval-firewall.yml", root=tmp_path)
    ds = config.datasets[0]
    assert read_columns(path, ds, config.limits, "data/a.jsonl") is None
    fast = outcome(lambda: load_dataset(config, ds))
    assert fast == outcome(lambda: list(iter_rows(config, ds))) and "max_file_bytes" in fast


def test_several_text_fields_and_dotted_paths(tmp_path):
    records = [{"question": q, "ctx": f"c{i}", "meta": {"src": "h"}} for i, q in
               enumerate(QUESTIONS)]
    fast, exact, taken = both(tmp_path, jsonl(records), text="[ctx, question]", extra="")
    assert fast == exact and taken is True and fast[0][0].text.startswith("c0\n")
    fast, exact, taken = both(tmp_path, jsonl(records), extra="    provenance: {label_source: "
                              "meta.src}")
    assert fast == exact and taken is False and fast[0][0].provenance.label_source == "h"


def test_whitespace_is_pythons():
    assert set(WHITESPACE) == {chr(c) for c in range(0x110000) if chr(c).isspace()}


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
                     st.floats(allow_nan=True), st.text(max_size=8),
                     st.sampled_from(["", " ", "\u3000", "a b", " x "]))
_VALUES = st.one_of(_SCALARS, st.lists(_SCALARS, max_size=2),
                    st.dictionaries(st.sampled_from(["k", "question"]), _SCALARS, max_size=2))
_RECORDS = st.fixed_dictionaries(
    {"question": st.one_of(st.text(min_size=1, max_size=20), _SCALARS)},
    optional={"id": _VALUES, "answer": _VALUES, "src": _VALUES, "gen": _VALUES,
              "other": _VALUES})


@settings(deadline=None, max_examples=60,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(_RECORDS, st.just("blank")), min_size=1, max_size=8),
       st.sampled_from([(", ", ": "), (",", ":")]))
def test_any_records_read_the_same_both_ways(tmp_path, records, separators):
    content = b"".join(b"\n" if r == "blank" else
                       json.dumps(r, separators=separators).encode() + b"\n" for r in records)
    fast, exact, _ = both(tmp_path, content)
    assert fast == exact
