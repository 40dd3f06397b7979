"""Events: /api/v1/projects/{project}/events/... topics, subscriptions, publishing, pulling
and acknowledging, over ``events.bus`` (REST twins of the SDK's ``publish``/``subscribe``).

Verbs are path segments (``/subscriptions/{name}/pull``), not ``:pull``, so that every method
of ``/subscriptions/{name}`` has one route."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from shipyard.context import RequestContext
from shipyard.events import bus, push, watches
from shipyard.events.models import (
    DeadLetter,
    Message,
    PushEndpoint,
    Subscription,
    Topic,
    Watch,
)
from shipyard.server.api import params
from shipyard.server.auth import PROBLEM_RESPONSES
from shipyard.server.state import ServerState, request_context, server_state

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/projects/{project}/events", tags=["events"],
                   dependencies=[Depends(params.project_parameter)], responses=PROBLEM_RESPONSES)
State = Annotated[ServerState, Depends(server_state)]
Ctx = Annotated[RequestContext, Depends(request_context)]
NameField = Annotated[str, Field(min_length=1, max_length=128, pattern=params.NAME_PATTERN)]
Token = Annotated[str, Field(min_length=34, max_length=51, pattern=r"^[0-9a-f]{32}\.[0-9]{1,18}$")]


def whole(value: Any) -> Any:
    # JSON Schema's integer: 60 and 60.0, never true or "60" (which pydantic's lax mode takes).
    if isinstance(value, bool | str):
        raise ValueError("must be a whole number")  # noqa: TRY004 (pydantic reports ValueError)
    return value


Whole = Annotated[int, BeforeValidator(whole)]


def _iso(value: Any) -> Any:
    if not isinstance(value, str):  # not an epoch number, which pydantic's lax mode takes
        raise ValueError("must be an ISO 8601 time with its offset")  # noqa: TRY004
    return value


IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso)]


def _limit(field: str) -> Any:
    low, high, default = bus.LIMITS[field]
    return Field(default=default, ge=low, le=high)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewTopic(Strict):
    name: NameField
    retention_seconds: Whole = _limit("retention_seconds")


class Publish(Strict):
    data: Any = None
    ordering_key: str | None = Field(default=None, min_length=1, max_length=128)
    attributes: dict[NameField, Annotated[str, Field(max_length=bus.MAX_ATTRIBUTE_VALUE)]] | None \
        = Field(default=None, max_length=bus.MAX_ATTRIBUTES)


class NewSubscription(Strict):
    name: NameField
    topic: NameField
    max_attempts: Whole = _limit("max_attempts")
    ack_deadline_seconds: Whole = _limit("ack_deadline_seconds")
    min_backoff_seconds: Whole = _limit("min_backoff_seconds")
    max_backoff_seconds: Whole = _limit("max_backoff_seconds")


class Pull(Strict):
    max_messages: Whole = Field(default=10, ge=1, le=bus.MAX_PULL)


class Ack(Strict):
    lease_tokens: list[Token] = Field(max_length=bus.MAX_PULL)


class Nack(Strict):
    lease_token: Token
    error: str | None = Field(default=None, max_length=2000)


class Extend(Strict):
    lease_token: Token
    seconds: Whole = Field(ge=1, le=3600)


class Seek(Strict):
    time: IsoTime


class SetPush(Strict):
    push_endpoint: str = Field(min_length=1, max_length=push.MAX_URL)
    timeout_seconds: Whole = Field(default=push.DEFAULT_TIMEOUT, ge=1, le=600)


class NewWatch(Strict):
    name: NameField
    uri: str = Field(min_length=1, max_length=watches.MAX_URI)
    interval_seconds: Whole = Field(default=60, ge=1, le=86400)
    announce_existing: StrictBool = False


@router.get("/topics", response_model=list[Topic])
def list_topics(state: State, ctx: Ctx) -> list[Topic]:
    return bus.list_topics(state.store, ctx.project)


@router.post("/topics", response_model=Topic)
def create_topic(body: NewTopic, state: State, ctx: Ctx) -> Topic:
    return bus.create_topic(state.store, ctx, body.name,
                            retention_seconds=body.retention_seconds)


@router.post("/topics/{topic}/publish")
def publish(topic: params.Name, body: Publish, state: State, ctx: Ctx) -> dict[str, str]:
    """Publish ``data`` (any JSON value) to ``topic`` (created if missing)."""
    message_id = bus.publish(state.store, ctx, topic, body.data,
                             ordering_key=body.ordering_key, attributes=body.attributes)
    return {"message_id": message_id}


@router.get("/subscriptions", response_model=list[Subscription])
def list_subscriptions(state: State, ctx: Ctx, topic: params.OptionalName = None
                       ) -> list[Subscription]:
    return bus.list_subscriptions(state.store, ctx.project, topic)


@router.post("/subscriptions", response_model=Subscription)
def create_subscription(body: NewSubscription, state: State, ctx: Ctx) -> Subscription:
    return bus.create_subscription(
        state.store, ctx, body.name, body.topic, max_attempts=body.max_attempts,
        ack_deadline_seconds=body.ack_deadline_seconds,
        min_backoff_seconds=body.min_backoff_seconds,
        max_backoff_seconds=body.max_backoff_seconds)


@router.get("/subscriptions/{name}", response_model=Subscription)
def get_subscription(name: params.Name, state: State, ctx: Ctx) -> Subscription:
    return bus.get_subscription(state.store, ctx.project, name)


@router.delete("/subscriptions/{name}", status_code=204)
def delete_subscription(name: params.Name, state: State, ctx: Ctx) -> Response:
    bus.delete_subscription(state.store, ctx, name)
    return Response(status_code=204)


@router.post("/subscriptions/{name}/pull", response_model=list[Message])
def pull(name: params.Name, body: Pull, state: State, ctx: Ctx) -> list[Message]:
    """Lease up to ``max_messages`` messages (an empty list when there are none)."""
    return bus.pull(state.store, ctx.project, name, max_messages=body.max_messages)


@router.post("/subscriptions/{name}/ack")
def ack(name: params.Name, body: Ack, state: State, ctx: Ctx) -> dict[str, int]:
    return {"acknowledged": bus.ack(state.store, ctx.project, name, body.lease_tokens)}


@router.post("/subscriptions/{name}/nack")
def nack(name: params.Name, body: Nack, state: State, ctx: Ctx) -> dict[str, str]:
    return {"state": bus.nack(state.store, ctx.project, name, body.lease_token,
                              error=body.error)}


@router.post("/subscriptions/{name}/extend")
def extend(name: params.Name, body: Extend, state: State, ctx: Ctx) -> dict[str, datetime]:
    return {"lease_until": bus.extend_lease(state.store, ctx.project, name, body.lease_token,
                                            body.seconds)}


@router.post("/subscriptions/{name}/seek")
def seek(name: params.Name, body: Seek, state: State, ctx: Ctx) -> dict[str, int]:
    return {"replayed": bus.seek(state.store, ctx, name, body.time)}


@router.get("/subscriptions/{name}/dead-letters", response_model=list[DeadLetter])
def dead_letters(name: params.Name, state: State, ctx: Ctx,
                 limit: Annotated[int, Query(ge=1, le=bus.MAX_PULL)] = 100
                 ) -> list[DeadLetter]:
    return bus.dead_letters(state.store, ctx.project, name, limit=limit)


@router.get("/subscriptions/{name}/push", response_model=PushEndpoint)
def get_push(name: params.Name, state: State, ctx: Ctx) -> PushEndpoint:
    """Where the subscription's messages are POSTed (``endpoint`` null: it is pulled)."""
    return push.push_settings(state.store, ctx.project, name)


