"""The events capability's value types (pydantic, so the REST layer returns them as they
are)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


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
