"""The train index: `index build` / `index status`, audits reading it, and chunks that fail a
check (tampered, truncated, foreign, linked) rebuilt with one warning, never trusted."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_harness import invoke

from conftest import BASIC_CONFIG, git_commit, git_init, gsm8k, write_jsonl
from eval_firewall.cache import Cache
from eval_firewall.config import load_config
from eval_firewall.engine import run_audits
from eval_firewall.index import IndexStore, load_train
from eval_firewall.index.columns import IndexedRows
from eval_firewall.progress import Progress

TRAIN = gsm8k("train", 120)
TEST = gsm8k("test", 30)
CACHE = ".eval-firewall-cache"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Two train files (a.jsonl, b.jsonl) and an eval set holding one copy of a b.jsonl row."""
    git_init(tmp_path)
    write_jsonl(tmp_path / "data/train/a.jsonl", TRAIN[:80])
    write_jsonl(tmp_path / "data/train/b.jsonl", TRAIN[80:])
    evals = [dict(r) for r in TEST]
    evals[3]["question"] = TRAIN[100]["question"]
    evals[7]["question"] = TRAIN[10]["question"].replace(".", ",", 1) + " now"
    write_jsonl(tmp_path / "data/eval/eval.jsonl", evals)
    (tmp_path / ".eval-firewall.yml").write_text(BASIC_CONFIG)
    (tmp_path / ".gitignore").write_text(f"{CACHE}/\n")
    git_commit(tmp_path, "base")
    return tmp_path


def findings(root: Path, *args: str) -> list[tuple[str, int, str, str | None]]:
    done = invoke(root, "audit", "-q", "--format", "json", *args)
    assert done.exit_code in (0, 1), done.output
    report = json.loads(done.stdout)
    return sorted((f["path"], f["line"], f["rule"], (f.get("match") or {}).get("path"))
                  for f in report["findings"])


def chunk_dirs(root: Path) -> dict[str, Path]:
    """Chunk directory by the train file it was built from."""
    out = {}
    for d in (root / CACHE / "index" / "chunks").iterdir():
        if not d.name.startswith("."):
            out[json.loads((d / "MANIFEST.json").read_text())["source"]["path"]] = d
    return out


def test_build_status_and_audit_use_the_index(repo):
    built = invoke(repo, "index", "build", "-q")
    assert built.exit_code == 0, built.output
    assert "2 train file(s), 120 rows, 2 chunk(s) built" in built.stdout
    status = invoke(repo, "index", "status", "--verify")
    assert status.exit_code == 0, status.output
    assert "data/train/a.jsonl" in status.stdout and "80 rows" in status.stdout
    assert status.stdout.count("postings: containment, lexical") == 2
    assert status.stdout.rstrip().endswith("current")
    as_json = json.loads(invoke(repo, "index", "status", "--format", "json").stdout)
    assert as_json["current"] and [f["rows"] for f in as_json["files"]] == [80, 40]

    with_index = findings(repo)
    assert with_index == findings(repo, "--no-cache")        # the same findings as without
    assert ("data/eval/eval.jsonl", 4, "exact-duplicate", "data/train/b.jsonl") in with_index
    assert len(chunk_dirs(repo)) == 2                          # audit built nothing more


def test_audit_builds_what_is_missing_and_a_changed_file_only_its_chunk(repo):
    findings(repo)                                             # no `index build`: audit builds
    before = chunk_dirs(repo)
    assert set(before) == {"data/train/a.jsonl", "data/train/b.jsonl"}
    write_jsonl(repo / "data/train/b.jsonl", TRAIN[80:] + [TEST[0]])
    status = invoke(repo, "index", "status")
    assert status.exit_code == 1, status.output
    assert "data/train/b.jsonl" in status.stdout and "missing" in status.stdout
    assert "1 file(s) to build" in status.stdout
    built = invoke(repo, "index", "build", "-q")
    assert "1 chunk(s) built" in built.stdout
    after = chunk_dirs(repo)
    assert after["data/train/a.jsonl"] == before["data/train/a.jsonl"]
    found = findings(repo)
    assert ("data/eval/eval.jsonl", 1, "exact-duplicate", "data/train/b.jsonl") in found
    assert "removed 1 chunk(s) no train file uses" in built.stdout


