"""Push subscriptions: a subscription with a push endpoint is delivered by a worker, which
POSTs each message to the endpoint in Pub/Sub's push format and acknowledges it when the
endpoint answers 102, 200, 201, 202 or 204 (Pub/Sub's success codes). Any other answer, a
timeout or an unreachable endpoint gives the message back (``nack``: delivered again after
the subscription's backoff), and after ``max_attempts`` it is dead-lettered with each
attempt's outcome, as for a pull subscription.

Every request goes through the SSRF guard (``security.ssrf``): nothing is sent unless the
operator allowlists the endpoint's host or network (``SHIPYARD_OUTBOUND_ALLOWLIST``), never
to a redirect, a metadata address or a private network that is not allowlisted. A refused
endpoint counts as a failed attempt, so its messages end in the dead letters saying why.

The body, as Pub/Sub sends it::

    {"message": {"data": "<base64 of the message's JSON>", "attributes": {...},
                 "messageId": "...", "message_id": "...", "publishTime": "...Z",
                 "publish_time": "...Z", "orderingKey": "..."},
     "subscription": "projects/<project>/subscriptions/<name>", "deliveryAttempt": 1}
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, delete, insert, select

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import InvalidArgument, ShipyardError
from shipyard.events import bus
from shipyard.events.models import Message, PushEndpoint
from shipyard.security.ssrf import OutboundPolicy, SafeHttpClient
from shipyard.store import Store
from shipyard.store.schema import event_push_endpoints, event_subscriptions
from shipyard.store.types import utcnow
from shipyard.validation import check_name

__all__ = ["ACK_CODES", "OUTBOUND_ALLOWLIST", "deliver_pushes", "get_push_endpoint",
           "outbound_policy", "push_body", "push_settings", "set_push_endpoint"]

log = logging.getLogger(__name__)

ACK_CODES = frozenset({102, 200, 201, 202, 204})
OUTBOUND_ALLOWLIST = "SHIPYARD_OUTBOUND_ALLOWLIST"  # hosts and networks pushes may reach
MAX_URL = 2048
DEFAULT_TIMEOUT = 10


def check_endpoint(url: Any) -> str:
    """An http(s) URL with a host, at most 2048 characters (where it may go is the SSRF
    guard's decision, made when it is called)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise InvalidArgument(f"push_endpoint must be an http(s) URL of at most {MAX_URL} "
                              "characters", field="push_endpoint")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument("push_endpoint must be an http:// or https:// URL with a host",
                              field="push_endpoint")
    return url


def set_push_endpoint(store: Store, ctx: RequestContext, subscription: str,
                      endpoint: str | None, *, timeout_seconds: int = DEFAULT_TIMEOUT) -> None:
    """Deliver ``subscription`` by POSTing to ``endpoint`` (``None``: back to pull)."""
    check_name(subscription, "subscription")
    url = None if endpoint is None else check_endpoint(endpoint)
    if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, int) or not (
            1 <= timeout_seconds <= 600):
        raise InvalidArgument("timeout_seconds must be from 1 to 600", field="timeout_seconds")

    def work(conn: Connection) -> None:
        sub_id = _subscription_id(conn, ctx.project, subscription)
        conn.execute(delete(event_push_endpoints)
                     .where(event_push_endpoints.c.subscription_id == sub_id))
        if url is not None:
            conn.execute(insert(event_push_endpoints).values(
                subscription_id=sub_id, endpoint=url, timeout_seconds=timeout_seconds,
                created_at=utcnow(), created_by=ctx.actor))
        audit.record(conn, ctx, "events.subscription.push", f"subscriptions/{subscription}",
                     detail={"endpoint": url, "timeout_seconds": timeout_seconds})

    store.retry_write(work)


def get_push_endpoint(store: Store, project: str, subscription: str) -> str | None:
    return push_settings(store, project, subscription).endpoint


