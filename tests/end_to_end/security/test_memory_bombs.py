"""Memory bombs of issue #18 (item 2): tiny Parquet files that decode to gigabytes, and JSONL
files of millions of unreadable lines. Each ended in a MemoryError traceback. Now: a one-line
error or bounded findings, and the audit's peak RSS (measured in a child process, never
timed) stays under 1.5 GiB. bench/limits.py runs the same inputs at full size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eval_firewall.config import LimitsConfig
from eval_firewall.datasets.formats import read_records
from eval_firewall.datasets.lines import BadRecord
from eval_firewall.errors import UserError

CLI = Path(sys.executable).parent / "eval-firewall"
MAX_RSS_BYTES = int(1.5 * 2**30)
CONFIG = """\
datasets:
  - name: train
    role: train
    paths: ["data/train/*.jsonl"]
    text: [question]
  - name: eval
    role: eval
    paths: ["data/eval/*"]
    text: [question]
audits:
  overlap:
    semantic: {enabled: false}
    distribution: {enabled: false}
  provenance: {enabled: false}
"""
# The child's peak RSS, from a parent whose only child is the audit.
PROBE = """\
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(done.stderr.decode(errors="replace"))
"""


def dictionary_bomb(path: Path, value_bytes: int = 8 << 20, rows: int = 20_000) -> None:
    """One value in the dictionary page, referenced by every row: about 1 KB on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    column = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, np.int32)),
                                            pa.array(["a" * value_bytes]))
    pq.write_table(pa.table({"question": column}), path, compression="zstd")


def huge_cell(path: Path, cell_bytes: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({"question": ["a fine row", "a" * cell_bytes, "another fine row"]})
    pq.write_table(table, path, compression="zstd", use_dictionary=False)


def audit(root: Path) -> tuple[int, int, str]:
    """Exit code, peak RSS in bytes and stderr of `eval-firewall audit` in ``root``."""
    (root / "data/train").mkdir(parents=True, exist_ok=True)
    (root / "data/train/t.jsonl").write_text('{"question": "a train row"}\n', encoding="utf-8")
    (root / ".eval-firewall.yml").write_text(CONFIG, encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", PROBE, str(CLI), "audit", "-q", "--no-cache",
                           "--format", "json", "--output", str(root / "report.json")],
                          cwd=root, capture_output=True, text=True, timeout=600)
    first, _, stderr = done.stdout.partition("\n")
    code, kib = map(int, first.split())
    assert "Traceback" not in stderr and "MemoryError" not in stderr, stderr
    return code, kib * 1024, stderr


def test_parquet_dictionary_bomb_is_refused_before_it_expands(tmp_path: Path):
    path = tmp_path / "e.parquet"
    dictionary_bomb(path, value_bytes=64 << 10, rows=20_000)        # 1.3 GB decoded
    assert path.stat().st_size < 4096
    with pytest.raises(UserError) as info:
        list(read_records(path, "parquet", ["question"], LimitsConfig(max_file_bytes=100 << 20),
                          "e.parquet"))
    assert str(info.value) == ("e.parquet: decoded, the file's rows are larger than "
                               "limits.max_file_bytes (104857600 bytes); reading stopped there")


def test_parquet_rows_that_share_a_dictionary_value_share_it(tmp_path: Path):
    path = tmp_path / "e.parquet"
    dictionary_bomb(path, value_bytes=1 << 20, rows=300)
    rows = [r for _, r in read_records(path, "parquet", ["question"], LimitsConfig(), "e")]
    assert len(rows) == 300 and len({id(r["question"]) for r in rows}) == 1


def test_a_parquet_cell_over_max_row_bytes_is_an_invalid_row(tmp_path: Path):
    path = tmp_path / "e.parquet"
    huge_cell(path, 3 << 20)
    got = list(read_records(path, "parquet", ["question"], LimitsConfig(max_row_bytes=1 << 20),
                            "e.parquet"))
    assert [n for n, _ in got] == [1, 2, 3]
    assert got[0][1] == {"question": "a fine row"} and got[2][1]["question"] == \
        "another fine row"
    bad = got[1][1]
    assert isinstance(bad, BadRecord) and bad.message == (
        "the row is larger than limits.max_row_bytes (1048576 bytes); it was skipped")
    huge_cell(tmp_path / "f.parquet", (3 << 20) + 1)
    other = list(read_records(tmp_path / "f.parquet", "parquet", ["question"],
                              LimitsConfig(max_row_bytes=1 << 20), "f.parquet"))[1][1]
    assert bad.digest and other.digest and bad.digest != other.digest


@pytest.mark.parametrize("attack", ["dictionary", "cell", "jsonl"])
def test_peak_memory_of_the_audit_stays_bounded(tmp_path: Path, attack: str):
    """The issue's inputs at the default limits (the JSONL shortened to 2M lines; the bench
    runs 10M): one clear outcome and a peak RSS under 1.5 GiB."""
    if attack == "dictionary":                 # 1,031 bytes, 160 GiB decoded
        dictionary_bomb(tmp_path / "data/eval/e.parquet")
    elif attack == "cell":                     # 10 KB, one 300 MB cell
        huge_cell(tmp_path / "data/eval/e.parquet", 300 << 20)
    else:                                      # millions of lines that are not objects
        (tmp_path / "data/eval").mkdir(parents=True)
        with open(tmp_path / "data/eval/e.jsonl", "wb") as fh:
            fh.write(b"1\n" * 2_000_000)
    code, peak, stderr = audit(tmp_path)
    assert peak < MAX_RSS_BYTES, f"{attack}: peak RSS {peak / 2**30:.2f} GiB"
    if attack == "dictionary":
        assert code == 2 and len(stderr.strip().splitlines()) == 1 and "decoded, the file's rows" in stderr
        return
    assert code == 1, stderr
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    invalid = [f for f in report["findings"] if f["rule"] == "invalid-row"]
    if attack == "cell":
        assert [(f["line"], f["message"]) for f in invalid] == [
            (2, "the row is larger than limits.max_row_bytes (16777216 bytes); it was skipped")]
    else:
        assert len(invalid) == 1_001
        assert invalid[-1]["count"] == 2_000_000 - 1_000
        assert invalid[-1]["message"].startswith("1,999,000 more unreadable rows in "
                                                 "data/eval/e.jsonl")
