"""The per-domain calibration table (docs/audits/overlap.md) is the one bench/calibrate.py wrote from its run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _calibrate():
    spec = importlib.util.spec_from_file_location("calibrate", ROOT / "bench" / "calibrate.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return module


def test_docs_calibration_table_comes_from_the_result_file():
    calibrate = _calibrate()
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
