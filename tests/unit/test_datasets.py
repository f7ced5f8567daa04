"""Dataset readers: every format, 1-based locations, dotted fields, bad rows, streaming."""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import gsm8k, write_jsonl
from eval_firewall.config import parse_config
from eval_firewall.datasets import RowProblem, iter_rows, load_dataset
from eval_firewall.datasets.card import find_card, read_card
from eval_firewall.errors import UserError

QUESTIONS = [r["question"] for r in gsm8k("test", 4)]
ANSWERS = [r["answer"] for r in gsm8k("test", 4)]


def load(root: Path, pattern: str, extra: str = "", text: str = "[question]", *,
         keep: bool = False):
    """Load one eval dataset whose files match ``pattern`` under ``root``."""
    config = parse_config(
        f"datasets:\n  - name: ev\n    role: eval\n    paths: ['{pattern}']\n"
        f"    text: {text}\n{extra}", source=".eval-firewall.yml", root=root)
    return load_dataset(config, config.datasets[0], keep_record=keep)


def load_error(root: Path, pattern: str, extra: str = "", text: str = "[question]") -> str:
    with pytest.raises(UserError) as info:
        load(root, pattern, extra, text)
    return str(info.value)


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def where(d) -> list[tuple[str, int, str]]:
    return [(r.path, r.line, r.text) for r in d.rows]


# --- JSONL -------------------------------------------------------------------------------

def test_jsonl_lines_are_one_based_and_count_blank_lines(tmp_path: Path):
    lines = [json.dumps({"question": q, "answer": a}) for q, a in zip(QUESTIONS, ANSWERS)]
    write(tmp_path / "data/eval.jsonl",
          "\n".join([lines[0], "", "   ", lines[1], lines[2]]) + "\n")
    d = load(tmp_path, "data/*.jsonl", "    label: answer\n")
    assert where(d) == [("data/eval.jsonl", 1, QUESTIONS[0]), ("data/eval.jsonl", 4, QUESTIONS[1]),
                        ("data/eval.jsonl", 5, QUESTIONS[2])]
    assert d.rows[1].label == ANSWERS[1].strip()
    assert d.rows[0].row_id == "data/eval.jsonl:1"  # default id: the row's location
    assert d.problems == []
    assert d.files == ["data/eval.jsonl"]


def test_jsonl_with_crlf_line_endings(tmp_path: Path):
    write(tmp_path / "e.jsonl", "\r\n".join(json.dumps({"question": q}) for q in QUESTIONS[:2])
          + "\r\n")
    assert [(r.line, r.text) for r in load(tmp_path, "e.jsonl").rows] == \
        [(1, QUESTIONS[0]), (2, QUESTIONS[1])]


def test_jsonl_gz_reads_like_jsonl(tmp_path: Path):
    body = "".join(json.dumps({"question": q}) + "\n" for q in QUESTIONS)
    (tmp_path / "e.jsonl.gz").write_bytes(gzip.compress(body.encode("utf-8")))
    d = load(tmp_path, "*.jsonl.gz")
    assert where(d) == [("e.jsonl.gz", i + 1, q) for i, q in enumerate(QUESTIONS)]


@pytest.mark.parametrize("name, body", [
    ("e.csv.gz", "question,answer\n" + "".join(f'"{q}",x\n' for q in QUESTIONS)),
    ("e.json.gz", json.dumps([{"question": q} for q in QUESTIONS], indent=1)),
])
def test_other_gzipped_formats(tmp_path: Path, name: str, body: str):
    (tmp_path / name).write_bytes(gzip.compress(body.encode("utf-8")))
    d = load(tmp_path, name)
    assert [r.text for r in d.rows] == QUESTIONS
    assert [r.line for r in d.rows] == ([2, 3, 4, 5] if "csv" in name else [2, 5, 8, 11])


def test_bad_jsonl_rows_are_problems_with_file_line_and_field(tmp_path: Path):
    write(tmp_path / "e.jsonl", "\n".join([
        json.dumps({"question": QUESTIONS[0]}),
        '{"question": "unterminated',
        json.dumps({"answer": "no question"}),
        json.dumps({"question": 42}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"question": "   "}),
        json.dumps({"question": None}),
        json.dumps({"question": QUESTIONS[1]}),
    ]) + "\n")
    d = load(tmp_path, "e.jsonl")
    assert [(r.line, r.text) for r in d.rows] == [(1, QUESTIONS[0]), (8, QUESTIONS[1])]
    assert [(p.path, p.line, p.field, p.message) for p in d.problems] == [
        ("e.jsonl", 2, None, "invalid JSON: Unterminated string starting at (column 14)"),
        ("e.jsonl", 3, "question", "text field is missing"),
        ("e.jsonl", 4, "question", "text field must be a string, got int"),
        ("e.jsonl", 5, None, "expected a JSON object, got an array"),
        ("e.jsonl", 6, "question", "text field is empty"),
        ("e.jsonl", 7, "question", "text field is missing"),
    ]
    # Nothing dropped: every non-blank line is a row or a problem.
    assert len(d.rows) + len(d.problems) == 8