def _store(repo: Path) -> tuple[IndexStore, io.StringIO]:
    stream = io.StringIO()
    return IndexStore(Cache(repo / CACHE, Progress(stream=stream))), stream


def _load(repo: Path) -> tuple[IndexStore, io.StringIO, object]:
    config = load_config(repo / ".eval-firewall.yml")
    store, stream = _store(repo)
    (train,) = [d for d in config.datasets if d.role == "train"]
    return store, stream, load_train(config, train, store)


def _rows(loaded) -> list[tuple[str, int, str]]:
    return [(r.path, r.line, r.text) for r in loaded.rows]


def _damage_and_reload(repo: Path, damage, why: str) -> None:
    """Damage a.jsonl's chunk, reload in a fresh process state: one warning, then the same rows."""
    _, _, first = _load(repo)
    expected = _rows(first)
    target = chunk_dirs(repo)["data/train/a.jsonl"]
    damage(target)
    from eval_firewall.index import chunk
    chunk._VERIFIED.clear()                # as a new process: digests not yet checked
    store, stream, again = _load(repo)
    warnings = [line for line in stream.getvalue().splitlines() if "warning" in line]
    assert len(warnings) == 1, warnings
    assert "data/train/a.jsonl" in warnings[0] and why in warnings[0]
    assert store.built == 1 and store.rebuilt == 1
    assert _rows(again) == expected
    _, stream, third = _load(repo)                             # rebuilt: trusted again
    assert "warning" not in stream.getvalue()


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_tampered_array_is_rebuilt_with_one_warning(repo):
    _damage_and_reload(repo, lambda d: flip_byte(d / "lexical.rows.npy"), "failing its digest check")


def test_tampered_rows_are_rebuilt_with_one_warning(repo):
    _damage_and_reload(repo, lambda d: flip_byte(d / "rows.arrow"), "failing its digest check")


def test_truncated_chunk_is_rebuilt_with_one_warning(repo):
    def truncate(d: Path) -> None:
        with open(d / "norm_hash.npy", "r+b") as fh:
            fh.truncate(os.path.getsize(d / "norm_hash.npy") - 8)
    _damage_and_reload(repo, truncate, "truncated")


def test_foreign_chunk_is_rebuilt_with_one_warning(repo):
    def swap(d: Path) -> None:             # b.jsonl's chunk, signed for its own key, put here
        other = chunk_dirs(repo)["data/train/b.jsonl"]
        shutil.rmtree(d)
        shutil.copytree(other, d)
    _damage_and_reload(repo, swap, "fails its signature check")


def test_chunk_signed_with_another_key_is_rebuilt(repo, tmp_path_factory, monkeypatch):
    _load(repo)
    monkeypatch.setenv("EVAL_FIREWALL_HOME", str(tmp_path_factory.mktemp("other-home")))
    store, stream, again = _load(repo)
    assert store.rebuilt == 2 and store.built == 2
    assert stream.getvalue().count("fails its signature check") == 1   # once per kind


def test_edited_manifest_is_rebuilt(repo):
    def more_rows(d: Path) -> None:
        manifest = json.loads((d / "MANIFEST.json").read_text())
        manifest["rows"] += 1
        (d / "MANIFEST.json").write_text(json.dumps(manifest))
    _damage_and_reload(repo, more_rows, "fails its signature check")


def test_linked_file_in_a_chunk_is_not_followed(repo, tmp_path):
    outside = tmp_path / "outside.npy"
    np.save(outside, np.zeros(3))
    before = outside.read_bytes()

    def link(d: Path) -> None:
        (d / "norm_hash.npy").unlink()
        (d / "norm_hash.npy").symlink_to(outside)
    _damage_and_reload(repo, link, "symbolic link")
    assert outside.read_bytes() == before


