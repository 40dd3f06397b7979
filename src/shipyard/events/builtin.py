"""The events Shipyard publishes itself: one topic per kind, in the project the change
happened in, published with ``publish_in`` inside the transaction of the change (so an event
is never announced for a change that rolled back, and never lost for one that committed).

Each payload is a flat JSON object whose keys are listed next to its topic; triggers filter
on them and pipelines take them as arguments. Every payload also carries ``"event"`` (the
topic name), so a subscription to several topics can tell them apart.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from shipyard.context import RequestContext

__all__ = [
    "ALERT_RAISED", "ALIAS_MOVED", "BUILTIN_TOPICS", "DATA_ARRIVED", "ENDPOINT_DEPLOYED",
    "ENDPOINT_TRAFFIC_CHANGED", "ENDPOINT_UNDEPLOYED", "MESSAGE_DEAD_LETTERED",
    "PIPELINE_RUN_FINISHED",
    "VERSION_REGISTERED", "announce",
]

VERSION_REGISTERED = "model-version-registered"  # model, version, run_id, registered_by
ALIAS_MOVED = "model-alias-moved"  # model, alias, version, previous_version, reason
ENDPOINT_DEPLOYED = "endpoint-deployed"  # endpoint, deployment, model, version, traffic
ENDPOINT_UNDEPLOYED = "endpoint-undeployed"  # endpoint, deployment, model, version
ENDPOINT_TRAFFIC_CHANGED = "endpoint-traffic-changed"  # endpoint, traffic (deployment -> %)
PIPELINE_RUN_FINISHED = "pipeline-run-finished"  # pipeline, run_id, state, error
ALERT_RAISED = "monitor-alert-raised"  # monitor, endpoint, alert_id, severity, features
DATA_ARRIVED = "data-arrived"  # watch, uri, files
# The alert of the bus: a message was dead-lettered (a trigger's action kept failing, a push
# endpoint kept refusing). subscription, topic, message_id, attempts, error (the last one).
MESSAGE_DEAD_LETTERED = "message-dead-lettered"

BUILTIN_TOPICS = (VERSION_REGISTERED, ALIAS_MOVED, ENDPOINT_DEPLOYED, ENDPOINT_UNDEPLOYED,
                  ENDPOINT_TRAFFIC_CHANGED, PIPELINE_RUN_FINISHED, ALERT_RAISED, DATA_ARRIVED,
                  MESSAGE_DEAD_LETTERED)
# The payload key naming an event's subject (its ordering key), the first one present.
SUBJECTS = ("model", "endpoint", "pipeline", "monitor", "watch")


def announce(conn: Connection, ctx: RequestContext, topic: str, **payload: Any
             ) -> str | None:
    """Publish a built-in event inside the caller's transaction; its message id. The
    ordering key is the payload's subject (the model, endpoint, pipeline or monitor), so
    events about one thing are delivered in the order they happened.

    Nothing is written while the topic has no subscription (None): no subscription could
    ever receive the message (a subscription gets what is published after it exists), and
    a change nobody listens to pays one indexed read, not three writes."""
    from shipyard.events.bus import has_subscriptions, publish_in

    if not has_subscriptions(conn, ctx.project, topic):
        return None

    subject = next((str(payload[key]) for key in SUBJECTS if payload.get(key)), None)
    return publish_in(conn, ctx, topic, {"event": topic, **payload},
                      ordering_key=subject[:128] if subject else None)
