"""A chunk's rows read by range (index/ranges.py): every value read through its buffers' file
ranges, block by block checked, is the value the whole file gives; a changed block is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from eval_firewall.index.chunk import ROWS
from eval_firewall.index.ranges import BLOCK, BLOCKS, BlockReader, RangeRows
from eval_firewall.index.write import write_files


class Refused(Exception):
    pass


def rows_table(n: int) -> pa.Table:
    texts = [f"row {i}: " + "é✓ 漢字 " * (i % 40) + "x" * (i % 700) for i in range(n)]
    return pa.table({
        "line": pa.array(range(1, n + 1), pa.int64()),
        "row_id": pa.array([None if i % 3 else f"id-{i}" for i in range(n)], pa.large_string()),
        "text": pa.array(texts, pa.large_string()),
        "label": pa.array(["" if i % 5 == 0 else str(i) for i in range(n)], pa.large_string()),
        "generator": pa.array([None] * n, pa.large_string()),
    })


def ranged(tmp_path: Path, table: pa.Table) -> tuple[RangeRows, bytearray, list[tuple[int, int]]]:
    files = write_files(tmp_path, table, {})
    data = bytearray((tmp_path / ROWS).read_bytes())
    reads: list[tuple[int, int]] = []

    def read(start: int, stop: int) -> bytes:
        reads.append((start, stop))
        return bytes(data[start:stop])
    digests = np.load(tmp_path / f"{BLOCKS}.npy")
    file = BlockReader(files[ROWS]["size"], files[ROWS]["block"], digests, read, Refused, ROWS)
    return RangeRows(files[ROWS], file, Refused), data, reads


def test_every_value_read_by_range_is_the_files_and_only_its_blocks_are_read(tmp_path):
    table = pa.concat_tables([rows_table(1500), rows_table(1500)])   # two record batches
    rows, data, reads = ranged(tmp_path, table)
    assert len(rows.batches) == 2 and len(data) > 40 * BLOCK
    expected = table.to_pylist()
    for j in [0, 1, 2, 5, 1499, 1500, 1501, 2222, 2999]:
        assert {c: rows.value(c, j) for c in table.schema.names} == expected[j]
    assert rows.table(1495, 1505).to_pylist() == expected[1495:1505]
    assert rows.table(1495, 1505).schema == table.schema
    assert all(stop - start <= BLOCK for start, stop in reads)
    assert rows.fetched < len(data) / 2        # a few blocks, not the file
    assert rows.value("generator", 7) is None and rows.fetched == sum(b - a for a, b in reads)


def test_a_column_without_values_is_not_read(tmp_path):
    rows, _, reads = ranged(tmp_path, rows_table(100))
    assert rows.value("generator", 42) is None and reads == []


def test_a_changed_block_is_refused(tmp_path):
    rows, data, _ = ranged(tmp_path, rows_table(2000))
    spec = rows.batches[0]["columns"]["text"]
    data[spec["buffers"][2][0] + 10] ^= 0xFF       # a byte of the texts (no validity buffer:
    assert spec["buffers"][0] is None               # no nulls)
    with pytest.raises(Refused, match="failing its digest check"):
        rows.value("text", 0)


def test_a_layout_pointing_outside_the_file_is_refused(tmp_path):
    rows, data, _ = ranged(tmp_path, rows_table(50))
    rows.batches[0]["columns"]["text"]["buffers"][1][0] = len(data) + 1
    with pytest.raises(Refused, match="outside its rows"):
        rows.value("text", 3)


@pytest.mark.parametrize("bad", [
    {"type": "default_memory_pool"},            # a pyarrow function by name: never called
    {"buffers": [None]},
    {"offset": -1},
    {"buffers": [None, [0, "8"], [0, 1]]},
])
def test_a_layout_that_is_not_one_is_refused(tmp_path, bad):
    files = write_files(tmp_path, rows_table(20), {})
    meta = files[ROWS]
    meta["layout"]["batches"][0]["columns"]["text"].update(bad)
    digests = np.load(tmp_path / f"{BLOCKS}.npy")
    data = (tmp_path / ROWS).read_bytes()
    file = BlockReader(meta["size"], meta["block"], digests, lambda a, b: data[a:b], Refused, ROWS)
    with pytest.raises(Refused, match="rows layout that is not one"):
        RangeRows(meta, file, Refused)


def test_the_layout_is_the_same_for_the_same_rows(tmp_path):
    """The manifest entry of the same rows is the same, written twice (an empty buffer, e.g.
    the texts of a column without values, has no address in the file to note)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_files(tmp_path / "a", rows_table(300), {})[ROWS]
    second = write_files(tmp_path / "b", rows_table(300), {})[ROWS]
    assert first == second
    spec = first["layout"]["batches"][0]["columns"]["generator"]
    assert spec["buffers"][2] == [0, 0]
