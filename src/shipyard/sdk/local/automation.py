"""Schedules and triggers in local mode (the local ``AutomationPort``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shipyard.events import scheduler, triggers
from shipyard.events.automation import Schedule, ScheduleTick, Trigger, TriggerFiring

if TYPE_CHECKING:
    from shipyard.sdk.local import Scope


class LocalAutomation:
    def __init__(self, scope: Scope) -> None:
        self._s = scope
        self._store = scope.store

    def create_schedule(self, name: str, *, cron: str, action: Mapping[str, Any],
                        timezone: str = "UTC", misfire: str = "skip",
                        max_concurrent: int = 1, paused: bool = False) -> Schedule:
        return scheduler.create_schedule(self._store, self._s.ctx(), name, cron=cron,
                                         action=action, timezone=timezone, misfire=misfire,
                                         max_concurrent=max_concurrent, paused=paused)

    def get_schedule(self, name: str) -> Schedule:
        return scheduler.get_schedule(self._store, self._s.project, name)

    def list_schedules(self) -> list[Schedule]:
        return scheduler.list_schedules(self._store, self._s.project)

    def pause_schedule(self, name: str) -> Schedule:
        return scheduler.pause_schedule(self._store, self._s.ctx(), name)

    def resume_schedule(self, name: str) -> Schedule:
        return scheduler.resume_schedule(self._store, self._s.ctx(), name)

    def delete_schedule(self, name: str) -> None:
        scheduler.delete_schedule(self._store, self._s.ctx(), name)

    def list_ticks(self, name: str, limit: int = 100) -> list[ScheduleTick]:
        return scheduler.list_ticks(self._store, self._s.project, name, limit=limit)

    def create_trigger(self, name: str, *, topic: str, action: Mapping[str, Any],
                       filter: Mapping[str, Any] | None = None, cooldown_seconds: int = 0,
                       max_attempts: int = 5, min_backoff_seconds: int = 10,
                       max_backoff_seconds: int = 600, paused: bool = False) -> Trigger:
        return triggers.create_trigger(
            self._store, self._s.ctx(), name, topic=topic, action=action, filter=filter,
            cooldown_seconds=cooldown_seconds, max_attempts=max_attempts,
            min_backoff_seconds=min_backoff_seconds, max_backoff_seconds=max_backoff_seconds,
            paused=paused)

    def get_trigger(self, name: str) -> Trigger:
        return triggers.get_trigger(self._store, self._s.project, name)

    def list_triggers(self, topic: str | None = None) -> list[Trigger]:
        return triggers.list_triggers(self._store, self._s.project, topic)

    def pause_trigger(self, name: str) -> Trigger:
        return triggers.pause_trigger(self._store, self._s.ctx(), name)

    def resume_trigger(self, name: str) -> Trigger:
        return triggers.resume_trigger(self._store, self._s.ctx(), name)

    def delete_trigger(self, name: str) -> None:
        triggers.delete_trigger(self._store, self._s.ctx(), name)

    def list_firings(self, name: str, limit: int = 100) -> list[TriggerFiring]:
        return triggers.list_firings(self._store, self._s.project, name, limit=limit)
