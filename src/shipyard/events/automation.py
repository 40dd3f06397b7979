"""Value types of schedules and triggers (pydantic, so the REST layer returns them as they
are). The services are ``events.scheduler`` and ``events.triggers``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from shipyard.events.actions import Action


class Schedule(BaseModel):
    """An action run on a cron in a time zone. ``misfire`` says what happens to ticks
    missed while no worker ran: ``skip`` them, ``run_once`` for all of them, or
    ``catch_up`` the latest ``catch_up_max``. At most ``max_concurrent`` of its actions
    (queued or running pipeline runs included) are in flight; a tick beyond that is
    skipped."""

    model_config = ConfigDict(frozen=True)

    id: str
    project: str
    name: str
    cron: str
    timezone: str
    misfire: str
    catch_up_max: int
    max_concurrent: int
    action: Action
    paused: bool
    next_tick_at: datetime
    last_tick_at: datetime | None
    created_at: datetime
    created_by: str | None


class ScheduleTick(BaseModel):
    """One tick a schedule handled: ``claimed`` while its action runs, then ``done``,
    ``failed`` or ``skipped`` (the concurrency cap); ``result`` names what the action made
    (a pipeline run id...)."""

    model_config = ConfigDict(frozen=True)

    schedule: str
    tick_at: datetime
    state: str
    worker: str | None
    claimed_at: datetime
    finished_at: datetime | None
    result: dict[str, Any] | None
    error: str | None


class Trigger(BaseModel):
    """On each message of ``topic`` whose data matches ``filter``, run ``action``, at most
    once per ``cooldown_seconds``. Its messages come through its own subscription
    (``subscription``): a failing action is retried with backoff and dead-lettered there
    after ``max_attempts``."""

    model_config = ConfigDict(frozen=True)

    id: str
    project: str
    name: str
    topic: str
    subscription: str
    filter: dict[str, Any]
    action: Action
    cooldown_seconds: int
    paused: bool
    last_fired_at: datetime | None
    created_at: datetime
    created_by: str | None


class TriggerFiring(BaseModel):
    """What a trigger did with one message (its ``idempotency_key``): ``acting``,
    ``done``, ``failed`` (retried after the backoff) or ``skipped`` (cooldown)."""

    model_config = ConfigDict(frozen=True)

    trigger: str
    idempotency_key: str
    state: str
    attempts: int
    started_at: datetime
    finished_at: datetime | None
    result: dict[str, Any] | None
    error: str | None
