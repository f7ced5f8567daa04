"""Text normalization for exact matching: Unicode NFKC, case, whitespace, punctuation."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_PUNCT_OR_SPACE = re.compile(r"[\W_]+", re.UNICODE)


def normalize(text: str) -> str:
    """NFKC, casefolded, punctuation and whitespace runs collapsed to one space."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _PUNCT_OR_SPACE.sub(" ", folded).strip()


def text_hash(normalized: str) -> bytes:
    """A 16-byte content hash of normalized text."""
    return hashlib.blake2b(normalized.encode("utf-8"), digest_size=16).digest()
