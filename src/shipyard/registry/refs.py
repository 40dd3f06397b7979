"""Model references: ``name``, ``name:3``, ``name@alias`` and the URI forms
``models:/name@alias``, ``models:/name/3`` and ``models:/name``.

A bare name means the latest version that is not retired; so does the alias ``latest``,
which therefore cannot be set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shipyard.errors import InvalidArgument
from shipyard.validation import check_name

LATEST = "latest"
# Versions are 32-bit integers in the store; the REST API declares the same bounds.
MAX_VERSION = 2**31 - 1
_REF = re.compile(r"(?P<name>[^:@/]+)(?:(?:[:/])(?P<version>[^:@/]+)|@(?P<alias>[^:@/]+))?")


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


def parse_ref(ref: str) -> ModelRef:
    """Parse a reference without touching the store; ``InvalidArgument`` if malformed."""
    if not isinstance(ref, str):
        raise InvalidArgument("a model reference must be a string", field="ref")
    text = ref.strip()
    if text.startswith("models:/"):
        text = text.removeprefix("models:/")
    elif "/" in text:
        raise InvalidArgument(
            f"model reference {ref[:80]!r}: use name, name:3, name@alias or models:/name@alias",
            field="ref",
        )
    match = _REF.fullmatch(text)
    if match is None:
        raise InvalidArgument(
            f"model reference {ref[:80]!r}: use name, name:3, name@alias or models:/name@alias",
            field="ref",
        )
    name = check_name(match["name"], "ref")
    if match["version"] is not None:
        return ModelRef(name, version=check_version(match["version"]))
    if match["alias"] is not None and match["alias"] != LATEST:
        return ModelRef(name, alias=check_name(match["alias"], "alias"))
    return ModelRef(name)


def check_version(value: object) -> int:
    """``value`` as a version number from 1 to ``MAX_VERSION``.

    The messages for numbers out of range are the REST API's own (its request validation
    says the same for a path or body field), so that local and remote mode report the
    same mistake in the same words.
    """
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(
            f"version must be a positive integer, got {str(value)[:20]!r}", field="version"
        )
    if value < 1:
        raise InvalidArgument("version: Input should be greater than or equal to 1",
                              field="version")
    if value > MAX_VERSION:
        raise InvalidArgument(
            f"version: Input should be less than or equal to {MAX_VERSION}", field="version"
        )
    return value


def check_alias(alias: object) -> str:
    """An alias a user may set: a name that cannot be mistaken for a version or ``latest``."""
    name = check_name(alias, "alias")
    if name.isdigit() or name == LATEST:
        raise InvalidArgument(
            f"alias {name!r} is reserved: an alias cannot be a number or 'latest'",
            field="alias",
        )
    return name