def test_a_utf8_byte_order_mark_is_not_data(tmp_path: Path):
    write(tmp_path / "e.jsonl", b"\xef\xbb\xbf" + json.dumps({"question": "q"}).encode() + b"\n")
    write(tmp_path / "e.csv", b"\xef\xbb\xbfquestion,answer\nq,a\n")
    assert [(r.line, r.text) for r in load(tmp_path, "e.jsonl").rows] == [(1, "q")]
    assert [(r.line, r.text) for r in load(tmp_path, "e.csv").rows] == [(2, "q")]


# --- JSON arrays -------------------------------------------------------------------------

def test_json_array_rows_point_at_the_line_where_each_object_starts(tmp_path: Path):
    text = ("[\n"
            f"  {json.dumps({'question': QUESTIONS[0]})},\n"
            "  {\n"
            f"    \"question\": {json.dumps(QUESTIONS[1])},\n"
            "    \"answer\": \"x\"\n"
            "  },\n"
            "\n"
            f"  {json.dumps({'question': QUESTIONS[2]})}, "
            f"{json.dumps({'question': QUESTIONS[3]})},\n"
            "  7\n"
            "]\n")
    write(tmp_path / "e.json", text)
    d = load(tmp_path, "e.json")
    assert [(r.line, r.text) for r in d.rows] == \
        [(2, QUESTIONS[0]), (3, QUESTIONS[1]), (8, QUESTIONS[2]), (8, QUESTIONS[3])]
    assert [(p.line, p.message) for p in d.problems] == \
        [(9, "expected a JSON object, got a number")]


def test_json_array_without_a_comma_between_objects(tmp_path: Path):
    write(tmp_path / "e.json", '[\n  {"question": "a"}\n  {"question": "b"}\n]\n')
    d = load(tmp_path, "e.json")
    assert [r.text for r in d.rows] == ["a"]
    assert [(p.line, p.message) for p in d.problems] == [
        (3, "invalid JSON: expected ',' or ']' after an array element; the rest of the file "
            "was not read")]


def test_json_that_is_not_an_array_or_is_broken(tmp_path: Path):
    write(tmp_path / "obj.json", "\n" + json.dumps({"question": "q"}))
    d = load(tmp_path, "obj.json")
    assert [(p.line, p.message) for p in d.problems] == \
        [(2, "expected a JSON array of objects at the top level")]
    write(tmp_path / "broken.json", '[\n  {"question": "a"},\n  {"question": "b",}\n]\n')
    d = load(tmp_path, "broken.json")
    assert [r.line for r in d.rows] == [2]
    assert [(p.line, p.message) for p in d.problems] == \
        [(3, "invalid JSON: Expecting property name enclosed in double quotes (column 20); "
             "the rest of the file was not read")]


# --- CSV / TSV ---------------------------------------------------------------------------

def test_csv_lines_count_the_header_and_quoted_newlines(tmp_path: Path):
    path = tmp_path / "e.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["question", "answer"])
        w.writerow([QUESTIONS[0], ANSWERS[0]])     # GSM8K answers span several lines
        w.writerow([QUESTIONS[1], "18"])
        w.writerow([])                              # a blank line
        w.writerow(["What is\n2 + 2?", "4"])
    physical = re.split(r"\r\n|\r|\n", path.read_bytes().decode("utf-8"))
    d = load(tmp_path, "e.csv", "    label: answer\n")
    answer_lines = ANSWERS[0].count("\n")
    assert [(r.line, r.text) for r in d.rows] == [
        (2, QUESTIONS[0]), (3 + answer_lines, QUESTIONS[1]), (5 + answer_lines, "What is\n2 + 2?")]
    # The reported line really is where the record starts in the file.
    assert physical[d.rows[1].line - 1].startswith(QUESTIONS[1][:20])
    assert physical[d.rows[2].line - 1] == '"What is'
    assert d.rows[0].label == ANSWERS[0].strip()


