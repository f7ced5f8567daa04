"""The per-domain calibration table (docs/audits/overlap.md) is the one bench/calibrate.py wrote from its run."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import bench_module

ROOT = Path(__file__).resolve().parents[2]


def test_docs_calibration_table_comes_from_the_result_file():
    calibrate = bench_module("calibrate")
    result = json.loads((ROOT / "bench" / "results" / "calibration.json").read_text())
    readme = calibrate.DOC.read_text(encoding="utf-8")
    assert calibrate.DOC == ROOT / "docs" / "audits" / "overlap.md"
    begin, end = readme.index(calibrate.DOC_BEGIN), readme.index(calibrate.DOC_END)
    shown = readme[begin + len(calibrate.DOC_BEGIN):end].strip()
    assert shown == calibrate.domain_table(result)
    # every domain measured, with both scorings side by side, from one run (its load printed)
    assert len(result["columns"]) == 2 and result["load"].startswith("load average")
    for column in result["columns"].values():
        assert set(column) == {name for name, _, _ in calibrate.DOMAIN_ROWS}
        assert all(rows > 0 for _, rows in column.values())
