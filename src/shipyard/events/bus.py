"""The message bus: plain functions over ``(store, ctx, ...)``, like every service.

This module is the bus's one entry point for its callers (the SDK's local port, the REST
routers, the console, triggers, push, the worker); the functions live in four modules, each
readable on its own:

- ``topics``: topics and subscriptions (create, get, list, delete; ``subscribe_in`` inside
  a caller's transaction) and the bounds of their settings;
- ``publishing``: ``publish``, and ``publish_in``, which writes a message inside the caller's
  transaction (the outbox): the event is committed with the change it announces, or not at
  all;
- ``delivery``: at-least-once delivery under leases (``pull``, ``ack``, ``nack``,
  ``extend_lease``), backoff, dead letters, ordering keys, ``seek`` and ``purge_expired``;
- ``waiting``: ``wait_for_messages``, what a pull loop calls instead of sleeping.

Publishing and acknowledging are data, like metric points: they are not audited one by one.
Creating or deleting topics and subscriptions, and seeking, are.
"""

from __future__ import annotations

from shipyard.events.delivery import (
    ACKED,
    DEAD,
    LEASED,
    MAX_PULL,
    PENDING,
    ack,
    backoff,
    dead_letters,
    extend_lease,
    nack,
    nack_in,
    pull,
    purge_expired,
    seek,
)
from shipyard.events.publishing import (
    MAX_ATTRIBUTE_VALUE,
    MAX_ATTRIBUTES,
    has_subscriptions,
    publish,
    publish_in,
)
from shipyard.events.topics import (
    DEFAULT_RETENTION,
    LIMITS,
    create_subscription,
    create_topic,
    delete_subscription,
    get_subscription,
    get_topic,
    list_subscriptions,
    list_topics,
    subscribe_in,
)

# Triggers check their subscription settings with the bus's bounds, and push reads the
# subscription's row inside its own transaction: both through this module, as before the
# split (the ``as`` re-exports them explicitly).
from shipyard.events.topics import _bounded as _bounded
from shipyard.events.topics import _subscription_row as _subscription_row
from shipyard.events.waiting import wait_for_messages

__all__ = [
    "ACKED", "DEAD", "DEFAULT_RETENTION", "LEASED", "LIMITS", "MAX_ATTRIBUTES",
    "MAX_ATTRIBUTE_VALUE", "MAX_PULL", "PENDING", "ack", "backoff", "create_subscription",
    "create_topic", "dead_letters", "delete_subscription", "extend_lease", "get_subscription",
    "get_topic", "has_subscriptions", "list_subscriptions", "list_topics", "nack", "nack_in",
    "publish", "publish_in", "pull", "purge_expired", "seek", "subscribe_in", "wait_for_messages",
]
