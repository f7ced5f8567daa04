"""The code stays typed and linted: mypy (strict, ``src/``) and ruff, both configured in pyproject.toml.

Marked `lint`: deselected unless asked for (``pytest -m lint``, CI's lint step in .ci/run)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.lint


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=1200)


def test_mypy_strict_is_clean():
    done = run("mypy")
    assert done.returncode == 0, "mypy found errors:\n" + done.stdout + done.stderr


def test_ruff_is_clean():
    done = run("ruff", "check", "--no-fix", ".")
    assert done.returncode == 0, "ruff found problems:\n" + done.stdout + done.stderr
