"""Events from the SDK (re-exported as ``shipyard.*``): publish to topics, subscribe, pull,
acknowledge; in local and remote mode alike."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shipyard.events.models import DeadLetter, Message, PushEndpoint, Topic, Watch
from shipyard.events.models import Subscription as SubscriptionState
from shipyard.events.port import EventsPort
from shipyard.sdk import session

__all__ = ["ReceivedMessage", "Subscription", "dead_letters", "list_subscriptions",
           "list_topics", "publish", "subscribe"]


def _events() -> EventsPort:
    return session.current().events


class ReceivedMessage:
    """A pulled message: ``data``, ``attempt`` (1 on first delivery), and ``ack()`` or
    ``nack()`` before its lease runs out (``extend(seconds)`` keeps it longer)."""

    def __init__(self, state: Message) -> None:
        self.state = state

    @property
    def id(self) -> str:
        return self.state.id

    @property
    def data(self) -> Any:
        return self.state.data

    @property
    def attributes(self) -> dict[str, str]:
        return self.state.attributes

    @property
    def ordering_key(self) -> str | None:
        return self.state.ordering_key

    @property
    def attempt(self) -> int:
        return self.state.attempt

    @property
    def published_at(self) -> datetime:
        return self.state.published_at

    def ack(self) -> bool:
        """Done with it; False when its lease had run out and it went to someone else."""
        return _events().ack(self.state.subscription, [self.state.lease_token]) == 1

    def nack(self, error: str | None = None) -> str:
        """Give it back: delivered again after the backoff, or dead-lettered after the
        subscription's max_attempts; answers "pending" or "dead"."""
        return _events().nack(self.state.subscription, self.state.lease_token, error)

    def extend(self, seconds: int) -> datetime:
        return _events().extend_lease(self.state.subscription, self.state.lease_token,
                                      seconds)

    def __repr__(self) -> str:
        return f"ReceivedMessage({self.id!r}, attempt={self.attempt}, data={self.data!r})"


class Subscription:
    """A subscription: ``pull`` leases messages; ``dead_letters`` lists those given up on."""

    def __init__(self, state: SubscriptionState) -> None:
        self.state = state

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def topic(self) -> str:
        return self.state.topic

    def pull(self, max_messages: int = 10) -> list[ReceivedMessage]:
        return [ReceivedMessage(m) for m in _events().pull(self.name, max_messages)]

    def seek(self, time: datetime) -> int:
        """Deliver again every retained message published at or after ``time``."""
        return _events().seek(self.name, time)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return _events().dead_letters(self.name, limit)

    def delete(self) -> None:
        _events().delete_subscription(self.name)

    def __repr__(self) -> str:
        return f"Subscription({self.name!r}, topic={self.topic!r})"


def publish(topic: str, data: Any, *, ordering_key: str | None = None,
            attributes: Mapping[str, str] | None = None) -> str:
    """Publish ``data`` (any JSON value) to ``topic``; the message id. Only subscriptions
    that exist now receive it."""
    return _events().publish(topic, data, ordering_key=ordering_key, attributes=attributes)


def subscribe(topic: str, *, name: str, max_attempts: int = 5, ack_deadline_seconds: int = 60,
              min_backoff_seconds: int = 10, max_backoff_seconds: int = 600) -> Subscription:
    """The subscription ``name`` to ``topic``: created if new, else the existing one (which
    must be on the same topic)."""
    from shipyard.errors import AlreadyExists, FailedPrecondition

    port = _events()
    try:
        state = port.create_subscription(
            name, topic, max_attempts=max_attempts, ack_deadline_seconds=ack_deadline_seconds,
            min_backoff_seconds=min_backoff_seconds, max_backoff_seconds=max_backoff_seconds)
    except AlreadyExists:
        state = port.get_subscription(name)
        if state.topic != topic:
            raise FailedPrecondition(f"subscription {name!r} is on topic {state.topic!r}, not "
                                     f"{topic!r}", field="name") from None
    return Subscription(state)


def list_topics() -> list[Topic]:
    return _events().list_topics()


def list_subscriptions(topic: str | None = None) -> list[Subscription]:
    return [Subscription(s) for s in _events().list_subscriptions(topic)]


def dead_letters(subscription: str, limit: int = 100) -> list[DeadLetter]:
    return _events().dead_letters(subscription, limit)


def set_push_endpoint(subscription: str, endpoint: str | None, *,
                      timeout_seconds: int = 10) -> PushEndpoint:
    """Make ``subscription`` pushed: the workers POST each message to ``endpoint`` in
    Pub/Sub's push format (only to hosts the operator allowlists); ``None`` makes it pulled
    again."""
    return _events().set_push_endpoint(subscription, endpoint, timeout_seconds=timeout_seconds)


def get_push_endpoint(subscription: str) -> PushEndpoint:
    """Where ``subscription`` is pushed (``endpoint`` None: it is pulled)."""
    return _events().get_push_endpoint(subscription)


def create_watch(name: str, uri: str, *, interval_seconds: int = 60,
                 announce_existing: bool = False) -> Watch:
    """Watch a directory or bucket prefix: the workers announce its new files as
    ``data-arrived`` (files already there only with ``announce_existing``)."""
    return _events().create_watch(name, uri, interval_seconds=interval_seconds,
                                  announce_existing=announce_existing)


def list_watches() -> list[Watch]:
    return _events().list_watches()


def delete_watch(name: str) -> None:
    _events().delete_watch(name)