def test_pull_request_path_builds_no_train_rows(repo, monkeypatch):
    """Changed eval rows against an unchanged, indexed train set: no train file is read, no
    chunk built, and train Row objects only for the rows a finding shows."""
    invoke(repo, "index", "build", "-q")
    rows = (repo / "data/eval/eval.jsonl").read_text().splitlines()
    rows[0] = json.dumps({"question": TRAIN[90]["question"], "answer": "#### 1"})
    (repo / "data/eval/eval.jsonl").write_text("\n".join(rows) + "\n")
    git_commit(repo, "change an eval row")

    import eval_firewall.datasets.columnar as columnar
    import eval_firewall.index.store as store

    built: list[str] = []
    real_build_rows = columnar.build_rows

    def counting_build_rows(table, name, role, display):
        if role == "train":
            built.extend([display] * table.num_rows)
        return real_build_rows(table, name, role, display)

    def no_read(*args, **kwargs):
        raise AssertionError("a train file was read")

    monkeypatch.setattr(columnar, "build_rows", counting_build_rows)
    monkeypatch.setattr(store, "read_table", no_read)
    config = load_config(repo / ".eval-firewall.yml")
    report = run_audits(config, cache_dir=repo / CACHE, base="HEAD~1")
    overlap = [f for a in report.audits if a.audit == "overlap" for f in a.findings
               if f.rule != "eval-duplicate"]
    assert any(f.line == 1 and f.new for f in overlap)
    assert len(built) <= len(overlap)                  # only the matches shown
    assert isinstance(report, object)


def test_train_rows_are_indexed_rows(repo):
    _, _, loaded = _load(repo)
    assert isinstance(loaded.rows, IndexedRows)
    assert len(loaded.rows) == 120
    assert loaded.rows[85].path == "data/train/b.jsonl" and loaded.rows[85].line == 6
    assert loaded.rows[85].text == TRAIN[85]["question"]
    assert loaded.norm[85] == loaded.norm[85].lower()


def test_duplicate_train_ids_are_found_from_the_index(tmp_path):
    git_init(tmp_path)
    write_jsonl(tmp_path / "data/train/a.jsonl", [{"id": "x", **TRAIN[0]}, {"id": "y", **TRAIN[1]}])
    write_jsonl(tmp_path / "data/train/b.jsonl", [{"id": "x", **TRAIN[2]}])
    write_jsonl(tmp_path / "data/eval/eval.jsonl", [{"id": "e", **TEST[0]}])
    (tmp_path / ".eval-firewall.yml").write_text(
        BASIC_CONFIG.replace("    label: answer\n", "    label: answer\n    id: id\n"))
    git_commit(tmp_path, "base")
    found = findings(tmp_path)
    assert ("data/train/b.jsonl", 1, "duplicate-id", None) in found
    assert found == findings(tmp_path, "--no-cache")


def test_new_train_rows_of_a_changed_file_are_those_without_the_index(repo, tmp_path_factory):
    """A changed train file's rows: new unless a base row has their content, whichever file
    it is in; the index answers as reading every row does."""
    from eval_firewall.engine import load_all
    from eval_firewall.incremental.changes import load_base

    invoke(repo, "index", "build", "-q")
    write_jsonl(repo / "data/train/b.jsonl", TRAIN[80:] + [TRAIN[5], TEST[0], TRAIN[90]])
    git_commit(repo, "more train rows")
    config = load_config(repo / ".eval-firewall.yml")
    answers = []
    for cache in (Cache(repo / CACHE), None):
        loaded = load_all(config, Progress(enabled=False), cache)
        changes = load_base(config, loaded, "HEAD~1", tmp_path_factory.mktemp("scratch"))
        rows = loaded["train"].rows
        answers.append(sorted((rows[i].path, rows[i].line) for i in changes.new_rows["train"]))
    assert isinstance(load_all(config, Progress(enabled=False), Cache(repo / CACHE))["train"].rows,
                      IndexedRows)
    assert answers[0] == answers[1] == [("data/train/b.jsonl", 42)]


# --- containment from the chunks' stored postings -------------------------------------------------
BOILER = "Answer the following question with a single number and show your work step by step"


def quoting(question: str, i: int, answer: str | None = None) -> str:
    """A long train document quoting ``question`` (re-wrapped, upper-cased) among others."""
    others = [r["question"] for r in TRAIN[3 * i:3 * i + 3]]
    quoted = question.upper().replace(" ", "\n", 4)
    return "\n\n".join([others[0], f"Problem 2. {quoted}", *([f"Solution: {answer}"] if answer
                                                             else []), *others[1:]])


