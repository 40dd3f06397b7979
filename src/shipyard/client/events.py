"""Events over the REST API (the remote ``EventsPort``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter

from shipyard.client.http import HttpClient
from shipyard.errors import InvalidArgument
from shipyard.events.models import (
    DeadLetter,
    Message,
    PushEndpoint,
    Subscription,
    Topic,
    Watch,
    check_data,
)
from shipyard.validation import check_name

_TOPICS = TypeAdapter(list[Topic])
_SUBSCRIPTIONS = TypeAdapter(list[Subscription])
_MESSAGES = TypeAdapter(list[Message])
_DEAD = TypeAdapter(list[DeadLetter])
_WATCHES = TypeAdapter(list[Watch])


class HttpEvents:
    def __init__(self, client: HttpClient) -> None:
        self._c = client

    def _path(self, kind: str, name: str, rest: str = "") -> str:
        field = "topic" if kind == "topics" else "subscription"
        return self._c.project_path(
            f"/events/{kind}/{quote(check_name(name, field), safe='')}{rest}")

    def create_topic(self, name: str, *, retention_seconds: int = 604800) -> Topic:
        return Topic.model_validate(self._c.json(
            "POST", self._c.project_path("/events/topics"),
            json={"name": check_name(name, "topic"), "retention_seconds": retention_seconds}))

    def list_topics(self) -> list[Topic]:
        return _TOPICS.validate_python(
            self._c.json("GET", self._c.project_path("/events/topics")))

    def publish(self, topic: str, data: Any, *, ordering_key: str | None = None,
                attributes: Mapping[str, str] | None = None) -> str:
        body = {"data": check_data(data), "ordering_key": ordering_key,
                "attributes": None if attributes is None else dict(attributes)}
        answer = self._c.json("POST", self._path("topics", topic, "/publish"), json=body)
        return str(answer["message_id"])

    def create_subscription(self, name: str, topic: str, *, max_attempts: int = 5,
                            ack_deadline_seconds: int = 60, min_backoff_seconds: int = 10,
                            max_backoff_seconds: int = 600) -> Subscription:
        body = {"name": check_name(name, "name"), "topic": check_name(topic, "topic"),
                "max_attempts": max_attempts, "ack_deadline_seconds": ack_deadline_seconds,
                "min_backoff_seconds": min_backoff_seconds,
                "max_backoff_seconds": max_backoff_seconds}
        return Subscription.model_validate(self._c.json(
            "POST", self._c.project_path("/events/subscriptions"), json=body))

    def get_subscription(self, name: str) -> Subscription:
        return Subscription.model_validate(self._c.json("GET",
                                                        self._path("subscriptions", name)))

    def list_subscriptions(self, topic: str | None = None) -> list[Subscription]:
        params = {} if topic is None else {"topic": check_name(topic, "topic")}
        return _SUBSCRIPTIONS.validate_python(self._c.json(
            "GET", self._c.project_path("/events/subscriptions"), params=params))

    def delete_subscription(self, name: str) -> None:
        self._c.request("DELETE", self._path("subscriptions", name))

    def pull(self, subscription: str, max_messages: int = 10) -> list[Message]:
        return _MESSAGES.validate_python(self._c.json(
            "POST", self._path("subscriptions", subscription, "/pull"),
            json={"max_messages": max_messages}))

    def ack(self, subscription: str, lease_tokens: Sequence[str]) -> int:
        if isinstance(lease_tokens, str):
            raise InvalidArgument("lease_tokens is a list of tokens", field="lease_tokens")
        answer = self._c.json("POST", self._path("subscriptions", subscription, "/ack"),
                              json={"lease_tokens": list(lease_tokens)})
        return int(answer["acknowledged"])

    def nack(self, subscription: str, lease_token: str, error: str | None = None) -> str:
        answer = self._c.json("POST", self._path("subscriptions", subscription, "/nack"),
                              json={"lease_token": lease_token, "error": error})
        return str(answer["state"])

    def extend_lease(self, subscription: str, lease_token: str, seconds: int) -> datetime:
        answer = self._c.json("POST", self._path("subscriptions", subscription, "/extend"),
                              json={"lease_token": lease_token, "seconds": seconds})
        return datetime.fromisoformat(str(answer["lease_until"]))

    def seek(self, subscription: str, time: datetime) -> int:
        if not isinstance(time, datetime) or time.tzinfo is None:
            raise InvalidArgument("seek needs a timezone-aware time", field="time")
        answer = self._c.json("POST", self._path("subscriptions", subscription, "/seek"),
                              json={"time": time.isoformat()})
        return int(answer["replayed"])

    def dead_letters(self, subscription: str, limit: int = 100) -> list[DeadLetter]:
        return _DEAD.validate_python(self._c.json(
            "GET", self._path("subscriptions", subscription, "/dead-letters"),
            params={"limit": limit}))

    def set_push_endpoint(self, subscription: str, endpoint: str | None, *,
                          timeout_seconds: int = 10) -> PushEndpoint:
        path = self._path("subscriptions", subscription, "/push")
        if endpoint is None:
            self._c.request("DELETE", path)
            return self.get_push_endpoint(subscription)
        return PushEndpoint.model_validate(self._c.json(
            "PUT", path, json={"push_endpoint": endpoint, "timeout_seconds": timeout_seconds}))

    def get_push_endpoint(self, subscription: str) -> PushEndpoint:
        return PushEndpoint.model_validate(self._c.json(
            "GET", self._path("subscriptions", subscription, "/push")))

    def create_watch(self, name: str, uri: str, *, interval_seconds: int = 60,
                     announce_existing: bool = False) -> Watch:
        return Watch.model_validate(self._c.json(
            "POST", self._c.project_path("/events/watches"),
            json={"name": check_name(name, "name"), "uri": uri,
                  "interval_seconds": interval_seconds,
                  "announce_existing": announce_existing}))

    def list_watches(self) -> list[Watch]:
        return _WATCHES.validate_python(
            self._c.json("GET", self._c.project_path("/events/watches")))

    def delete_watch(self, name: str) -> None:
        self._c.request("DELETE", self._c.project_path(
            f"/events/watches/{quote(check_name(name, 'name'), safe='')}"))