def push_settings(store: Store, project: str, subscription: str) -> PushEndpoint:
    """Where ``subscription`` is pushed (``endpoint`` None: it is pulled)."""
    check_name(subscription, "subscription")
    with store.read() as conn:
        sub_id = _subscription_id(conn, project, subscription)
        found = conn.execute(select(event_push_endpoints.c.endpoint,
                                    event_push_endpoints.c.timeout_seconds).where(
            event_push_endpoints.c.subscription_id == sub_id)).first()
    if found is None:
        return PushEndpoint(subscription=subscription, endpoint=None, timeout_seconds=None)
    return PushEndpoint(subscription=subscription, endpoint=str(found.endpoint),
                        timeout_seconds=int(found.timeout_seconds))


def outbound_policy(extra: Mapping[str, str] | None = None) -> OutboundPolicy:
    """The operator's allowlist (settings' ``outbound_allowlist``, else the environment's
    ``SHIPYARD_OUTBOUND_ALLOWLIST``): comma-separated host names and networks."""
    raw = (extra or {}).get("outbound_allowlist") or os.environ.get(OUTBOUND_ALLOWLIST, "")
    return OutboundPolicy.from_allowlist(e for e in raw.split(",") if e.strip())


def push_body(project: str, message: Message) -> dict[str, Any]:
    """What the endpoint receives for ``message`` (Pub/Sub's push JSON)."""
    published = message.published_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body: dict[str, Any] = {
        "data": base64.b64encode(json.dumps(message.data, separators=(",", ":")).encode()
                                 ).decode(),
        "attributes": dict(message.attributes),
        "messageId": message.id, "message_id": message.id,
        "publishTime": published, "publish_time": published,
    }
    if message.ordering_key is not None:
        body["orderingKey"] = message.ordering_key
    return {"message": body, "subscription": f"projects/{project}/subscriptions/"
                                             f"{message.subscription}",
            "deliveryAttempt": message.attempt}


def deliver_pushes(store: Store, policy: OutboundPolicy, *, max_messages: int = 10) -> int:
    """Deliver what push subscriptions have ready (up to ``max_messages`` each): POST, then
    ack or nack each message by the answer. How many messages were attempted. Several
    workers may call this at once: each message is leased to one of them."""
    with store.read() as conn:
        targets = conn.execute(
            select(event_subscriptions.c.project, event_subscriptions.c.name,
                   event_push_endpoints.c.endpoint, event_push_endpoints.c.timeout_seconds)
            .join(event_subscriptions,
                  event_subscriptions.c.id == event_push_endpoints.c.subscription_id)
            .order_by(event_subscriptions.c.project, event_subscriptions.c.name)).all()
    attempted = 0
    for target in targets:
        messages = bus.pull(store, target.project, target.name, max_messages=max_messages)
        if not messages:
            continue
        timed = dataclasses.replace(policy, timeout=float(target.timeout_seconds))
        with SafeHttpClient(timed) as client:
            for message in messages:
                attempted += 1
                _push_one(store, client, target.project, target.endpoint, message)
    return attempted


def _push_one(store: Store, client: SafeHttpClient, project: str, endpoint: str,
              message: Message) -> None:
    try:
        response = client.post(endpoint, push_body(project, message))
        outcome = None if response.status_code in ACK_CODES else (
            f"push: HTTP {response.status_code}")
    except ShipyardError as exc:  # refused by the guard, unreachable or too slow
        outcome = f"push: {exc.message}"
    if outcome is None:
        bus.ack(store, project, message.subscription, [message.lease_token])
        return
    try:
        bus.nack(store, project, message.subscription, message.lease_token, error=outcome)
    except ShipyardError:  # the lease ran out meanwhile: it is delivered again anyway
        log.info("push of %s: its lease ran out before the nack", message.id)


def _subscription_id(conn: Connection, project: str, name: str) -> str:
    row, _ = bus._subscription_row(conn, project, name)
    return str(row.id)

