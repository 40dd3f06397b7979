"""Value types of schedules and triggers (pydantic, so the REST layer returns them as they
are), and the closed-loop recipe built from them (``enable_retraining``, on any
``AutomationPort``: local or remote). The services are ``events.scheduler`` and
``events.triggers``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from shipyard.events.actions import Action, check_action

if TYPE_CHECKING:
    from shipyard.events.automation_port import AutomationPort

ALERT_TOPIC = "monitor-alert-raised"  # events.builtin.ALERT_RAISED
REGISTERED_TOPIC = "model-version-registered"  # events.builtin.VERSION_REGISTERED


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


# -- the closed-loop recipe ------------------------------------------------------------------


def retraining_names(endpoint: str, name: str | None = None) -> tuple[str, str]:
    """The names of the recipe's two triggers: ``<name>-retrain`` and ``<name>-canary``
    (``name`` defaults to the endpoint's)."""
    stem = name or endpoint
    return f"{stem}-retrain", f"{stem}-canary"


class RecipeTrigger(BaseModel):
    """One trigger of the recipe, checked, before it is created."""

    model_config = ConfigDict(frozen=True)

    name: str
    topic: str
    filter: dict[str, Any]
    action: dict[str, Any]


def retraining_triggers(*, endpoint: str, monitor: str, pipeline: str, model: str,
                        spec: str | None = None, arguments: Mapping[str, Any] | None = None,
                        canary_percent: int = 10, after_requests: int = 100,
                        max_latency_ratio: float = 1.5,
                        prediction_tolerance: float | None = None,
                        promote_alias: str | None = "production",
                        name: str | None = None, error_rate_alpha: float = 0.05,
                        max_error_rate_increase: float = 0.0) -> list[RecipeTrigger]:
    """The closed loop's two triggers (``sy.enable_retraining`` documents them), checked:
    a bad value names the recipe's argument. Nothing is created."""
    retrain_name, canary_name = retraining_names(endpoint, name)
    retrain = _recipe_action({"type": "run_pipeline", "pipeline": pipeline, "spec": spec,
                              "arguments": dict(arguments or {})}, {})
    canary = _recipe_action(
        {"type": "start_canary", "endpoint": endpoint, "model": model,
         "version_from": "event", "percent": canary_percent, "after_requests": after_requests,
         "max_latency_ratio": max_latency_ratio, "prediction_tolerance": prediction_tolerance,
         "promote_alias": promote_alias, "error_rate_alpha": error_rate_alpha,
         "max_error_rate_increase": max_error_rate_increase}, {"percent": "canary_percent"})
    return [RecipeTrigger(name=retrain_name, topic=ALERT_TOPIC, filter={"monitor": monitor},
                          action=retrain),
            RecipeTrigger(name=canary_name, topic=REGISTERED_TOPIC, filter={"model": model},
                          action=canary)]


def enable_retraining(port: AutomationPort, **recipe: Any) -> list[Trigger]:
    """Create the recipe's triggers (``retraining_triggers(**recipe)``) on ``port``, local
    or remote; both are checked before either is created."""
    return [port.create_trigger(t.name, topic=t.topic, filter=t.filter, action=t.action)
            for t in retraining_triggers(**recipe)]


def _recipe_action(data: dict[str, Any], renamed: Mapping[str, str]) -> dict[str, Any]:
    """``data`` checked as an action (its JSON form); a bad value names the recipe's
    argument."""
    from shipyard.errors import InvalidArgument

    try:
        typed = check_action(data)
    except InvalidArgument as exc:
        named = (exc.field or "").removeprefix("action.")
        field = renamed.get(named, named)
        raise InvalidArgument(exc.message.replace(f"action.{named}", field, 1),
                              field=field) from None
    checked: dict[str, Any] = typed.model_dump(mode="json")
    return checked
