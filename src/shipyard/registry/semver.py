"""Semantic version labels (MAJOR.MINOR.PATCH[-pre][+build]) and their bumps."""

from __future__ import annotations

import re
from typing import Literal

from shipyard.errors import InvalidArgument

Bump = Literal["major", "minor", "patch"]
FIRST = "1.0.0"
_SEMVER = re.compile(
    r"(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})"
    r"(?:-[0-9A-Za-z.-]{1,32})?(?:\+[0-9A-Za-z.-]{1,32})?"
)


def _match(value: object) -> re.Match[str]:
    match = _SEMVER.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidArgument(
            f"semver {str(value)[:40]!r} is not a semantic version such as 1.4.2",
            field="semver",
        )
    return match


def check_semver(value: object) -> str:
    return _match(value).group(0)


def parts(value: str) -> tuple[int, int, int]:
    """The numeric (major, minor, patch) of a semver, for ordering."""
    match = _match(value)
    return int(match[1]), int(match[2]), int(match[3])


def bump(value: str, kind: Bump) -> str:
    major, minor, patch = parts(value)
    if kind == "major":
        return f"{major + 1}.0.0"
    if kind == "minor":
        return f"{major}.{minor + 1}.0"
    if kind == "patch":
        return f"{major}.{minor}.{patch + 1}"
    raise InvalidArgument(f"bump must be major, minor or patch, not {kind!r}", field="bump")