def test_csv_row_with_the_wrong_number_of_columns_is_a_problem(tmp_path: Path):
    write(tmp_path / "e.csv", "question,answer\nq1,a1\nq2\nq3,a3,extra\nq4,a4\n")
    d = load(tmp_path, "e.csv")
    assert [(r.line, r.text) for r in d.rows] == [(2, "q1"), (5, "q4")]
    assert [(p.line, p.message) for p in d.problems] == \
        [(3, "expected 2 columns, got 1"), (4, "expected 2 columns, got 3")]


def test_csv_empty_cell_and_long_field(tmp_path: Path):
    long = "x" * 200_000  # above the csv module's default 128 KiB field limit
    write(tmp_path / "e.csv", f'question,answer\n,a\n"{long}",b\nq3,c\n')
    d = load(tmp_path, "e.csv")
    assert [(r.line, len(r.text)) for r in d.rows] == [(3, 200_000), (4, 2)]
    assert [(p.line, p.field, p.message) for p in d.problems] == \
        [(2, "question", "text field is empty")]


def test_tsv(tmp_path: Path):
    write(tmp_path / "e.tsv", "id\tquestion\n" + "".join(
        f"r{i}\t{q}\n" for i, q in enumerate(QUESTIONS[:3])))
    d = load(tmp_path, "e.tsv", "    id: id\n")
    assert [(r.line, r.row_id, r.text) for r in d.rows] == \
        [(2, "r0", QUESTIONS[0]), (3, "r1", QUESTIONS[1]), (4, "r2", QUESTIONS[2])]


def test_csv_missing_the_text_column_is_an_error(tmp_path: Path):
    write(tmp_path / "data/e.csv", "prompt,answer\nq,a\n")
    assert load_error(tmp_path, "data/e.csv") == \
        "data/e.csv:1: field 'question': column is missing from the header " \
        "(columns: prompt, answer)"


def test_empty_csv_has_no_rows(tmp_path: Path):
    write(tmp_path / "e.csv", "")
    d = load(tmp_path, "e.csv")
    assert d.rows == [] and d.problems == []


# --- Parquet -----------------------------------------------------------------------------

def test_parquet_rows_are_numbered_from_one_with_nested_fields(tmp_path: Path):
    table = pa.table({
        "question": QUESTIONS + [None],
        "meta": [{"label_source": "human", "verified_by": "ann"}] * 4 + [None],
        "unused": ["z" * 10] * 5,
    })
    pq.write_table(table, tmp_path / "e.parquet", row_group_size=2)
    d = load(tmp_path, "e.parquet", "    provenance:\n      label_source: meta.label_source\n"
             "      verified_by: meta.verified_by\n    format: parquet\n", keep=True)
    assert [(r.path, r.line, r.text) for r in d.rows] == \
        [("e.parquet", i + 1, q) for i, q in enumerate(QUESTIONS)]
    assert d.rows[2].provenance.label_source == "human"
    assert d.rows[2].provenance.verified_by == "ann"
    assert [(p.line, p.field, p.message) for p in d.problems] == \
        [(5, "question", "text field is missing")]
    # Only the configured columns are read.
    assert set(d.rows[0].record) == {"question", "meta"}


def test_parquet_text_of_the_wrong_type_and_missing_column(tmp_path: Path):
    pq.write_table(pa.table({"question": [1, 2]}), tmp_path / "ints.parquet")
    d = load(tmp_path, "ints.parquet")
    assert [(p.line, p.message) for p in d.problems] == \
        [(1, "text field must be a string, got int"), (2, "text field must be a string, got int")]
    pq.write_table(pa.table({"prompt": ["q"]}), tmp_path / "other.parquet")
    assert load_error(tmp_path, "other.parquet") == \
        "other.parquet: field 'question': column is missing from the header (columns: prompt)"


def test_a_file_that_is_not_parquet(tmp_path: Path):
    write(tmp_path / "data/e.parquet", "question\nnot parquet\n")
    message = load_error(tmp_path, "data/e.parquet")
    assert message.startswith("data/e.parquet: not a readable Parquet file: ")
    assert str(tmp_path) not in message


# --- fields, ids, labels -----------------------------------------------------------------

def test_dotted_paths_reach_nested_fields_and_list_items(tmp_path: Path):
    write_jsonl(tmp_path / "e.jsonl", [
        {"q": {"text": QUESTIONS[0], "context": "Context A"}, "choices": ["A", "B"],
         "meta": {"id": 7, "label": {"value": 18}}},
    ])
    d = load(tmp_path, "e.jsonl", "    label: meta.label.value\n    id: meta.id\n",
             text="[q.context, q.text, choices.1]")
    row = d.rows[0]
    assert row.text == f"Context A\n{QUESTIONS[0]}\nB"
    assert row.label == "18"
    assert row.row_id == "7"


