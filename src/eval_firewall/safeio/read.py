"""Bounded reads of the small files a pull request may have committed (its config, its waiver
file): never more than a limit, and one error line naming the file when it is larger, unreadable
or not UTF-8."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError


def read_committed(path: Path, limit: int, *, what: str, display: str) -> str:
    """The UTF-8 text of ``path``, read no further than ``limit`` bytes; a larger file, one that
    cannot be read and one that is not UTF-8 are each a UserError naming ``display``. ``what``
    names the file in the message (``config``, ``waiver file``). Containment is the caller's
    check (:func:`.paths.contained`), made before."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
        if len(raw) > limit:
            raise UserError(f"the {what} is larger than {limit:,} bytes", path=display)
        return raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else exc   # names a byte, not the text
        raise UserError(f"cannot read the {what}: {reason}", path=display) from None
