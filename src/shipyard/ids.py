"""Server-made ids: 32 lowercase hex characters, time-ordered so that ids sort by creation."""

from __future__ import annotations

import os
import re
import time

from shipyard.errors import InvalidArgument

_ID = re.compile(r"[0-9a-f]{32}")


def new_id() -> str:
    """A 128-bit id: 48 bits of milliseconds since the epoch, then 80 random bits."""
    millis = time.time_ns() // 1_000_000
    return f"{millis:012x}{os.urandom(10).hex()}"


def check_id(value: object, field: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidArgument(f"{field} must be a 32-character hex id", field=field)
    return value