def test_id_field_problems(tmp_path: Path):
    write_jsonl(tmp_path / "e.jsonl", [
        {"id": "a", "question": "q1"}, {"question": "q2"}, {"id": {"x": 1}, "question": "q3"},
        {"id": "", "question": "q4"}])
    d = load(tmp_path, "e.jsonl", "    id: id\n")
    assert [r.row_id for r in d.rows] == ["a"]
    assert [(p.line, p.field, p.message) for p in d.problems] == [
        (2, "id", "id field is missing"), (3, "id", "id must be a string or a number"),
        (4, "id", "id field is missing")]


def test_an_unpaired_surrogate_escape_is_a_problem_naming_its_field(tmp_path: Path):
    # JSON can escape half of a surrogate pair ("\ud800"); no UTF-8 text can hold one, so the
    # row could be neither normalized in bulk, cached nor written: a problem, not a row.
    write_jsonl(tmp_path / "e.jsonl", [
        {"id": "a", "question": "half \ud800 a pair", "answer": "1"},
        {"id": "b", "question": "a whole pair \U0001f600 is text", "answer": "2"},
        {"id": "c", "question": "q3", "answer": "\udfff"},
        {"id": "d\udc00", "question": "q4", "answer": "4"},
        {"id": "e", "question": "q5", "answer": "5", "src": "model \ud83d"}])
    assert "\\ud800" in (tmp_path / "e.jsonl").read_text(encoding="utf-8")   # as an escape
    d = load(tmp_path, "e.jsonl", "    id: id\n    label: answer\n    provenance:\n"
             "      label_source: src\n")
    assert [r.row_id for r in d.rows] == ["b"]
    assert [(p.line, p.field) for p in d.problems] == [
        (1, "question"), (3, "answer"), (4, "id"), (5, "src")]
    assert all("unpaired surrogate" in p.message for p in d.problems)


def test_label_and_provenance_values_become_text(tmp_path: Path):
    write_jsonl(tmp_path / "e.jsonl", [
        {"question": "q1", "answer": 3.5, "src": True, "by": "  "},
        {"question": "q2", "answer": ["a", "b"], "src": None},
    ])
    d = load(tmp_path, "e.jsonl", "    label: answer\n    provenance:\n      label_source: src\n"
             "      verified_by: by\n")
    assert [r.label for r in d.rows] == ["3.5", '["a", "b"]']
    assert d.rows[0].provenance.label_source == "true"
    assert d.rows[0].provenance.verified_by is None  # blank is not a verifier
    assert d.rows[1].provenance.is_empty


def test_records_are_kept_only_on_request(tmp_path: Path):
    write_jsonl(tmp_path / "e.jsonl", [{"question": "q", "extra": 1}])
    assert load(tmp_path, "e.jsonl").rows[0].record is None
    assert load(tmp_path, "e.jsonl", keep=True).rows[0].record == {"question": "q", "extra": 1}


def test_rows_of_several_files_come_in_file_then_line_order(tmp_path: Path):
    write_jsonl(tmp_path / "d/b.jsonl", [{"question": "b1"}, {"question": "b2"}])
    write_jsonl(tmp_path / "d/a.jsonl", [{"question": "a1"}])
    d = load(tmp_path, "d/*.jsonl")
    assert where(d) == [("d/a.jsonl", 1, "a1"), ("d/b.jsonl", 1, "b1"), ("d/b.jsonl", 2, "b2")]


# --- file-level errors -------------------------------------------------------------------

def test_format_from_the_name_or_the_config(tmp_path: Path):
    write(tmp_path / "e.txt", json.dumps({"question": "q"}) + "\n")
    assert load_error(tmp_path, "e.txt") == (
        "e.txt: cannot tell the file format from its name (use .jsonl, .jsonl.gz, .json, .csv, "
        ".tsv or .parquet, or set 'format' on the dataset in the config)")
    assert [r.text for r in load(tmp_path, "e.txt", "    format: jsonl\n").rows] == ["q"]


def test_git_lfs_pointer_says_so_and_how_to_fetch(tmp_path: Path):
    write(tmp_path / "data/e.jsonl", "version https://git-lfs.github.com/spec/v1\n"
          "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
          "size 12345\n")
    assert load_error(tmp_path, "data/e.jsonl") == (
        "data/e.jsonl:1: this is a Git LFS pointer file, not the data it points to (fetch the "
        "data with 'git lfs pull' (in GitHub Actions: actions/checkout with 'lfs: true'))")


