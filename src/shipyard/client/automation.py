"""Schedules and triggers over the REST API (the remote ``AutomationPort``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter

from shipyard.client.http import HttpClient
from shipyard.events.actions import check_action
from shipyard.events.automation import Schedule, ScheduleTick, Trigger, TriggerFiring
from shipyard.validation import check_name

_SCHEDULES = TypeAdapter(list[Schedule])
_TICKS = TypeAdapter(list[ScheduleTick])
_TRIGGERS = TypeAdapter(list[Trigger])
_FIRINGS = TypeAdapter(list[TriggerFiring])


class HttpAutomation:
    def __init__(self, client: HttpClient) -> None:
        self._c = client

    def _path(self, kind: str, name: str = "", rest: str = "") -> str:
        item = f"/{quote(check_name(name, kind[:-1]), safe='')}" if name else ""
        return self._c.project_path(f"/events/{kind}{item}{rest}")

    def create_schedule(self, name: str, *, cron: str, action: Mapping[str, Any],
                        timezone: str = "UTC", misfire: str = "skip",
                        max_concurrent: int = 1, paused: bool = False) -> Schedule:
        body = {"name": check_name(name, "name"), "cron": cron, "timezone": timezone,
                "misfire": misfire, "max_concurrent": max_concurrent, "paused": paused,
                "action": check_action(action).model_dump(mode="json")}
        return Schedule.model_validate(self._c.json("POST", self._path("schedules"),
                                                    json=body))

    def get_schedule(self, name: str) -> Schedule:
        return Schedule.model_validate(self._c.json("GET", self._path("schedules", name)))

    def list_schedules(self) -> list[Schedule]:
        return _SCHEDULES.validate_python(self._c.json("GET", self._path("schedules")))

    def pause_schedule(self, name: str) -> Schedule:
        return Schedule.model_validate(self._c.json(
            "POST", self._path("schedules", name, "/pause")))

    def resume_schedule(self, name: str) -> Schedule:
        return Schedule.model_validate(self._c.json(
            "POST", self._path("schedules", name, "/resume")))

    def delete_schedule(self, name: str) -> None:
        self._c.request("DELETE", self._path("schedules", name))

    def list_ticks(self, name: str, limit: int = 100) -> list[ScheduleTick]:
        return _TICKS.validate_python(self._c.json(
            "GET", self._path("schedules", name, "/ticks"), params={"limit": limit}))

    def create_trigger(self, name: str, *, topic: str, action: Mapping[str, Any],
                       filter: Mapping[str, Any] | None = None, cooldown_seconds: int = 0,
                       max_attempts: int = 5, min_backoff_seconds: int = 10,
                       max_backoff_seconds: int = 600, paused: bool = False) -> Trigger:
        body = {"name": check_name(name, "name"), "topic": check_name(topic, "topic"),
                "action": check_action(action).model_dump(mode="json"),
                "filter": None if filter is None else dict(filter),
                "cooldown_seconds": cooldown_seconds, "max_attempts": max_attempts,
                "min_backoff_seconds": min_backoff_seconds,
                "max_backoff_seconds": max_backoff_seconds, "paused": paused}
        return Trigger.model_validate(self._c.json("POST", self._path("triggers"), json=body))

    def get_trigger(self, name: str) -> Trigger:
        return Trigger.model_validate(self._c.json("GET", self._path("triggers", name)))

    def list_triggers(self, topic: str | None = None) -> list[Trigger]:
        params = {} if topic is None else {"topic": check_name(topic, "topic")}
        return _TRIGGERS.validate_python(self._c.json("GET", self._path("triggers"),
                                                      params=params))

    def pause_trigger(self, name: str) -> Trigger:
        return Trigger.model_validate(self._c.json(
            "POST", self._path("triggers", name, "/pause")))

    def resume_trigger(self, name: str) -> Trigger:
        return Trigger.model_validate(self._c.json(
            "POST", self._path("triggers", name, "/resume")))

    def delete_trigger(self, name: str) -> None:
        self._c.request("DELETE", self._path("triggers", name))

    def list_firings(self, name: str, limit: int = 100) -> list[TriggerFiring]:
        return _FIRINGS.validate_python(self._c.json(
            "GET", self._path("triggers", name, "/firings"), params={"limit": limit}))
