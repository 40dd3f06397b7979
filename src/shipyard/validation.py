"""Checks shared by every entry point: names, keys, numbers and sizes.

Each check raises ``InvalidArgument`` naming the field, so the SDK, the CLI and the REST
API all report bad input the same way.
"""

from __future__ import annotations

import math
import re
from typing import Any

from shipyard.errors import InvalidArgument, TooLarge

# A resource name: starts with a letter or digit, then letters, digits, '.', '_' or '-'.
# No '/', '\\', '%', whitespace or control characters, so a name can never become a path.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Param, metric and tag keys may also hold '/' and ' ' (MLflow users write "loss/train").
_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/ :]{0,249}")

MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000


def check_name(value: Any, field: str) -> str:
    """Return ``value`` if it is a valid resource name, else raise naming ``field``."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string", field=field)
    if not _NAME.fullmatch(value) or ".." in value:
        raise InvalidArgument(
            f"{field} {value[:80]!r} is not a valid name: use 1-128 letters, digits, "
            "'.', '_' or '-', starting with a letter or digit",
            field=field,
        )
    return value


def check_key(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string", field=field)
    if not _KEY.fullmatch(value) or ".." in value or value.strip() != value:
        raise InvalidArgument(
            f"{field} {value[:80]!r} is not a valid key: use 1-250 letters, digits, "
            "'_', '.', '-', '/', ':' or spaces",
            field=field,
        )
    return value


def check_finite(value: Any, field: str, *, allow_nan: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise InvalidArgument(f"{field} must be a number", field=field) from None
    number = float(value)
    if math.isinf(number) or (math.isnan(number) and not allow_nan):
        raise InvalidArgument(f"{field} must be a finite number, got {number}", field=field)
    return number


def check_text(value: Any, field: str, *, limit: int) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        raise TooLarge(f"{field} is {len(text)} characters long; the limit is {limit}",
                       field=field)
    if "\x00" in text:
        raise InvalidArgument(f"{field} must not contain NUL characters", field=field)
    return text