@pytest.mark.parametrize("name", ["e.jsonl", "e.csv", "e.jsonl.gz", "e.json"])
def test_non_utf8_file_names_the_line(tmp_path: Path, name: str):
    good = "question\n" if name == "e.csv" else ""
    if name != "e.csv":
        good = "".join(json.dumps({"question": q}) + "\n" for q in QUESTIONS)
        bad = '{"question": "caf\xe9"}\n'
    else:
        good += "".join(f"q{i}\n" for i in range(4))
        bad = "caf\xe9\n"
    if name == "e.json":
        good, bad = "[\n", '{"question": "caf\xe9"}\n]\n'
    raw = good.encode("utf-8") + bad.encode("latin-1")
    if name.endswith(".gz"):
        raw = gzip.compress(raw)
    write(tmp_path / name, raw)
    line = {"e.json": 2, "e.csv": 6}.get(name, 5)
    column = 4 if name == "e.csv" else 18
    assert load_error(tmp_path, name) == \
        f"{name}:{line}: not UTF-8 text: byte 0xe9 at column {column} (save the file as UTF-8)"


def test_corrupt_gzip(tmp_path: Path):
    write(tmp_path / "e.jsonl.gz", gzip.compress(b'{"question": "q"}\n' * 100)[:30])
    assert load_error(tmp_path, "e.jsonl.gz").startswith("e.jsonl.gz: cannot read file: ")


# --- streaming ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["big.jsonl", "big.csv", "big.jsonl.gz"])
def test_rows_stream_before_the_rest_of_the_file_is_read(tmp_path: Path, name: str):
    """The first row arrives before the reader reaches a broken byte 1 MB further on."""
    header = "question\n" if name.endswith(".csv") else ""
    row = "q\n" if name.endswith(".csv") else json.dumps({"question": "q"}) + "\n"
    raw = (header + row * 100_000).encode("utf-8") + b"\xff\n"
    if name.endswith(".gz"):
        raw = gzip.compress(raw)
    write(tmp_path / name, raw)
    config = parse_config(f"datasets:\n  - name: ev\n    role: eval\n    paths: [{name}]\n"
                          "    text: question\n", source="c.yml", root=tmp_path)
    rows = iter_rows(config, config.datasets[0])
    first = next(rows)
    assert not isinstance(first, RowProblem) and first.text == "q"
    with pytest.raises(UserError, match=r"not UTF-8 text"):
        for _ in rows:
            pass


# --- dataset cards -----------------------------------------------------------------------

CARD = """---
language: [en]
annotations_creators:
  - machine-generated
license: mit
---
# My eval set
"""


def test_card_is_the_nearest_readme_with_front_matter(tmp_path: Path):
    write(tmp_path / "README.md", "# Project readme, no front matter\n")
    write(tmp_path / "data/README.md", CARD)
    write_jsonl(tmp_path / "data/eval/e.jsonl", [{"question": "q"}])
    d = load(tmp_path, "data/eval/*.jsonl")
    assert d.card is not None and d.card.path == "data/README.md"
    assert d.card.values("annotations_creators") == ["machine-generated"]
    assert d.card.key_lines["annotations_creators"] == 3
    assert d.card.key_lines["license"] == 5


def test_readme_without_front_matter_is_no_card(tmp_path: Path):
    write(tmp_path / "data/README.md", "# Just docs\n")
    write_jsonl(tmp_path / "data/e.jsonl", [{"question": "q"}])
    assert load(tmp_path, "data/*.jsonl").card is None
    assert find_card([tmp_path / "data/e.jsonl"], tmp_path) is None


def test_card_given_in_the_config(tmp_path: Path):
    write(tmp_path / "cards/eval.md", CARD)
    write_jsonl(tmp_path / "data/e.jsonl", [{"question": "q"}])
    d = load(tmp_path, "data/*.jsonl", "    card: cards/eval.md\n")
    assert d.card.path == "cards/eval.md"
    assert load_error(tmp_path, "data/*.jsonl", "    card: cards/none.md\n") == \
        ".eval-firewall.yml:6: field 'datasets[0].card': dataset card not found"


def test_broken_card_front_matter(tmp_path: Path):
    path = write(tmp_path / "README.md", "---\nannotations_creators: [machine-generated\n")
    with pytest.raises(UserError) as info:
        read_card(path, "README.md")
    assert str(info.value) == "README.md:1: front matter opened with '---' is never closed"
    write(tmp_path / "README.md", "---\nlicense: mit\nannotations_creators: [a\n---\n")
    with pytest.raises(UserError) as info:
        read_card(path, "README.md")
    assert str(info.value).startswith("README.md:3: invalid YAML front matter: ")
