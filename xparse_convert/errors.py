"""The project's exceptions: every failure a user can cause names its input and where."""

from __future__ import annotations


class XParseError(Exception):
    """A conversion failed for a reason the user can act on.

    ``source`` names the input, ``where`` the place in it (``byte 1234``, ``element el_9 (#8)``)
    when known; ``str()`` gives the message alone so callers compose the one-line report.
    """

    def __init__(self, message: str, *, source: str | None = None, where: str | None = None):
        super().__init__(message)
        self.message = message
        self.source = source
        self.where = where

    def one_line(self) -> str:
        parts = [p for p in (self.source, self.where, self.message) if p]
        return ": ".join(parts).replace("\n", " ")


class InputError(XParseError):
    """The input is not a readable xParse result (malformed, truncated, wrong shape)."""


class ApiError(XParseError):
    """The input is an API error envelope (``code`` != 200)."""

    def __init__(self, message: str, *, code: object, source: str | None = None,
                 where: str | None = None):
        super().__init__(message, source=source, where=where)
        self.code = code


class OutputError(XParseError):
    """An output cannot be written (collision, unwritable folder, stdout misuse)."""


class UsageError(XParseError):
    """The command line or the options are wrong."""