@pytest.fixture
def quoted_repo(tmp_path: Path) -> Path:
    """Two train files, each holding long documents quoting eval items (the even ones with
    their answers) and 6 rows starting with the same instruction (12 in all: boilerplate only
    across both files); eval rows 20 and 21 are that instruction before a question."""
    git_init(tmp_path)
    a = [dict(r) for r in TRAIN[:60]]
    b = [dict(r) for r in TRAIN[60:120]]
    for k in range(8):                     # items 0-3 quoted in a.jsonl, 4-7 in b.jsonl
        side = a if k < 4 else b
        side[10 + k]["question"] = quoting(TEST[k]["question"], k,
                                           TEST[k]["answer"] if k % 2 == 0 else None)
    for k in range(6):
        a[30 + k]["question"] = f"{BOILER}. {a[30 + k]['question']}"
        b[30 + k]["question"] = f"{BOILER}. {b[30 + k]['question']}"
    write_jsonl(tmp_path / "data/train/a.jsonl", a)
    write_jsonl(tmp_path / "data/train/b.jsonl", b)
    evals = [dict(r) for r in TEST[:22]]
    for k in (20, 21):
        evals[k]["question"] = f"{BOILER}. {TEST[k]['question']}"
    write_jsonl(tmp_path / "data/eval/eval.jsonl", evals)
    (tmp_path / ".eval-firewall.yml").write_text(
        BASIC_CONFIG + "    containment: {min_coverage: 0.2}\n")
    (tmp_path / ".gitignore").write_text(f"{CACHE}/\n")
    git_commit(tmp_path, "base")
    return tmp_path


def _full(root: Path, *args: str) -> list[tuple]:
    done = invoke(root, "audit", "-q", "--format", "json", *args)
    assert done.exit_code in (0, 1), done.output
    return sorted((f["line"], f["rule"], f["match"]["path"], f["match"]["line"],
                   json.dumps(f["match"].get("span"), sort_keys=True), f["match"].get("leak"))
                  for f in json.loads(done.stdout)["findings"] if f.get("match"))


def test_containment_from_the_index_equals_the_search_without_it(quoted_repo, monkeypatch):
    built = invoke(quoted_repo, "index", "build", "-q")
    assert built.exit_code == 0, built.output
    for d in chunk_dirs(quoted_repo).values():
        files = json.loads((d / "MANIFEST.json").read_text())["files"]
        assert {"containment.tokens.npy", "containment.starts.npy"} <= set(files)
    without = _full(quoted_repo, "--no-cache")

    from eval_firewall.search import containment

    def tokenized(*args, **kwargs):
        raise AssertionError("train texts tokenized again")
    monkeypatch.setattr(containment, "build", tokenized)   # the index path must not need it
    with_index = _full(quoted_repo)
    assert with_index == without
    contained = {(line, path, train_line) for line, rule, path, train_line, *_ in with_index
                 if rule == "contained"}
    assert contained == {(k + 1, f"data/train/{'a' if k < 4 else 'b'}.jsonl", 11 + k)
                         for k in range(8)}               # right rows in both files, no others


def test_boilerplate_counts_rows_across_every_chunk(quoted_repo):
    from eval_firewall.index.corpus import train_corpus
    from eval_firewall.overlap.finders import TrainSide
    from eval_firewall.search import containment
    from eval_firewall.text.normalize import normalize

    _, _, loaded = _load(quoted_repo)
    corpus = train_corpus([loaded])
    assert corpus is not None and len(corpus.chunks) == 2
    side = corpus.side
    evals = [normalize(f"{BOILER}. {TEST[k]['question']}") for k in (20, 21)]
    strict = containment.Settings(min_coverage=0.2)                  # max_train_rows 10 < 12
    assert side.contained(evals, strict, [0, 1]) == {}
    assert TrainSide(list(corpus.norm)).contained(evals, strict, [0, 1]) == {}
    # each file alone holds the instruction in 6 rows (<= 10): counted per chunk, it would count
    for c in (0, 1):
        items = containment.EvalItems(evals, strict)
        hits = containment.Hits()
        containment.scan_stored(side._postings(c), items, hits, int(side.offsets[c]))
        assert sorted(containment.contained(hits, items)) == [0, 1]
    loose = containment.Settings(min_coverage=0.2, max_train_rows=12)
    assert sorted(side.contained(evals, loose, [0, 1])) == [0, 1]
    assert side.contained(evals, loose, [0, 1]) == TrainSide(list(corpus.norm)).contained(
        evals, loose, [0, 1])


