"""Schedules and triggers: /api/v1/projects/{project}/events/schedules|triggers, over
``events.scheduler`` and ``events.triggers`` (REST twins of ``sy.create_schedule`` and
``sy.create_trigger``). Verbs are path segments, as in ``server.api.events``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from shipyard.context import RequestContext
from shipyard.events import bus, scheduler, triggers
from shipyard.events.automation import Schedule, ScheduleTick, Trigger, TriggerFiring
from shipyard.server.api import params
from shipyard.server.api.events import NameField, Whole
from shipyard.server.auth import PROBLEM_RESPONSES
from shipyard.server.state import ServerState, request_context, server_state

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/projects/{project}/events", tags=["events"],
                   dependencies=[Depends(params.project_parameter)], responses=PROBLEM_RESPONSES)
State = Annotated[ServerState, Depends(server_state)]
Ctx = Annotated[RequestContext, Depends(request_context)]
Limit = Annotated[int, Query(ge=1, le=10_000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _limit(field: str) -> Any:
    low, high, default = bus.LIMITS[field]
    return Field(default=default, ge=low, le=high)


class NewSchedule(Strict):
    name: NameField
    cron: str = Field(min_length=1, max_length=128, description="five fields: '0 9 * * 1-5'")
    timezone: str = Field(default="UTC", min_length=1, max_length=64)
    misfire: str = Field(default="skip", min_length=1, max_length=16,
                         description="skip, run_once or catch_up(n)")
    max_concurrent: Whole = Field(default=1, ge=1, le=scheduler.MAX_CONCURRENT)
    paused: bool = False
    action: dict[Annotated[str, Field(max_length=64)], Any] = Field(
        max_length=16, description="an action's JSON form, with its 'type'")


class NewTrigger(Strict):
    name: str = Field(min_length=1, max_length=triggers.MAX_NAME, pattern=params.NAME_PATTERN)
    topic: NameField
    filter: dict[Annotated[str, Field(max_length=128)], Any] | None = Field(
        default=None, max_length=triggers.MAX_FILTER)
    action: dict[Annotated[str, Field(max_length=64)], Any] = Field(max_length=16)
    cooldown_seconds: Whole = Field(default=0, ge=0, le=triggers.MAX_COOLDOWN)
    max_attempts: Whole = _limit("max_attempts")
    min_backoff_seconds: Whole = _limit("min_backoff_seconds")
    max_backoff_seconds: Whole = _limit("max_backoff_seconds")
    paused: bool = False


@router.get("/schedules", response_model=list[Schedule])
def list_schedules(state: State, ctx: Ctx) -> list[Schedule]:
    return scheduler.list_schedules(state.store, ctx.project)


@router.post("/schedules", response_model=Schedule)
def create_schedule(body: NewSchedule, state: State, ctx: Ctx) -> Schedule:
    return scheduler.create_schedule(
        state.store, ctx, body.name, cron=body.cron, timezone=body.timezone,
        misfire=body.misfire, max_concurrent=body.max_concurrent, paused=body.paused,
        action=body.action)


@router.get("/schedules/{name}", response_model=Schedule)
def get_schedule(name: params.Name, state: State, ctx: Ctx) -> Schedule:
    return scheduler.get_schedule(state.store, ctx.project, name)


@router.delete("/schedules/{name}", status_code=204)
def delete_schedule(name: params.Name, state: State, ctx: Ctx) -> Response:
    scheduler.delete_schedule(state.store, ctx, name)
    return Response(status_code=204)


@router.post("/schedules/{name}/pause", response_model=Schedule)
def pause_schedule(name: params.Name, state: State, ctx: Ctx) -> Schedule:
    return scheduler.pause_schedule(state.store, ctx, name)


@router.post("/schedules/{name}/resume", response_model=Schedule)
def resume_schedule(name: params.Name, state: State, ctx: Ctx) -> Schedule:
    return scheduler.resume_schedule(state.store, ctx, name)


@router.get("/schedules/{name}/ticks", response_model=list[ScheduleTick])
def list_ticks(name: params.Name, state: State, ctx: Ctx, limit: Limit = 100
               ) -> list[ScheduleTick]:
    return scheduler.list_ticks(state.store, ctx.project, name, limit=limit)


@router.get("/triggers", response_model=list[Trigger])
def list_triggers(state: State, ctx: Ctx, topic: params.OptionalName = None) -> list[Trigger]:
    return triggers.list_triggers(state.store, ctx.project, topic)


@router.post("/triggers", response_model=Trigger)
def create_trigger(body: NewTrigger, state: State, ctx: Ctx) -> Trigger:
    return triggers.create_trigger(
        state.store, ctx, body.name, topic=body.topic, filter=body.filter,
        action=body.action, cooldown_seconds=body.cooldown_seconds,
        max_attempts=body.max_attempts, min_backoff_seconds=body.min_backoff_seconds,
        max_backoff_seconds=body.max_backoff_seconds, paused=body.paused)


@router.get("/triggers/{name}", response_model=Trigger)
def get_trigger(name: params.Name, state: State, ctx: Ctx) -> Trigger:
    return triggers.get_trigger(state.store, ctx.project, name)


@router.delete("/triggers/{name}", status_code=204)
def delete_trigger(name: params.Name, state: State, ctx: Ctx) -> Response:
    triggers.delete_trigger(state.store, ctx, name)
    return Response(status_code=204)


@router.post("/triggers/{name}/pause", response_model=Trigger)
def pause_trigger(name: params.Name, state: State, ctx: Ctx) -> Trigger:
    return triggers.pause_trigger(state.store, ctx, name)


@router.post("/triggers/{name}/resume", response_model=Trigger)
def resume_trigger(name: params.Name, state: State, ctx: Ctx) -> Trigger:
    return triggers.resume_trigger(state.store, ctx, name)


@router.get("/triggers/{name}/firings", response_model=list[TriggerFiring])
def list_firings(name: params.Name, state: State, ctx: Ctx, limit: Limit = 100
                 ) -> list[TriggerFiring]:
    return triggers.list_firings(state.store, ctx.project, name, limit=limit)
