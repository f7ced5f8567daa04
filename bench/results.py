"""Benchmark results as committed files: bench/results/NAME.json.

Each bench script that produces a table for the docs writes it here with when, where and under
what load it ran (``write``); ``python docs/generate.py`` turns the files into the tables of the
docs' Benchmarks page. Commit the file with the change it measures: figures in the docs come
from these runs, never from a test.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def load() -> str:
    """The load average now (1/5/15 min)."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def machine() -> str:
    """This machine, in a few words: cores, memory, CPU architecture, OS, Python."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        ram = f", {memory:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        ram = ""
    return (f"{os.cpu_count()} cores{ram}, {platform.machine()}, {platform.system()}, "
            f"Python {platform.python_version()}")


def write(name: str, columns: list[str], rows: list[dict[str, object]], *, load: str,
          notes: str = "", command: str | None = None, figures: dict | None = None) -> Path:
    """Write bench/results/NAME.json: the run (date, machine, command, load) and its table
    (and, if given, every figure of the run as the script printed it)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"run": {"date": dt.date.today().isoformat(), "machine": machine(),
                    "command": command or " ".join(
                        ["python", f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
                    "load": load},
            "columns": columns, "rows": rows, "notes": notes}
    if figures is not None:
        data["figures"] = figures
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
    return path