def test_stored_postings_scanned_in_small_pieces_give_the_same_hits(quoted_repo):
    from eval_firewall.index.corpus import train_corpus
    from eval_firewall.search import containment
    from eval_firewall.text.normalize import normalize

    _, _, loaded = _load(quoted_repo)
    side = train_corpus([loaded]).side
    evals = [normalize(r["question"]) for r in TEST[:10]]
    expected = side.contained(evals, containment.Settings(), range(10))
    assert sorted(expected) == list(range(8))
    for rows, words in ((7, 1 << 22), (1000, 50), (3, 1)):
        items = containment.EvalItems(evals, containment.Settings())
        hits = containment.Hits()
        for c in range(2):
            containment.scan_stored(side._postings(c), items, hits, int(side.offsets[c]),
                                    piece_rows=rows, piece_words=words)
        assert containment.contained(hits, items) == expected


def test_chunk_keys_follow_the_normalization(repo, monkeypatch):
    from eval_firewall.index import store as store_module
    from eval_firewall.text import normalize as norm_module

    before = chunk_dirs_after_build(repo)
    key = store_module.normalization_fingerprint()
    assert key == store_module.normalization_fingerprint()       # stable
    monkeypatch.setattr(norm_module, "NORMALIZATION_VERSION", norm_module.NORMALIZATION_VERSION + 1)
    assert store_module.normalization_fingerprint() != key        # a declared change
    monkeypatch.undo()
    # Undeclared changes: the normalization before default-ignorable removal split words at
    # U+200B; one that stopped folding homoglyphs would keep Cyrillic letters.
    one, many = norm_module.normalize, norm_module.normalize_array

    def zwsp_splits(texts):
        import pyarrow as pa
        import pyarrow.compute as pc
        if isinstance(texts, pa.ChunkedArray):
            texts = texts.combine_chunks()
        return many(pc.replace_substring(texts.cast(pa.large_string()), "\u200b", " "))
    monkeypatch.setattr(norm_module, "normalize_array", zwsp_splits)
    assert store_module.normalization_fingerprint() != key
    monkeypatch.undo()
    monkeypatch.setattr(norm_module, "normalize", lambda t: one(t).replace("aeopcxy", "аеорсху"))
    assert store_module.normalization_fingerprint() != key
    monkeypatch.undo()
    assert store_module.normalization_fingerprint() == key
    # a chunk built under another normalization is not current and is rebuilt
    monkeypatch.setattr(norm_module, "normalize_array", zwsp_splits)
    status = invoke(repo, "index", "status")
    assert status.exit_code == 1 and status.stdout.count("missing") == 2, status.output
    built = invoke(repo, "index", "build", "-q")
    assert "2 chunk(s) built" in built.stdout, built.output
    assert not set(before.values()) & set(chunk_dirs(repo).values())


def chunk_dirs_after_build(root: Path) -> dict[str, Path]:
    built = invoke(root, "index", "build", "-q")
    assert built.exit_code == 0, built.output
    return chunk_dirs(root)


# --- digests checked once, remembered across processes by inode, size and times ----------------
def _hashed(monkeypatch) -> list[int]:
    """Count the digests computed from here on (as a new process: none remembered in memory)."""
    from eval_firewall.index import chunk

    chunk._VERIFIED.clear()
    calls: list[int] = []
    real = chunk._fd_sha256

    def counting(fd: int) -> str:
        calls.append(fd)
        return real(fd)
    monkeypatch.setattr(chunk, "_fd_sha256", counting)
    return calls


def test_a_later_process_trusts_the_files_it_wrote_without_hashing_them(repo, monkeypatch):
    invoke(repo, "index", "build", "-q")
    calls = _hashed(monkeypatch)
    _, stream, loaded = _load(repo)
    assert len(loaded.rows) == 120 and "warning" not in stream.getvalue()
    assert calls == []                      # the written files' digests are on record