@router.put("/subscriptions/{name}/push", response_model=PushEndpoint)
def set_push(name: params.Name, body: SetPush, state: State, ctx: Ctx) -> PushEndpoint:
    """Make the subscription pushed: the workers POST each message to ``push_endpoint`` (through
    the outbound allowlist) in Pub/Sub's push format."""
    push.set_push_endpoint(state.store, ctx, name, body.push_endpoint,
                           timeout_seconds=body.timeout_seconds)
    return push.push_settings(state.store, ctx.project, name)


@router.delete("/subscriptions/{name}/push", status_code=204)
def clear_push(name: params.Name, state: State, ctx: Ctx) -> Response:
    """Make the subscription pulled again."""
    push.set_push_endpoint(state.store, ctx, name, None)
    return Response(status_code=204)


@router.get("/watches", response_model=list[Watch])
def list_watches(state: State, ctx: Ctx) -> list[Watch]:
    return watches.list_watches(state.store, ctx.project)


@router.post("/watches", response_model=Watch)
def create_watch(body: NewWatch, state: State, ctx: Ctx) -> Watch:
    """Watch a directory or bucket prefix: the workers announce its new files as
    ``data-arrived``."""
    return watches.create_watch(state.store, ctx, body.name, body.uri,
                                interval_seconds=body.interval_seconds,
                                announce_existing=body.announce_existing)


@router.delete("/watches/{name}", status_code=204)
def delete_watch(name: params.Name, state: State, ctx: Ctx) -> Response:
    watches.delete_watch(state.store, ctx, name)
    return Response(status_code=204)
