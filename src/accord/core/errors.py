"""Every error accord raises on purpose, and what each one means to the shells.

Each class carries its HTTP status, its CLI exit code and a stable code string (the ``error`` field of
a server's error body, by default the class name). The server's status map, the CLI's exit codes and
the HTTP CLI's decoding of an error answer are all read from here, so they cannot drift apart.

    AccordError                      400  exit 1   root; ``detail`` is the one-line message
    ├── InputError                   400  exit 2   bad input on the command line or in a file
    │   ├── InvalidRequestError      422  exit 2   the server refused the request's shape (RequestValidationError)
    │   └── EnvironError             400  exit 2   an ACCORD_* variable holds a value accord cannot use
    ├── InvalidKeyError              422  exit 2   a key or path breaks the grammar or the length limit
    ├── ValueTooLargeError           413  exit 2
    ├── RequestTooLargeError         413  exit 2
    ├── ConflictError                409  exit 3   compare-and-set lost; nothing was written
    ├── NotFoundError                404  exit 4
    │   ├── CompactedError           410  exit 4   history below the revision was compacted away
    │   └── ServiceNotFoundError     404  exit 4   discovery: no URL in KV and no healthy instance of a service
    ├── UnknownSettingError          404  exit 2   a path no application declared
    ├── ValidationFailedError        422  exit 2   a value breaks its setting's type or rule
    │   └── InvalidInputError        422  exit 2   vault: text or a name it cannot take
    │       └── BadRequestError      422  exit 2   proxy: a body the endpoint does not accept
    ├── CodecError                   422  exit 2
    ├── ConfigFileError              422  exit 2
    ├── SchemaConflictError          409  exit 3   a declaration incompatible with the stored one (replace_schema=True)
    ├── PolicyError                  422  exit 2   a token rule that does not parse
    ├── TokenError                   422  exit 2   a token request that cannot be honoured
    ├── AuthenticationError          401  exit 6
    ├── PermissionDeniedError        403  exit 7
    ├── StoreUnavailableError        503  exit 5   the database could not be reached
    │   ├── CacheUnavailableError    503  exit 5   accord.cache: Redis did not answer and no fallback is configured
    │   ├── ReadOnlyError            503  exit 5   running from a cache or snapshot
    │   └── ServerUnreachableError   503  exit 5   the server named by ACCORD_ADDR did not answer
    ├── NotAppliedError              504  exit 8   --wait-applied: live instances had not applied the change in time
    ├── CryptoError                  400  exit 1
    │   ├── MasterKeyError           503  exit 1   the master key is missing or malformed (a misconfigured server)
    │   └── DecryptionError          503  exit 1
    ├── VaultError                   400  exit 1
    │   ├── SequenceError            400  exit 1
    │   └── UpstreamFailedError      502  exit 1   proxy: the model API timed out or could not be reached
    ├── RemoteError                  (its answer's status)  an error answer naming a code this CLI does not know
    └── ConsulApiError               400  exit 1   /v1: Consul's status (its instance field) and exact plain-text body

    BusUnavailableError, BodyTooLargeError: internal signals, caught where they are raised; never shown.

The proxy's ``status``/``code`` instance fields are its providers' wire format, not these.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AccordError",
    "AuthenticationError",
    "BadRequestError",
    "BodyTooLargeError",
    "BusUnavailableError",
    "CacheUnavailableError",
    "CodecError",
    "CompactedError",
    "ConfigFileError",
    "ConflictError",
    "ConsulApiError",
    "CryptoError",
    "DecryptionError",
    "EnvironError",
    "InputError",
    "InvalidInputError",
    "InvalidKeyError",
    "InvalidRequestError",
    "MasterKeyError",
    "NotAppliedError",
    "NotFoundError",
    "PermissionDeniedError",
    "PolicyError",
    "ReadOnlyError",
    "RemoteError",
    "RequestTooLargeError",
    "SchemaConflictError",
    "SequenceError",
    "ServerUnreachableError",
    "ServiceNotFoundError",
    "StoreUnavailableError",
    "TokenError",
    "UnknownSettingError",
    "UpstreamFailedError",
    "ValidationFailedError",
    "ValueTooLargeError",
    "VaultError",
    "by_code",
    "decode",
    "error_classes",
    "exit_code_for",
    "for_status",
]

_BY_CODE: dict[str, type[AccordError]] = {}


class AccordError(Exception):
    """Root of every error accord raises on purpose."""

    http_status: ClassVar[int] = 400
    exit_code: ClassVar[int] = 1
    error_code: ClassVar[str] = "AccordError"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def __init_subclass__(cls, *, code: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.error_code = code or cls.__name__
        known = _BY_CODE.setdefault(cls.error_code, cls)
        if known is not cls:
            raise TypeError(f"error code {cls.error_code!r} is taken by {known.__module__}.{known.__qualname__}")

    @classmethod
    def from_detail(cls, detail: str) -> AccordError:
        """The error as a remote answer describes it: its class and message, nothing the wire does not carry."""
        return cls(detail)


_BY_CODE[AccordError.error_code] = AccordError


class InputError(AccordError):
    """Bad input on the command line or in a file the command was given."""

    exit_code = 2


class InvalidRequestError(InputError, code="RequestValidationError"):
    """A request whose shape the server refused before any library call (FastAPI's validation)."""

    http_status = 422


class EnvironError(InputError):
    """An ``ACCORD_*`` environment variable holds a value accord cannot use; ``variable`` names it."""

    def __init__(self, detail: str, *, variable: str = "") -> None:
        super().__init__(detail)
        self.variable = variable


class InvalidKeyError(AccordError):
    """A key or setting path breaks the key grammar or the length limit."""

    http_status = 422
    exit_code = 2


class ValueTooLargeError(AccordError):
    """A value is larger than the store accepts."""

    http_status = 413
    exit_code = 2


class RequestTooLargeError(AccordError):
    """A request body larger than the server accepts."""

    http_status = 413
    exit_code = 2


class SchemaConflictError(AccordError):
    """A setting is declared incompatibly with the declaration stored for it (type changed, rules narrowed).

    Nothing was registered; connect with ``replace_schema=True`` to replace the stored declaration.
    """

    http_status = 409
    exit_code = 3


class ConflictError(AccordError):
    """A compare-and-set write found a different version than it expected; nothing was written."""

    http_status = 409
    exit_code = 3

    def __init__(self, detail: str, *, key: str, expected: int, actual: int) -> None:
        super().__init__(detail)
        self.key = key
        self.expected = expected
        self.actual = actual

    @classmethod
    def from_detail(cls, detail: str) -> ConflictError:
        return cls(detail, key="", expected=-1, actual=-1)  # the wire carries only the message


class NotFoundError(AccordError):
    """A key, version or revision that does not exist."""

    http_status = 404
    exit_code = 4


class CompactedError(NotFoundError):
    """History below the requested revision was compacted away; a full reload is needed."""

    http_status = 410

    def __init__(self, detail: str, *, compacted_revision: int) -> None:
        super().__init__(detail)
        self.compacted_revision = compacted_revision

    @classmethod
    def from_detail(cls, detail: str) -> CompactedError:
        return cls(detail, compacted_revision=-1)


class ServiceNotFoundError(NotFoundError):
    """Discovery found neither a pinned URL nor a healthy instance of the service it was asked for."""


class NotAppliedError(AccordError):
    """The change was written, but some live instances had not applied it when the wait ran out."""

    http_status = 504
    exit_code = 8


class UnknownSettingError(AccordError):
    """A dotted path that no application has declared as a setting."""

    http_status = 404
    exit_code = 2


class ValidationFailedError(AccordError):
    """A value does not satisfy the declared type or constraints of its setting; nothing was written."""

    http_status = 422
    exit_code = 2


class InvalidInputError(ValidationFailedError):
    """Text given to mask/unmask is not valid text, or a name breaks its grammar; nothing was stored."""


class BadRequestError(InvalidInputError):
    """The request body is not what the endpoint accepts; nothing was masked or stored."""

    def __init__(self, detail: str, *, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(detail)
        self.status = status
        self.code = code


class CodecError(AccordError):
    """Stored text could not be decoded as the declared type."""

    http_status = 422
    exit_code = 2


class ConfigFileError(AccordError):
    """A legacy config file could not be read or parsed."""

    http_status = 422
    exit_code = 2


class PolicyError(AccordError):
    """A token rule that does not parse."""

    http_status = 422
    exit_code = 2


class TokenError(AccordError):
    """A token request that cannot be honoured (bad name, duplicate, unknown token)."""

    http_status = 422
    exit_code = 2


class AuthenticationError(AccordError):
    """No token, or a token that is unknown, revoked or expired."""

    http_status = 401
    exit_code = 6


class PermissionDeniedError(AccordError):
    """A valid token whose policy does not allow this operation on this key."""

    http_status = 403
    exit_code = 7


class StoreUnavailableError(AccordError):
    """The database could not be reached; writes are refused rather than half-applied."""

    http_status = 503
    exit_code = 5


class CacheUnavailableError(StoreUnavailableError):
    """The cache's Redis did not answer in time and no fallback is configured (accord.cache)."""


class ReadOnlyError(StoreUnavailableError):
    """The process runs from a cache or snapshot because the database is down; writes are refused."""


class ServerUnreachableError(StoreUnavailableError):
    """The server named by ACCORD_ADDR did not answer."""


class CryptoError(AccordError):
    """Something about encryption keys or encrypted data is wrong."""


class MasterKeyError(CryptoError):
    """The master key is missing or malformed; the message says how to provide one."""

    http_status = 503  # the server is misconfigured (no shared master key), not the request


class DecryptionError(CryptoError):
    """A blob could not be opened: wrong key, tampered data, or not an accord blob."""

    http_status = 503


class VaultError(AccordError):
    """The vault could not do what was asked; nothing was half-written."""


class SequenceError(VaultError):
    """A sequence could not issue numbers."""


class UpstreamFailedError(VaultError):
    """The upstream did not answer in time (504) or could not be reached (502)."""

    http_status = 502

    def __init__(self, detail: str, *, status: int = 502, code: str = "upstream_unreachable") -> None:
        super().__init__(detail)
        self.status = status
        self.code = code


class RemoteError(AccordError):
    """An error answer whose code this CLI does not know (a newer server): its HTTP status decides the exit code."""

    def __init__(self, detail: str, *, status: int) -> None:
        super().__init__(detail)
        self.status = status

    @classmethod
    def from_detail(cls, detail: str) -> RemoteError:
        return cls(detail, status=cls.http_status)


class ConsulApiError(AccordError):
    """A refusal on the Consul API, which clients match by status and by the exact text Consul sends."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status

    @classmethod
    def from_detail(cls, detail: str) -> ConsulApiError:
        return cls(cls.http_status, detail)


class BusUnavailableError(Exception):
    """Internal: a publish could not be delivered by this bus; a composite bus then tries its fallback."""


class BodyTooLargeError(Exception):
    """Raised from ``receive`` once a body outgrows the limit (FastAPI's parser wraps it: see server/errors.py)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")


# ----- what the shells derive ---------------------------------------------------------------------


def error_classes() -> list[type[AccordError]]:
    """Every error class known to this process, in the order they were defined (this module's first)."""
    return list(_BY_CODE.values())


def by_code(code: str) -> type[AccordError] | None:
    return _BY_CODE.get(code)


def for_status(status: int) -> type[AccordError] | None:
    """The first class defined with this HTTP status (the root and RemoteError aside): the most general one."""
    return next(
        (cls for cls in _BY_CODE.values() if cls.http_status == status and cls not in (AccordError, RemoteError)),
        None,
    )


def exit_code_for(exc: AccordError) -> int:
    if isinstance(exc, RemoteError):
        known = for_status(exc.status)
        return known.exit_code if known is not None else AccordError.exit_code
    return exc.exit_code


def decode(code: object, detail: str, status: int) -> AccordError:
    """An error answer (its ``error`` code, ``detail`` and HTTP status) as the class that was raised."""
    cls = by_code(code) if isinstance(code, str) else None
    if cls is None or cls is RemoteError:
        return RemoteError(detail, status=status)
    return cls.from_detail(detail)
