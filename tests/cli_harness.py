"""Running ``eval-firewall audit`` in-process (click's CliRunner) on small GSM8K repositories."""

from __future__ import annotations

import contextlib
from pathlib import Path

from click.testing import CliRunner

from conftest import BASIC_CONFIG, gsm8k
from eval_firewall.cli import main

TRAIN = gsm8k("train", 40)
EVAL = gsm8k("test", 12)
CLEAN_CONFIG = BASIC_CONFIG + "  provenance: {missing: off}\n"
CACHE = ".eval-firewall-cache"


def leaky_eval() -> list[dict]:
    """Eval rows with one exact copy of a train row (an error)."""
    rows = [dict(r) for r in EVAL]
    rows[4]["question"] = TRAIN[7]["question"]
    return rows


def dup_eval() -> list[dict]:
    """Eval rows whose only problem is a duplicate inside the eval set (a warning)."""
    rows = [dict(r) for r in EVAL]
    rows[9] = dict(rows[2])
    return rows


def invoke(cwd: Path, *args: str):
    """Invoke ``eval-firewall ARGS`` with CliRunner, in the folder ``cwd``."""
    with contextlib.chdir(cwd):
        return CliRunner().invoke(main, list(args), catch_exceptions=False)


def run(root: Path, *args: str, config: bool = True, cwd: Path | None = None):
    """Invoke ``eval-firewall audit`` with CliRunner, in ``cwd`` (default: the repo)."""
    argv = ["audit", *(["--config", str(root / ".eval-firewall.yml")] if config else []), *args]
    return invoke(cwd or root, *argv)


def one_error_line(result, message: str) -> None:
    """Exit 2, nothing on stdout, and exactly the one-line error on stderr (run with -q)."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr == f"eval-firewall: error: {message}\n"