def test_tampered_file_with_its_times_put_back_is_still_rebuilt(repo, monkeypatch):
    """The record binds a file's inode change time, which no writer can set back: a file edited
    in place, its modification time restored, is hashed again and found out."""
    invoke(repo, "index", "build", "-q")
    target = chunk_dirs(repo)["data/train/a.jsonl"] / "lexical.rows.npy"
    before = os.stat(target)
    flip_byte(target)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    calls = _hashed(monkeypatch)
    store, stream, again = _load(repo)
    assert calls and store.rebuilt == 1
    assert "failing its digest check" in stream.getvalue()


def test_a_forged_record_is_no_record(repo, monkeypatch):
    invoke(repo, "index", "build", "-q")
    directory = chunk_dirs(repo)["data/train/a.jsonl"]
    record = json.loads((directory / "CHECKED.json").read_text())
    target = directory / "lexical.rows.npy"
    flip_byte(target)
    info = os.stat(target)
    sha = record["files"]["lexical.rows.npy"][-1]
    record["files"]["lexical.rows.npy"] = [info.st_dev, info.st_ino, info.st_size,
                                           info.st_mtime_ns, info.st_ctime_ns, sha]
    (directory / "CHECKED.json").write_text(json.dumps(record))   # signature now wrong
    calls = _hashed(monkeypatch)
    store, stream, _ = _load(repo)
    assert calls and store.rebuilt == 1 and "failing its digest check" in stream.getvalue()


def test_status_verify_hashes_every_file_whatever_is_on_record(repo, monkeypatch):
    invoke(repo, "index", "build", "-q")
    calls = _hashed(monkeypatch)
    status = invoke(repo, "index", "status", "--verify")
    assert status.exit_code == 0, status.output
    files = sum(len(json.loads((d / "MANIFEST.json").read_text())["files"])
                for d in chunk_dirs(repo).values())
    assert len(calls) >= files


# --- the paraphrase units (windows of long rows) from the chunks' arrays -----------------------
def test_windows_from_the_index_equal_those_of_the_rows(quoted_repo):
    """Same units, same order, same texts as windows_of over Row objects; stored in the chunks
    and read back by a later process, and searched as one mapped part per chunk."""
    from eval_firewall.index.corpus import train_corpus
    from eval_firewall.overlap.corpus import Corpus
    from eval_firewall.search.vectors import VectorIndex
    from eval_firewall.search.windows import windows_of

    config = load_config(quoted_repo / ".eval-firewall.yml")
    (train,) = [d for d in config.datasets if d.role == "train"]
    for attempt in range(2):                # built, then read from the chunks
        store, _ = _store(quoted_repo)
        corpus = train_corpus([load_train(config, train, store)])
        plain = Corpus.of(list(corpus.rows))
        for window, ratio in ((8, 3.0), (16, 1.0)):
            ours, theirs = corpus.windows(window, ratio, 10_000), windows_of(plain, window, ratio,
                                                                            10_000)
            assert ours is not None and theirs is not None
            assert list(ours.row) == theirs.row and list(ours.words) == theirs.words
            assert dict(ours.unit_of) == theirs.unit_of
            assert list(ours.corpus.texts) == theirs.corpus.texts
        assert corpus.windows(8, 3.0, 5) is None and windows_of(plain, 8, 3.0, 5) is None

    class Encoder:
        key, dim = "test-encoder", 8

        def encode(self, texts):
            import zlib

            rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(8) for t in texts]
            out = np.array(rows, dtype=np.float32).reshape(len(texts), 8)
            return out / np.linalg.norm(out, axis=1, keepdims=True)

    units = corpus.windows(8, 3.0, 10_000)
    index = units.corpus.vector_index(Encoder())
    assert len(index.parts) == 2 and len(index) == len(units.row)
    expected = np.asarray(Encoder().encode(list(units.corpus.texts)), dtype=np.float16)
    assert np.array_equal(index.vectors, expected)
    queries = expected[:5].astype(np.float32)
    found, whole = index.search_above(queries, 0.3, 3), VectorIndex(expected).search_above(
        queries, 0.3, 3)
    assert np.array_equal(found[0], whole[0]) and np.array_equal(found[1], whole[1])
    assert (found[0][:, 0] >= 0).all()


