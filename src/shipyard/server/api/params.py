"""Path parameters with their bounds declared, so ``/openapi.json`` states what is valid.

The checks themselves stay where they were (``shipyard.validation`` in the services, the
policy dependency for ``project``); these declarations only make the published schema say
the same thing, which is what lets schemathesis tell a valid request from an invalid one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

__all__ = [
    "FILTER_MAX",
    "KEY_PATTERN",
    "NAME_PATTERN",
    "Id",
    "Name",
    "OptionalId",
    "OptionalName",
    "VersionNumber",
    "project_parameter",
]

# shipyard.validation.check_name, as a regex without look-arounds (the schema's dialect):
# a letter or digit, then letters, digits, '_', '-' or single dots (never '..').
NAME_PATTERN = r"^[A-Za-z0-9](\.?[A-Za-z0-9_-])*\.?$"
ID_PATTERN = r"^[0-9a-f]{32}$"
# shipyard.validation.check_key the same way (metric, param and tag keys).
KEY_PATTERN = r"^[A-Za-z0-9_](\.?[A-Za-z0-9_/:-]|\.? +[A-Za-z0-9_/:-])*$"
# A filter travels in the query string: 1000 characters percent-encode to at most 12 KB,
# which fits uvicorn's 16 KiB request head; a longer one would be refused before the app
# (as text/plain) however the route declared it.
FILTER_MAX = 1000

Name = Annotated[str, Path(min_length=1, max_length=128, pattern=NAME_PATTERN)]
Id = Annotated[str, Path(min_length=32, max_length=32, pattern=ID_PATTERN)]
OptionalName = Annotated[str | None, Query(min_length=1, max_length=128,
                                               pattern=NAME_PATTERN)]
OptionalId = Annotated[str | None, Query(min_length=32, max_length=32, pattern=ID_PATTERN)]
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]


def project_parameter(project: Name) -> None:
    """Declares ``{project}`` (in every router prefix) in the schema; the policy dependency
    has already checked it by the time this runs."""
