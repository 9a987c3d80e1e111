"""One error tree for the whole library.

Every error carries a human ``detail``; the server maps classes to HTTP statuses and the CLI maps
them to exit codes, so nothing inside the library raises HTTP or CLI specific exceptions.
"""

from __future__ import annotations


class AccordError(Exception):
    """Root of every error accord raises on purpose."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidKeyError(AccordError):
    """A key or setting path breaks the key grammar or the length limit."""


class ValueTooLargeError(AccordError):
    """A value is larger than the store accepts."""


class ConflictError(AccordError):
    """A compare-and-set write found a different version than it expected; nothing was written."""

    def __init__(self, detail: str, *, key: str, expected: int, actual: int) -> None:
        super().__init__(detail)
        self.key = key
        self.expected = expected
        self.actual = actual


class NotFoundError(AccordError):
    """A key, version or revision that does not exist."""


class ValidationFailedError(AccordError):
    """A value does not satisfy the declared type or constraints of its setting; nothing was written."""


class UnknownSettingError(AccordError):
    """A dotted path that no application has declared as a setting."""


class StoreUnavailableError(AccordError):
    """The database could not be reached; writes are refused rather than half-applied."""


class ReadOnlyError(StoreUnavailableError):
    """The process runs from a cache or snapshot because the database is down; writes are refused."""


class ConfigFileError(AccordError):
    """A legacy config file could not be read or parsed."""


class CodecError(AccordError):
    """Stored text could not be decoded as the declared type."""


class CompactedError(NotFoundError):
    """History below the requested revision was compacted away; a full reload is needed."""

    def __init__(self, detail: str, *, compacted_revision: int) -> None:
        super().__init__(detail)
        self.compacted_revision = compacted_revision


class AuthenticationError(AccordError):
    """No token, or a token that is unknown, revoked or expired."""


class PermissionDeniedError(AccordError):
    """A valid token whose policy does not allow this operation on this key."""


class RequestTooLargeError(AccordError):
    """A request body larger than the server accepts."""
