"""The events capability's value types (pydantic, so the REST layer returns them as they
are)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from shipyard.errors import InvalidArgument, TooLarge

MAX_DATA_BYTES = 256 * 1024


def check_data(data: Any) -> Any:
    """``data`` as the bus stores it (a JSON value), or ``InvalidArgument`` naming ``data``:
    checked where it is published and, in remote mode, before it is sent."""
    try:
        encoded = json.dumps(data, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"data must be JSON (objects, lists, strings, finite numbers, "
                              f"booleans, null): {exc}", field="data") from None
    size = len(encoded.encode())
    if size > MAX_DATA_BYTES:
        raise TooLarge(f"data is {size:,} bytes as JSON; the limit is {MAX_DATA_BYTES:,}",
                       field="data")
    return json.loads(encoded)


class Topic(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    project: str
    name: str
    retention_seconds: int
    created_at: datetime


class Subscription(BaseModel):
    """A subscription: its own copy of every message published to ``topic`` after it was
    created, delivered at least once."""

    model_config = ConfigDict(frozen=True)

    id: str
    project: str
    name: str
    topic: str
    max_attempts: int
    ack_deadline_seconds: int
    min_backoff_seconds: int
    max_backoff_seconds: int
    created_at: datetime


class Message(BaseModel):
    """A delivered message. ``lease_token`` acknowledges it (``ack``/``nack``/``extend``);
    ``attempt`` counts deliveries, this one included."""

    model_config = ConfigDict(frozen=True)

    id: str
    topic: str
    subscription: str
    data: Any
    attributes: dict[str, str]
    ordering_key: str | None
    published_at: datetime
    attempt: int
    lease_token: str
    lease_until: datetime


class DeadLetter(BaseModel):
    """A message a subscription gave up on after ``max_attempts``, with every attempt."""

    model_config = ConfigDict(frozen=True)

    id: str
    subscription: str
    data: Any
    attributes: dict[str, str]
    ordering_key: str | None
    published_at: datetime
    attempts: int
    history: list[dict[str, Any]]


class Watch(BaseModel):
    """A watched directory or bucket prefix (``events.watches``): new files there are
    announced as ``data-arrived``."""

    model_config = ConfigDict(frozen=True)

    id: str
    project: str
    name: str
    uri: str
    interval_seconds: int
    next_scan_at: datetime
    last_scan_at: datetime | None
    created_at: datetime


class PushEndpoint(BaseModel):
    """Where a push subscription's messages are POSTed (``endpoint`` None: pulled)."""

    model_config = ConfigDict(frozen=True)

    subscription: str
    endpoint: str | None
    timeout_seconds: int | None
