"""Schedules and triggers from the SDK (re-exported as ``shipyard.*``), in local and remote
mode alike. Actions are ``shipyard.actions`` values (or their JSON form)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.events.actions import check_action
from shipyard.events.automation import Schedule, ScheduleTick, Trigger, TriggerFiring
from shipyard.events.automation_port import AutomationPort
from shipyard.sdk import session

__all__ = ["create_schedule", "create_trigger", "delete_schedule", "delete_trigger",
           "enable_retraining", "get_schedule", "get_trigger", "list_schedules",
           "list_triggers", "pause_schedule", "pause_trigger", "resume_schedule",
           "resume_trigger", "schedule_ticks", "trigger_firings"]


def _port() -> AutomationPort:
    return session.current().automation


def _action(action: Any) -> dict[str, Any]:
    typed = check_action(action)
    data: dict[str, Any] = typed.model_dump(mode="json")
    return data


def create_schedule(name: str, *, cron: str, action: Any, timezone: str = "UTC",
                    misfire: str = "skip", max_concurrent: int = 1, paused: bool = False
                    ) -> Schedule:
    """Run ``action`` on ``cron`` (five fields) in ``timezone`` (an IANA name). ``misfire``:
    what to do with ticks missed while no worker ran: ``skip``, ``run_once`` or
    ``catch_up(n)``. At most ``max_concurrent`` of its actions are in flight at once."""
    return _port().create_schedule(name, cron=cron, action=_action(action),
                                   timezone=timezone, misfire=misfire,
                                   max_concurrent=max_concurrent, paused=paused)


def get_schedule(name: str) -> Schedule:
    return _port().get_schedule(name)


def list_schedules() -> list[Schedule]:
    return _port().list_schedules()


def pause_schedule(name: str) -> Schedule:
    return _port().pause_schedule(name)


def resume_schedule(name: str) -> Schedule:
    return _port().resume_schedule(name)


def delete_schedule(name: str) -> None:
    _port().delete_schedule(name)


def schedule_ticks(name: str, limit: int = 100) -> list[ScheduleTick]:
    """The schedule's latest ticks (newest first) and what each did."""
    return _port().list_ticks(name, limit)


def create_trigger(name: str, *, topic: str, action: Any,
                   filter: Mapping[str, Any] | None = None, cooldown_seconds: int = 0,
                   max_attempts: int = 5, min_backoff_seconds: int = 10,
                   max_backoff_seconds: int = 600, paused: bool = False) -> Trigger:
    """On each message of ``topic`` whose data matches ``filter`` (``{field: value}`` or
    ``{field: [values]}``), run ``action``, at most once per ``cooldown_seconds``. A
    failing action is retried with backoff and dead-lettered after ``max_attempts``."""
    return _port().create_trigger(
        name, topic=topic, action=_action(action), filter=filter,
        cooldown_seconds=cooldown_seconds, max_attempts=max_attempts,
        min_backoff_seconds=min_backoff_seconds, max_backoff_seconds=max_backoff_seconds,
        paused=paused)


def get_trigger(name: str) -> Trigger:
    return _port().get_trigger(name)


def list_triggers(topic: str | None = None) -> list[Trigger]:
    return _port().list_triggers(topic)


def pause_trigger(name: str) -> Trigger:
    return _port().pause_trigger(name)


def resume_trigger(name: str) -> Trigger:
    return _port().resume_trigger(name)


def delete_trigger(name: str) -> None:
    _port().delete_trigger(name)


def trigger_firings(name: str, limit: int = 100) -> list[TriggerFiring]:
    """What the trigger did with its latest messages (newest first)."""
    return _port().list_firings(name, limit)


def enable_retraining(*, endpoint: str, monitor: str, pipeline: str, model: str,
                      spec: str | None = None, arguments: Mapping[str, Any] | None = None,
                      canary_percent: int = 10, after_requests: int = 100,
                      max_latency_ratio: float = 1.5,
                      prediction_tolerance: float | None = None,
                      promote_alias: str | None = "production",
                      name: str | None = None, error_rate_alpha: float = 0.05,
                      max_error_rate_increase: float = 0.0) -> list[Trigger]:
    """The closed loop as two triggers, returned in this order:

    - ``<name>-retrain``: an alert of ``monitor`` (``monitor-alert-raised``) runs
      ``pipeline`` (``spec``: its compiled YAML; without it, the spec of its latest run)
      with ``arguments`` (templates such as ``{{ event.alert_id }}`` allowed): the pipeline
      trains on fresh data, evaluates the candidate against the champion and registers a
      winner;
    - ``<name>-canary``: a new version of ``model`` (``model-version-registered``) goes to
      ``endpoint`` as a ``canary_percent`` canary, promoted by the workers after
      ``after_requests`` logged requests (``promote_alias`` moved to it) or rolled back if
      its p95 latency is above ``max_latency_ratio`` times the champions', if its error
      rate is worse than theirs (a one-sided two-proportion z-test at level
      ``error_rate_alpha``, allowing ``max_error_rate_increase`` more; a failed request
      is one logged with a status other than 200) or, with ``prediction_tolerance``, if
      its mean prediction strays further from theirs.

    ``name`` defaults to the endpoint's name."""
    from shipyard.events.automation import retraining_triggers

    recipe = retraining_triggers(
        endpoint=endpoint, monitor=monitor, pipeline=pipeline, model=model, spec=spec,
        arguments=arguments, canary_percent=canary_percent, after_requests=after_requests,
        max_latency_ratio=max_latency_ratio, prediction_tolerance=prediction_tolerance,
        promote_alias=promote_alias, name=name, error_rate_alpha=error_rate_alpha,
        max_error_rate_increase=max_error_rate_increase)
    return [create_trigger(t.name, topic=t.topic, filter=t.filter, action=t.action)
            for t in recipe]
