"""Where eval-firewall keeps its files: the per-user directory, outside any repository a pull
request controls, and the name of the cache directory beside the audited data.

It holds what is worth keeping across repositories and what a pull request must not be able to
forge: the distilled static models (keyed by the full model's content hash) and the cache's
signing key. ``$EVAL_FIREWALL_HOME`` when set, else ``$XDG_CACHE_HOME/eval-firewall``, else
``~/.cache/eval-firewall``.

The cache directory (:data:`DEFAULT_CACHE`) is the command's in the current directory and
``run_audits``' in the config's folder, unless told otherwise; it is the repository's, so its
entries are signed with the key kept in the per-user directory (:mod:`.cache`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_CACHE = ".eval-firewall-cache"


def user_home(env: Mapping[str, str] = os.environ) -> Path:
    """The per-user directory: ``$EVAL_FIREWALL_HOME``, else under ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    if env.get("EVAL_FIREWALL_HOME"):
        return Path(env["EVAL_FIREWALL_HOME"]).expanduser()
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "eval-firewall"