def test_lexical_candidates_of_the_queries_words_equal_those_of_the_whole_matrix(repo):
    """The matrix of the queries' words gives the same candidates, in the same order, as the
    whole feature x row matrix; the row norms are stored in the chunks and reused."""
    from eval_firewall.index.corpus import train_corpus
    from eval_firewall.index.train import ChunkedLexical, chunked_lexical

    config = load_config(repo / ".eval-firewall.yml")
    (train,) = [d for d in config.datasets if d.role == "train"]
    corpus = train_corpus([load_train(config, train, _store(repo)[0])])
    queries = [corpus.norm[j] for j in (3, 85, 100)] + [r["question"].lower() for r in TEST]
    whole = chunked_lexical(corpus.chunks).candidates(queries, 10)
    for _ in range(2):                                   # norms computed, then read back
        ours = ChunkedLexical(corpus.chunks).candidates(queries, 10)
        assert [list(a) for a in ours] == [list(b) for b in whole]
    assert all(any(n.startswith("lexical.norms.") for n in c.names) for c in corpus.chunks)
    assert [list(a) for a in ChunkedLexical(corpus.chunks).candidates(["", "zzz qqq"], 5)] == [[], []]


def test_a_chunk_keeps_the_row_norms_of_its_last_train_sets(tmp_path):
    """Each train set (its IDF) gives a chunk its own row norms; the chunk keeps those of the
    last ``NORMS_KEPT`` sets, the older ones dropped (no longer listed, their files gone, the
    chunk sound); a dropped set's norms are computed again when asked for, with the same
    candidates as the whole matrix."""
    from eval_firewall.index.corpus import train_corpus
    from eval_firewall.index.train import NORMS_KEPT, ChunkedLexical, chunked_lexical

    git_init(tmp_path)
    for i in range(NORMS_KEPT + 2):
        write_jsonl(tmp_path / f"data/train/part-{i}.jsonl", TRAIN[i * 20:(i + 1) * 20])
    write_jsonl(tmp_path / "data/eval/eval.jsonl", TEST)
    (tmp_path / ".eval-firewall.yml").write_text(BASIC_CONFIG)
    git_commit(tmp_path, "base")
    config = load_config(tmp_path / ".eval-firewall.yml")
    (train,) = [d for d in config.datasets if d.role == "train"]
    chunks = train_corpus([load_train(config, train, _store(tmp_path)[0])]).chunks
    first, others = chunks[0], chunks[1:]
    sets = [[first, other] for other in others] + [[first]]    # as many train sets, each its IDF
    names = []
    for chunks_of_set in sets:
        index = ChunkedLexical(chunks_of_set)
        index.prepare()
        names.append(index._norms_name)
    assert len(set(names)) == len(sets) == NORMS_KEPT + 2
    held = [n for n in first.names if n.startswith("lexical.norms.")]
    assert sorted(held) == sorted(names[-NORMS_KEPT:])
    assert not [n for n in names[:2] if (first.directory / f"{n}.npy").exists()]
    first.verify()                                    # the manifest matches what is there
    index = ChunkedLexical(sets[0])                   # dropped: computed again, then held
    queries = [r["question"].lower() for r in TEST[:5]] + [TRAIN[3]["question"].lower()]
    assert [list(a) for a in index.candidates(queries, 10)] == \
        [list(b) for b in chunked_lexical(sets[0]).candidates(queries, 10)]
    assert names[0] in first.names and names[2] not in first.names


def test_a_series_number_read_from_a_manifest_is_an_integer_or_zero():
    """A manifest mirrored from the index location may hold anything as a file's ``seq``: only
    an integer orders the series; anything else stands first (dropped first), never raises."""
    from eval_firewall.index.chunk import _seq

    assert [_seq(m) for m in ({"seq": 3}, {"seq": "9"}, {"seq": True}, {"seq": None}, {},
                               {"seq": [1]}, "not a dict", None)] == [3, 0, 0, 0, 0, 0, 0, 0]
