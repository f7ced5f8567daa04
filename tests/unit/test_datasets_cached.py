"""Parsed data files are cached by content: a cached read equals a fresh one, edits are misses."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from conftest import git, git_commit, git_init, gsm8k, write_jsonl
from eval_firewall.cache import Cache
from eval_firewall.config import parse_config
from eval_firewall.datasets import load_dataset
from eval_firewall.incremental.git import clean_blobs

CONFIG = """\
datasets:
  - name: eval
    role: eval
    paths: ["data/*.{ext}"]
    text: [question]
    label: answer
    provenance: {{label_source: meta.source, generator: meta.gen}}
"""


def rows_of(tmp_path, ext, cache):
    config = parse_config(CONFIG.format(ext=ext), source=".eval-firewall.yml", root=tmp_path)
    return load_dataset(config, config.datasets[0], cache=cache)


def make_jsonl(tmp_path):
    rows = [r | {"meta": {"source": "human", "gen": None}} for r in gsm8k("test", 30)]
    rows[3]["meta"]["gen"] = "gpt-4o"
    path = write_jsonl(tmp_path / "data/a.jsonl", rows)
    with open(path, "a") as fh:
        fh.write("{not json\n")
    return path


def test_cached_read_equals_fresh_read(tmp_path):
    make_jsonl(tmp_path)
    cache = Cache(tmp_path / "cache")
    fresh = rows_of(tmp_path, "jsonl", None)
    first = rows_of(tmp_path, "jsonl", cache)
    assert cache.misses >= 1
    hits_before = cache.hits
    second = rows_of(tmp_path, "jsonl", cache)
    assert cache.hits == hits_before + 1
    assert second.rows == fresh.rows == first.rows
    assert second.problems == fresh.problems and len(fresh.problems) == 1
    assert second.rows[3].provenance.generator == "gpt-4o"
    assert second.norm[0] == first.norm[0] and second.norm[0].islower()


def test_parquet_rows_are_cached_too(tmp_path):
    (tmp_path / "data").mkdir()
    table = pa.table({"question": [r["question"] for r in gsm8k("test", 5)],
                      "answer": ["1", "2", "3", "4", "5"]})
    pq.write_table(table, tmp_path / "data/a.parquet")
    cache = Cache(tmp_path / "cache")
    first = rows_of(tmp_path, "parquet", cache)
    second = rows_of(tmp_path, "parquet", cache)
    assert [r.line for r in second.rows] == [1, 2, 3, 4, 5]
    assert second.rows == first.rows


def test_an_edited_file_is_a_miss(tmp_path):
    path = make_jsonl(tmp_path)
    cache = Cache(tmp_path / "cache")
    rows_of(tmp_path, "jsonl", cache)
    path.write_text(path.read_text().replace("Janet", "Janine", 1))
    edited = rows_of(tmp_path, "jsonl", cache)
    assert "Janine" in edited.rows[0].text


def test_a_changed_dataset_setting_is_a_miss(tmp_path):
    make_jsonl(tmp_path)
    cache = Cache(tmp_path / "cache")
    rows_of(tmp_path, "jsonl", cache)
    config = parse_config(CONFIG.format(ext="jsonl").replace("label: answer", "label: question"),
                          source="c.yml", root=tmp_path)
    relabelled = load_dataset(config, config.datasets[0], cache=cache)
    assert relabelled.rows[0].label == relabelled.rows[0].text


def test_a_corrupt_entry_is_reread_from_the_file(tmp_path):
    make_jsonl(tmp_path)
    cache = Cache(tmp_path / "cache")
    fresh = rows_of(tmp_path, "jsonl", cache)
    for entry in (tmp_path / "cache").rglob("*.bin"):
        entry.write_bytes(entry.read_bytes()[:-10])
    again = rows_of(tmp_path, "jsonl", cache)
    assert cache.rebuilt == 1
    assert again.rows == fresh.rows


def test_a_committed_unchanged_file_is_keyed_by_its_git_blob_and_an_edit_is_a_miss(tmp_path):
    git_init(tmp_path)
    path = make_jsonl(tmp_path)
    other = write_jsonl(tmp_path / "data/b.jsonl", gsm8k("train", 3))
    git_commit(tmp_path, "data")
    assert clean_blobs([path, other]) == {path: git(tmp_path, "rev-parse", "HEAD:data/a.jsonl"),
                                          other: git(tmp_path, "rev-parse", "HEAD:data/b.jsonl")}
    cache = Cache(tmp_path / "cache")
    first = rows_of(tmp_path, "jsonl", cache)
    hits = cache.hits
    assert rows_of(tmp_path, "jsonl", cache).rows == first.rows and cache.hits == hits + 2

    with open(path, "a") as fh:                 # edited, not committed: read again, not stale
        fh.write('{"question": "How many apples are left?", "answer": "3"}\n')
    assert clean_blobs([path, other]) == {other: git(tmp_path, "rev-parse", "HEAD:data/b.jsonl")}
    edited = rows_of(tmp_path, "jsonl", cache)
    [added] = [r for r in edited.rows if r.text == "How many apples are left?"]
    assert added.path == "data/a.jsonl" and added.line == 32
    assert len(edited.rows) == len(first.rows) + 1
    assert rows_of(tmp_path, "jsonl", cache).rows == edited.rows


def test_files_outside_a_repository_have_no_blob(tmp_path):
    path = make_jsonl(tmp_path)
    assert clean_blobs([path]) == {}
