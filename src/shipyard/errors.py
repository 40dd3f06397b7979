"""Errors raised by Shipyard.

Every error a user can see is a ``ShipyardError``; its kind says what went wrong in terms
that map one-to-one onto HTTP statuses (the mapping lives in ``shipyard.server.errors``
and back again in ``shipyard.client``)::

    ShipyardError
    ├── InvalidArgument        bad input; ``field`` names the offending field
    │   └── TooLarge           input over a configured limit
    ├── NotFound               an unknown id, name, version or alias
    ├── AlreadyExists          a name that is taken
    ├── Conflict               a concurrent change won; retry with fresh state
    ├── FailedPrecondition     the operation is not allowed in the current state
    ├── Unauthenticated        no valid credentials
    ├── PermissionDenied       valid credentials, missing permission
    ├── Unavailable            a busy or unreachable dependency; safe to retry
    ├── DataCorruption         stored bytes do not match their recorded digest
    └── UnsafeModel            a model file that would need unpickling without trust
"""

from __future__ import annotations

from typing import Any


class ShipyardError(Exception):
    """Base class. ``message`` is a one-line headline the CLI prints as is."""

    kind = "internal"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    def __str__(self) -> str:
        return self.message


class InvalidArgument(ShipyardError):
    kind = "invalid_argument"


class TooLarge(InvalidArgument):
    kind = "too_large"


class NotFound(ShipyardError):
    kind = "not_found"


class AlreadyExists(ShipyardError):
    kind = "already_exists"


class Conflict(ShipyardError):
    kind = "conflict"


class FailedPrecondition(ShipyardError):
    kind = "failed_precondition"


class Unauthenticated(ShipyardError):
    kind = "unauthenticated"


class PermissionDenied(ShipyardError):
    kind = "permission_denied"


class Unavailable(ShipyardError):
    kind = "unavailable"

    def __init__(
        self, message: str, *, retry_after: float = 1.0, field: str | None = None, **details: Any
    ) -> None:
        super().__init__(message, field=field, **details)
        self.retry_after = retry_after


class DataCorruption(ShipyardError):
    kind = "data_corruption"


class UnsafeModel(ShipyardError):
    kind = "unsafe_model"


class MissingDependency(FailedPrecondition):
    """An optional extra is not installed; the message names the pip command."""

    kind = "missing_dependency"

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed: run  pip install 'shipyard[{extra}]'",
            package=package,
            extra=extra,
        )


ERROR_KINDS: dict[str, type[ShipyardError]] = {
    cls.kind: cls
    for cls in (
        ShipyardError,
        InvalidArgument,
        TooLarge,
        NotFound,
        AlreadyExists,
        Conflict,
        FailedPrecondition,
        Unauthenticated,
        PermissionDenied,
        Unavailable,
        DataCorruption,
        UnsafeModel,
        MissingDependency,
    )
}


# The HTTP status each kind is answered with (the server's problem responses, and the
# status a failed prediction is logged with in either mode).
HTTP_STATUS: dict[str, int] = {
    "invalid_argument": 400,
    "too_large": 413,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "already_exists": 409,
    "conflict": 409,
    "failed_precondition": 412,
    "missing_dependency": 412,
    "unsafe_model": 422,
    "data_corruption": 500,
    "unavailable": 503,
    "unsupported_media_type": 415,
    "internal": 500,
}


def failure_of(exc: BaseException) -> tuple[int, str]:
    """The status and the logged ``kind: message`` of a failed call (a foreign exception
    is an internal error named by its type only: its message may hold data)."""
    if isinstance(exc, ShipyardError):
        return HTTP_STATUS.get(exc.kind, 500), f"{exc.kind}: {exc.message}"
    return 500, f"internal: {type(exc).__name__}"
