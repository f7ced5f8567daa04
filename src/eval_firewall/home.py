"""eval-firewall's per-user directory, outside any repository a pull request controls.

It holds what is worth keeping across repositories and what a pull request must not be able to
forge: the distilled static models (keyed by the full model's content hash) and the cache's
signing key. ``$EVAL_FIREWALL_HOME`` when set, else ``$XDG_CACHE_HOME/eval-firewall``, else
``~/.cache/eval-firewall``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def user_home(env: Mapping[str, str] = os.environ) -> Path:
    """The per-user directory: ``$EVAL_FIREWALL_HOME``, else under ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    if env.get("EVAL_FIREWALL_HOME"):
        return Path(env["EVAL_FIREWALL_HOME"]).expanduser()
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "eval-firewall"
