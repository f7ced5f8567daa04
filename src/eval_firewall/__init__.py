"""eval-firewall: audit eval sets against train sets before they are called production-ready."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from .config import Config

__all__ = ["load_config", "run_audits", "__version__"]


def _load_config(path: str | Path | None = None, *, root: str | Path | None = None) -> Config:
    """Read and validate a config file, its ``severity:`` keys against every audit's rules."""
    from .audits import RULES
    from .config import load_config

    return load_config(path, root=root, rules=RULES)


def __getattr__(name: str) -> Any:
    """``load_config`` and ``run_audits``, imported on first use (so that importing the
    package, or ``eval-firewall --help``, does not load the engine's libraries)."""
    if name == "load_config":
        return _load_config
    if name == "run_audits":
        from .engine import run_audits
        return run_audits
    raise AttributeError(f"module 'eval_firewall' has no attribute {name!r}")
