"""Attacks on the readers (issue #8, hole 4): hostile input that crashed the audit or exhausted
memory. Each test builds the attack itself, runs the action against the local GitHub server and
checks what the server received, what was printed and the exit code. Sizes are kept small by
low limits in the test's config; the outcome is the one the default limits give bigger input
(bench/limits.py measures that, with peak memory).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from action_harness import EVAL, EVAL_ROWS, run_action
from attacks import eval_paths, hostile_pr, sent, unescaped
from conftest import write_jsonl

CLI = Path(sys.executable).parent / "eval-firewall"


def with_limits(config: str, **limits: object) -> str:
    return config + "limits:\n" + "".join(f"  {k}: {v}\n" for k, v in limits.items())


def one_error_line(run) -> str:
    errors = [line for line in run.stderr.splitlines() if line.startswith("eval-firewall: error")]
    assert len(errors) == 1, run.stderr
    return errors[0]


def annotations_of(github) -> list[dict]:
    (check,) = github.state.check_runs.values()
    return check["_annotations"]


def invalid_row_annotation(github, path: str, line: int) -> dict:
    (note,) = [a for a in annotations_of(github)
               if a["path"] == path and a["start_line"] == line and "invalid-row" in a["title"]]
    return note


# --- JSON nested 100k deep ------------------------------------------------------------------

def test_json_nested_100k_deep_is_an_invalid_row(tmp_path, github):
    """Was a RecursionError traceback (exit 1). Now: an invalid-row at its line, and the rows
    after it are still read."""
    deep = '{"question": ' + "[" * 100_000 + "]" * 100_000 + ', "answer": "1"}'

    def make(ws: Path) -> None:
        write_jsonl(ws / EVAL, EVAL_ROWS)
        with open(ws / EVAL, "a", encoding="utf-8") as fh:
            fh.write(deep + "\n" + json.dumps({"question": "after", "answer": "2"}) + "\n")

    ws, merge, payload = hostile_pr(tmp_path, github, make=make)
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert run.code == 1, run.stderr                   # invalid_rows: error fails the run
    assert "Traceback" not in run.stderr and "RecursionError" not in run.stderr
    note = invalid_row_annotation(github, EVAL, len(EVAL_ROWS) + 1)
    assert "limits.max_json_depth (100)" in note["message"]
    assert run.outputs["findings"] == "1"               # the row after it was read, no finding
    assert "[[[[" not in sent(github)


def test_deep_element_of_a_json_array_is_an_invalid_row(tmp_path, github):
    rows = [{"question": "fine", "answer": "1"},
            {"question": "x", "answer": json.loads("[" * 30 + "]" * 30)},
            {"question": "fine too", "answer": "2"}]
    config = with_limits(eval_paths('["data/eval/*.json"]'), max_json_depth=20)
    ws, merge, payload = hostile_pr(
        tmp_path, github, config=config,
        files={"data/eval/eval.json": "[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n"})
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert run.code == 1, run.stderr
    note = invalid_row_annotation(github, "data/eval/eval.json", 3)
    assert "limits.max_json_depth (20)" in note["message"]
    assert run.outputs["findings"] == "1"


# --- a gzip bomb -------------------------------------------------------------------------------

def gzip_bomb(path: Path, decompressed: int, *, newline_every: int | None = None) -> None:
    """A .jsonl.gz of ``decompressed`` bytes of zeros, written in a stream."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = b"0" * (1 << 20)
    if newline_every:
        chunk = (b"0" * (newline_every - 1) + b"\n") * ((1 << 20) // newline_every)
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(b'{"question": "first", "answer": "1"}\n')
        for _ in range(decompressed // len(chunk)):
            fh.write(chunk)


def test_gzip_bomb_stops_at_the_decompressed_limit(tmp_path, github):
    """Was 7 GB of memory then a segfault. Now: one line naming the file and the limit, exit 2,
    and the failed check run says so."""
    config = with_limits(eval_paths('["data/eval/*.jsonl.gz"]'), max_file_bytes="4MiB",
                         max_row_bytes="64KiB")
    ws, merge, payload = hostile_pr(
        tmp_path, github, config=config,
        make=lambda ws: gzip_bomb(ws / "data/eval/bomb.jsonl.gz", 32 << 20))
    assert (ws / "data/eval/bomb.jsonl.gz").stat().st_size < 100_000
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert run.code == 2, run.stderr
    error = one_error_line(run)
    assert error == ("eval-firewall: error: data/eval/bomb.jsonl.gz: decompressed, the file is "
                     "larger than limits.max_file_bytes (4194304 bytes); reading stopped there")
    (check,) = github.state.check_runs.values()
    assert check["conclusion"] == "failure"
    assert "limits.max_file_bytes" in unescaped(check["output"]["summary"])
    assert "0" * 100 not in sent(github)


# --- a YAML alias bomb in a card -----------------------------------------------------------------

def alias_bomb(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + f"\nlicense: *l{levels - 1}\n"


def test_yaml_alias_bomb_in_a_card_is_refused(tmp_path, github):
    """Was a MemoryError. A billion laughs (9^9 values) at the default limits: one line
    naming the card, exit 2, nothing of it posted."""
    ws, merge, payload = hostile_pr(tmp_path, github,
                                    files={"data/eval/README.md": f"---\n{alias_bomb()}---\n"})
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert run.code == 2, run.stderr
    assert one_error_line(run) == (
        "eval-firewall: error: data/eval/README.md:1: invalid YAML front matter: the YAML "
        "expands (through aliases) to more than 100000 values (at most limits.max_yaml_nodes)")
    (check,) = github.state.check_runs.values()
    assert check["conclusion"] == "failure"
    assert "lol" not in sent(github)


def test_yaml_alias_bomb_in_the_config_is_refused(tmp_path, github):
    config = alias_bomb() + "\n" + eval_paths('["data/eval/*.jsonl"]')
    ws, merge, payload = hostile_pr(tmp_path, github, config=config)
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert run.code == 2, run.stderr
    assert one_error_line(run) == (
        "eval-firewall: error: .eval-firewall.yml: the YAML expands (through aliases) to more "
        "than 10000 values")
    assert "lol" not in sent(github)


def test_a_card_with_a_few_anchors_is_still_read(tmp_path):
    from eval_firewall.datasets.card import read_card

    card = tmp_path / "README.md"
    card.write_text("---\nbase: &b [human]\nlabel_source: *b\nlicense: mit\n---\n# Card\n",
                    encoding="utf-8")
    read = read_card(card, "README.md")
    assert read.values("label_source") == ["human"] and read.key_lines["license"] == 4


# --- ** over a symlink loop, and too many files for one glob --------------------------------------

def test_globstar_over_a_symlink_loop_ends(tmp_path, github):
    """Was a walk that never finished. A symlinked folder is not walked into by **: the loop is
    ignored and the real rows are audited (exit 0)."""
    config = eval_paths('["data/eval/**/*.jsonl"]')
    ws, merge, payload = hostile_pr(tmp_path, github, config=config,
                                    links={"data/eval/a/loop": "..", "data/eval/a/b/up": "../.."})
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert run.code == 0, run.stderr
    assert run.outputs["findings"] == "0"
    (check,) = github.state.check_runs.values()
    assert check["conclusion"] == "success" and not check["_annotations"]


def test_more_files_than_max_files_per_glob_is_an_error(tmp_path, github):
    def make(ws: Path) -> None:
        for i in range(6):
            write_jsonl(ws / f"data/eval/part-{i}.jsonl", [{"question": f"q{i}", "answer": "1"}])

    config = with_limits(eval_paths('["data/eval/*.jsonl"]'), max_files_per_glob=5)
    ws, merge, payload = hostile_pr(tmp_path, github, config=config, make=make)
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert run.code == 2, run.stderr
    assert one_error_line(run) == (
        "eval-firewall: error: .eval-firewall.yml:9: field 'datasets[1].paths': glob "
        "'data/eval/*.jsonl' matches more than 5 files (raise limits.max_files_per_glob or "
        "narrow the glob)")
    (check,) = github.state.check_runs.values()
    assert check["conclusion"] == "failure"


# --- a single very long line ----------------------------------------------------------------------

def test_a_line_over_the_row_limit_is_an_invalid_row(tmp_path, github):
    """Was 4 GB of memory for a 200 MB line. Now: read in bounded chunks, skipped, reported as
    an invalid row at its line; the rows after it are read."""
    def make(ws: Path) -> None:
        write_jsonl(ws / EVAL, EVAL_ROWS)
        with open(ws / EVAL, "a", encoding="utf-8") as fh:
            fh.write('{"question": "' + "x" * (3 << 20) + '", "answer": "1"}\n')
            fh.write(json.dumps({"question": "after", "answer": "2"}) + "\n")

    config = with_limits(eval_paths('["data/eval/*.jsonl"]'), max_row_bytes="1MiB")
    ws, merge, payload = hostile_pr(tmp_path, github, config=config, make=make)
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert run.code == 1, run.stderr
    note = invalid_row_annotation(github, EVAL, len(EVAL_ROWS) + 1)
    assert note["message"].startswith("the line is longer than limits.max_row_bytes (1048576 "
                                      "bytes)")
    assert run.outputs["findings"] == "1"
    assert "x" * 1000 not in sent(github)


def test_a_csv_line_over_the_row_limit_is_an_invalid_row(tmp_path):
    from eval_firewall.config import LimitsConfig
    from eval_firewall.datasets.delimited import read_delimited

    path = tmp_path / "e.csv"
    path.write_text("question,answer\nq1,1\n" + "y" * 5000 + ",2\nq3,3\n", encoding="utf-8")
    records = list(read_delimited(path, ",", LimitsConfig(max_row_bytes=1000)))
    assert [(line, getattr(r, "message", r)) for line, r in records] == [
        (2, {"question": "q1", "answer": "1"}),
        (3, "the line is longer than limits.max_row_bytes (1000 bytes); it was skipped"),
        (4, {"question": "q3", "answer": "3"}),
    ]


# --- bounded memory ---------------------------------------------------------------------------------

def peak_rss_kib(cwd: Path) -> tuple[int, int]:
    """(exit code, peak RSS in KiB) of `eval-firewall audit` run on ``cwd``, measured by a
    parent process whose only child is the audit."""
    probe = ("import resource, subprocess, sys\n"
             "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL,\n"
             "                      stderr=subprocess.DEVNULL).returncode\n"
             "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    done = subprocess.run([sys.executable, "-c", probe, str(CLI), "audit", "-q"], cwd=cwd,
                          capture_output=True, text=True, check=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    code, rss = done.stdout.split()
    return int(code), int(rss)


def test_memory_stays_bounded_on_a_gzip_bomb_of_one_long_line(tmp_path):
    """At the default limits, a 96 MiB line of zeros behind a .gz (the first bomb's shape) is
    read in bounded chunks: peak memory grows by far less than the line itself (reading it as
    text took several times its size). The semantic audit is off: no model is loaded."""
    from conftest import BASIC_CONFIG

    def repo(name: str, bomb: bool) -> Path:
        root = tmp_path / name
        write_jsonl(root / "data/train/train.jsonl", [{"question": "t", "answer": "1"}])
        write_jsonl(root / "data/eval/eval.jsonl", [{"question": "e", "answer": "1"}])
        if bomb:
            gzip_bomb(root / "data/eval/bomb.jsonl.gz", 96 << 20)
        config = BASIC_CONFIG.replace("data/eval/*.jsonl", "data/eval/*.jsonl*")
        (root / ".eval-firewall.yml").write_text(config, encoding="utf-8")
        return root

    clean_code, clean = peak_rss_kib(repo("clean", bomb=False))
    bomb_code, bombed = peak_rss_kib(repo("bomb", bomb=True))
    assert (clean_code, bomb_code) == (0, 1)          # the bomb's line is one invalid row
    assert bombed - clean < 48 * 1024, (clean, bombed)


# --- the limits: section itself ---------------------------------------------------------------------

def test_limits_are_validated_like_every_other_key(tmp_path):
    from eval_firewall.config import parse_config
    from eval_firewall.errors import UserError

    config = eval_paths('["data/eval/*.jsonl"]')
    parsed = parse_config(with_limits(config, max_file_bytes="512MiB", max_json_depth=7),
                          source=".eval-firewall.yml", root=tmp_path)
    assert (int(parsed.limits.max_file_bytes), parsed.limits.max_json_depth) == (512 << 20, 7)
    assert int(parsed.limits.max_row_bytes) == 16 << 20            # the defaults
    text = with_limits(config, max_row_bytes="lots")
    line = text.splitlines().index("  max_row_bytes: lots") + 1
    with pytest.raises(UserError) as info:
        parse_config(text, source=".eval-firewall.yml", root=tmp_path)
    assert str(info.value) == (f".eval-firewall.yml:{line}: field 'limits.max_row_bytes': could "
                               "not parse value and unit from byte string (got 'lots')")


def test_a_plain_file_over_max_file_bytes_is_not_read(tmp_path):
    from eval_firewall.config import LimitsConfig
    from eval_firewall.datasets.formats import read_records
    from eval_firewall.errors import UserError

    path = tmp_path / "e.jsonl"
    write_jsonl(path, [{"question": f"q{i}"} for i in range(100)])
    small = LimitsConfig(max_file_bytes=1000)
    for fmt in ("jsonl", "json", "csv"):
        try:
            list(read_records(path, fmt, None, small, "e.jsonl"))
        except UserError as exc:
            assert str(exc) == ("e.jsonl: the file is larger than limits.max_file_bytes "
                                "(1000 bytes)")
        else:
            raise AssertionError(f"{fmt}: read past the limit")
    assert len(list(read_records(path, "jsonl", None, LimitsConfig(), "e.jsonl"))) == 100


def test_lines_are_split_as_universal_newlines_whatever_the_chunk_size():
    """The bounded line reader agrees with bytes.splitlines on every line break (\\n, \\r\\n,
    \\r), including breaks and over-long lines that straddle chunk boundaries."""
    import io
    import random

    from eval_firewall.datasets.lines import iter_lines

    rng = random.Random(8)
    for _ in range(300):
        data = b"".join(rng.choice([b"a", b"bc", b"\n", b"\r", b"\r\n", b"x" * 9])
                        for _ in range(rng.randrange(0, 40)))
        limit = rng.randrange(1, 12)
        expected = [(n, line if len(line.rstrip(b"\r\n")) <= limit else None)
                    for n, line in enumerate(data.splitlines(keepends=True), start=1)]
        for chunk in (1, 2, 3, 5, 64):
            assert list(iter_lines(io.BytesIO(data), limit, chunk)) == expected, (data, chunk)


def test_parquet_is_bounded_by_its_size_and_its_declared_uncompressed_size(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from eval_firewall.config import LimitsConfig
    from eval_firewall.datasets.formats import read_records
    from eval_firewall.errors import UserError

    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({"question": ["0" * 100_000] * 20}), path, compression="zstd")
    on_disk = path.stat().st_size
    assert on_disk < 100_000                   # 2 MB of text, compressed
    for limit, message in [
            (on_disk - 1, f"e.parquet: the file is larger than limits.max_file_bytes "
                          f"({on_disk - 1} bytes)"),
            (on_disk + 1, f"e.parquet: uncompressed, the file's row groups are larger than "
                          f"limits.max_file_bytes ({on_disk + 1} bytes); it was not read")]:
        with pytest.raises(UserError) as info:
            list(read_records(path, "parquet", ["question"], LimitsConfig(max_file_bytes=limit),
                              "e.parquet"))
        assert str(info.value) == message
    rows = list(read_records(path, "parquet", ["question"], LimitsConfig(), "e.parquet"))
    assert len(rows) == 20


def test_skipped_lines_are_hashed_as_they_stream_past_like_whole_ones():
    """The digest of a line over the limit (read in chunks, never held) is the digest of its
    bytes, line break excluded, whatever the chunk size."""
    import io
    import random

    from eval_firewall.datasets.lines import iter_lines, line_digest

    rng = random.Random(18)
    for _ in range(200):
        data = b"".join(rng.choice([b"a", b"bc", b"\n", b"\r\n", b"x" * 9])
                        for _ in range(rng.randrange(0, 40)))
        limit = rng.randrange(1, 12)
        lines = data.splitlines(keepends=True)
        expected = [line_digest(x) for x in lines if len(x.rstrip(b"\r\n")) > limit]
        for chunk in (1, 2, 3, 5, 64):
            digests: list[str] = []
            assert [raw for _, raw in iter_lines(io.BytesIO(data), limit, chunk, digests)] == \
                [x if len(x.rstrip(b"\r\n")) <= limit else None for x in lines]
            assert digests == expected, (data, limit, chunk)
