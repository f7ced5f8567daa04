"""A content-addressed cache of expensive work, in a directory a CI cache step can persist.

Entries are keyed by what they were computed from (model, text, config) and written atomically.
The cache is never input from the pull request:

- Each entry is signed with an HMAC-SHA256 whose random key lives in the per-user directory
  (:func:`.home.user_home`, ``cache-key``), outside the repository, so a pull request cannot
  compute it. An entry that fails its signature (committed, tampered with, written with another
  key or by another version of the format) is recomputed with a warning, never trusted.
- A cache directory that git tracks files in, or that is (or lies under) a symbolic link inside
  the repository, is not used for the run (one warning): its content is the repository's, i.e.
  the pull request's. The tool does not touch those files.
- Entries are regular files of bounded size (:data:`MAX_ENTRY_BYTES`), opened without following
  symbolic links; anything else in an entry's place is replaced by a fresh entry.

Nothing is pickled, so even an entry that passed every check could at worst give a wrong result
to a run holding the key, never run code.
"""

from __future__ import annotations

from typing import Any

from .files import read_regular, remove_path
from .signing import KEY_BYTES, KEY_FILE, signing_key, untrusted_directory
from .store import (
    DEFAULT_MAX_ENTRY_BYTES,
    FORMAT,
    MAX_ENTRY_BYTES,
    MAX_SIGNATURE_BYTES,
    Cache,
    content_key,
    text_keys,
)

__all__ = [
    "DEFAULT_MAX_ENTRY_BYTES", "FORMAT", "KEY_BYTES", "KEY_FILE", "MAX_ENTRY_BYTES",
    "MAX_SIGNATURE_BYTES", "Cache", "CachedEmbedder", "content_key", "read_regular",
    "remove_path", "signing_key", "text_keys", "untrusted_directory",
]


def __getattr__(name: str) -> Any:
    """``CachedEmbedder``, whose home is now :mod:`eval_firewall.embeddings.cached`: still
    importable from here, imported on first use (it imports this package's store)."""
    if name == "CachedEmbedder":
        from ..embeddings.cached import CachedEmbedder
        return CachedEmbedder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
