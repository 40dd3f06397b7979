"""Events in local mode (the local ``EventsPort``): the bus's functions on the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shipyard.events import bus, push, watches
from shipyard.events.models import DeadLetter, Message, PushEndpoint, Subscription, Topic, Watch

if TYPE_CHECKING:
    from shipyard.sdk.local import Scope


class LocalEvents:
    def __init__(self, scope: Scope) -> None:
        self._s = scope
        self._store = scope.store

    def create_topic(self, name: str, *, retention_seconds: int = bus.DEFAULT_RETENTION
                     ) -> Topic:
        return bus.create_topic(self._store, self._s.ctx(), name,
                                retention_seconds=retention_seconds)

    def list_topics(self) -> list[Topic]:
        return bus.list_topics(self._store, self._s.project)

    def publish(self, topic: str, data: Any, *, ordering_key: str | None = None,
                attributes: Mapping[str, str] | None = None) -> str:
        return bus.publish(self._store, self._s.ctx(), topic, data, ordering_key=ordering_key,
                           attributes=attributes)

    def create_subscription(self, name: str, topic: str, *, max_attempts: int = 5,
                            ack_deadline_seconds: int = 60, min_backoff_seconds: int = 10,
                            max_backoff_seconds: int = 600) -> Subscription:
        return bus.create_subscription(
            self._store, self._s.ctx(), name, topic, max_attempts=max_attempts,
            ack_deadline_seconds=ack_deadline_seconds,
            min_backoff_seconds=min_backoff_seconds, max_backoff_seconds=max_backoff_seconds)

    def get_subscription(self, name: str) -> Subscription:
        return bus.get_subscription(self._store, self._s.project, name)

    def list_subscriptions(self, topic: str | None = None) -> list[Subscription]:
        return bus.list_subscriptions(self._store, self._s.project, topic)

    def delete_subscription(self, name: str) -> None:
        bus.delete_subscription(self._store, self._s.ctx(), name)

    def pull(self, subscription: str, max_messages: int = 10) -> list[Message]:
        return bus.pull(self._store, self._s.project, subscription, max_messages=max_messages)

    def ack(self, subscription: str, lease_tokens: Sequence[str]) -> int:
        return bus.ack(self._store, self._s.project, subscription, lease_tokens)

    def nack(self, subscription: str, lease_token: str, error: str | None = None) -> str:
        return bus.nack(self._store, self._s.project, subscription, lease_token, error=error)

    def extend_lease(self, subscription: str, lease_token: str, seconds: int) -> datetime:
        return bus.extend_lease(self._store, self._s.project, subscription, lease_token,
                                seconds)

    def seek(self, subscription: str, time: datetime) -> int:
        return bus.seek(self._store, self._s.ctx(), subscription, time)

    def dead_letters(self, subscription: str, limit: int = 100) -> list[DeadLetter]:
        return bus.dead_letters(self._store, self._s.project, subscription, limit=limit)

    def set_push_endpoint(self, subscription: str, endpoint: str | None, *,
                          timeout_seconds: int = push.DEFAULT_TIMEOUT) -> PushEndpoint:
        push.set_push_endpoint(self._store, self._s.ctx(), subscription, endpoint,
                               timeout_seconds=timeout_seconds)
        return push.push_settings(self._store, self._s.project, subscription)

    def get_push_endpoint(self, subscription: str) -> PushEndpoint:
        return push.push_settings(self._store, self._s.project, subscription)

    def create_watch(self, name: str, uri: str, *, interval_seconds: int = 60,
                     announce_existing: bool = False) -> Watch:
        return watches.create_watch(self._store, self._s.ctx(), name, uri,
                                    interval_seconds=interval_seconds,
                                    announce_existing=announce_existing)

    def list_watches(self) -> list[Watch]:
        return watches.list_watches(self._store, self._s.project)

    def delete_watch(self, name: str) -> None:
        watches.delete_watch(self._store, self._s.ctx(), name)
