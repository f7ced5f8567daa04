"""The one user-facing error type: bad input, named by file, line and field."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class UserError(Exception):
    """Bad input from the user (config, data files, arguments).

    The CLI turns it into a single line on stderr and exit code 2.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.field = field
        self.hint = hint

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = self.path + (f":{self.line}" if self.line else "") + ": "
        field = f"field '{self.field}': " if self.field else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{field}{self.message}{hint}".replace("\n", " ")


def validation_error(exc: ValidationError, *, path: str | None = None, prefix: str = "") -> UserError:
    """A pydantic validation's first error as the one-line user error: ``prefix`` and its
    message, its location as the dotted field (each part cut at 40 characters: a key may come
    from a forged file). Never quotes the input."""
    err = exc.errors(include_url=False, include_input=False)[0]
    return UserError(prefix + err["msg"], path=path,
                     field=".".join(str(part)[:40] for part in err["loc"]))
