"""``shipyard events schedules ...`` and ``shipyard events triggers ...``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

import shipyard as sy
from shipyard.cli import output
from shipyard.cli.state import command, configure, current
from shipyard.errors import InvalidArgument

schedules_app = typer.Typer(help="Schedules: an action on a cron in a time zone.",
                            no_args_is_help=True)
triggers_app = typer.Typer(help="Triggers: on an event (with a filter), do an action.",
                           no_args_is_help=True)

ACTION_HELP = ("The action as JSON with its type, e.g. '{\"type\": \"run_pipeline\", "
               "\"pipeline\": \"retrain\"}' (types: run_pipeline, deploy, set_traffic, promote, "
               "rollback, start_canary, webhook, call_function, publish)")


def _json(text: str, field: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"{field} is not JSON: {exc}", field=field) from None


def _show_schedules(found: list[Any]) -> None:
    if current().json:
        output.print_json(found)
        return
    output.show(output.table(None, ["schedule", "cron", "time zone", "action", "next tick",
                                    "paused"], [
        [s.name, s.cron, s.timezone, s.action.type, s.next_tick_at, s.paused]
        for s in found]))


@schedules_app.command("list")
@command
def list_schedules() -> None:
    """List the project's schedules."""
    configure()
    found = sy.list_schedules()
    _show_schedules(found)
    if not found and not current().json:
        output.note("no schedules: shipyard events schedules create NAME --cron ... "
                    "--action ... makes one")


@schedules_app.command("create")
@command
def create_schedule(
    name: Annotated[str, typer.Argument(help="Schedule name")],
    cron: Annotated[str, typer.Option("--cron", help="Five fields: '0 9 * * 1-5'")],
    action: Annotated[str, typer.Option("--action", help=ACTION_HELP)],
    timezone: Annotated[str, typer.Option("--timezone", help="An IANA name")] = "UTC",
    misfire: Annotated[str, typer.Option(
        "--misfire", help="skip, run_once or catch_up(n)")] = "skip",
    max_concurrent: Annotated[int, typer.Option("--max-concurrent", min=1)] = 1,
) -> None:
    """Create a schedule."""
    value = _json(action, "action")
    configure()
    _show_schedules([sy.create_schedule(name, cron=cron, action=value, timezone=timezone,
                                        misfire=misfire, max_concurrent=max_concurrent)])


@schedules_app.command("pause")
@command
def pause_schedule(name: Annotated[str, typer.Argument(help="Schedule name")]) -> None:
    """Stop firing (missed ticks are not caught up on resume)."""
    configure()
    _show_schedules([sy.pause_schedule(name)])


@schedules_app.command("resume")
@command
def resume_schedule(name: Annotated[str, typer.Argument(help="Schedule name")]) -> None:
    """Fire again from the next tick."""
    configure()
    _show_schedules([sy.resume_schedule(name)])


@schedules_app.command("delete")
@command
def delete_schedule(name: Annotated[str, typer.Argument(help="Schedule name")]) -> None:
    """Delete a schedule and its ticks."""
    configure()
    sy.delete_schedule(name)
    if not current().json:
        output.show(f"deleted schedule {name}")


@schedules_app.command("ticks")
@command
def ticks(
    name: Annotated[str, typer.Argument(help="Schedule name")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 20,
) -> None:
    """The schedule's latest ticks and what each did."""
    configure()
    found = sy.schedule_ticks(name, limit)
    if current().json:
        output.print_json(found)
        return
    output.show(output.table(None, ["tick", "state", "worker", "result", "error"], [
        [t.tick_at, t.state, t.worker or "", json.dumps(t.result)[:80] if t.result else "",
         (t.error or "")[:120]] for t in found]))


def _show_triggers(found: list[Any]) -> None:
    if current().json:
        output.print_json(found)
        return
    output.show(output.table(None, ["trigger", "topic", "filter", "action", "cooldown (s)",
                                    "paused"], [
        [t.name, t.topic, json.dumps(t.filter) if t.filter else "", t.action.type,
         t.cooldown_seconds, t.paused] for t in found]))


@triggers_app.command("list")
@command
def list_triggers(
    topic: Annotated[str | None, typer.Option("--topic", help="Only this topic's")] = None,
) -> None:
    """List the project's triggers."""
    configure()
    found = sy.list_triggers(topic)
    _show_triggers(found)
    if not found and not current().json:
        output.note("no triggers: shipyard events triggers create NAME --topic ... "
                    "--action ... makes one")


@triggers_app.command("create")
@command
def create_trigger(
    name: Annotated[str, typer.Argument(help="Trigger name")],
    topic: Annotated[str, typer.Option("--topic", help="The topic whose events it acts on")],
    action: Annotated[str, typer.Option("--action", help=ACTION_HELP)],
    filter_: Annotated[str | None, typer.Option(
        "--filter", help="JSON: fields of the event and the values to act on, e.g. "
        "'{\"model\": \"churn\"}'")] = None,
    cooldown: Annotated[int, typer.Option("--cooldown", min=0,
                                          help="Seconds between two firings")] = 0,
    max_attempts: Annotated[int, typer.Option("--max-attempts", min=1, max=100)] = 5,
) -> None:
    """Create a trigger."""
    value = _json(action, "action")
    wanted = _json(filter_, "filter") if filter_ is not None else None
    configure()
    _show_triggers([sy.create_trigger(name, topic=topic, action=value, filter=wanted,
                                      cooldown_seconds=cooldown, max_attempts=max_attempts)])


@triggers_app.command("pause")
@command
def pause_trigger(name: Annotated[str, typer.Argument(help="Trigger name")]) -> None:
    """Stop acting (its events wait in its subscription)."""
    configure()
    _show_triggers([sy.pause_trigger(name)])


@triggers_app.command("resume")
@command
def resume_trigger(name: Annotated[str, typer.Argument(help="Trigger name")]) -> None:
    """Act again, on the events that waited too."""
    configure()
    _show_triggers([sy.resume_trigger(name)])


@triggers_app.command("delete")
@command
def delete_trigger(name: Annotated[str, typer.Argument(help="Trigger name")]) -> None:
    """Delete a trigger, its firings and its subscription."""
    configure()
    sy.delete_trigger(name)
    if not current().json:
        output.show(f"deleted trigger {name}")


@triggers_app.command("firings")
@command
def firings(
    name: Annotated[str, typer.Argument(help="Trigger name")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 20,
) -> None:
    """What the trigger did with its latest events."""
    configure()
    found = sy.trigger_firings(name, limit)
    if current().json:
        output.print_json(found)
        return
    output.show(output.table(None, ["message", "state", "attempts", "started", "result",
                                    "error"], [
        [f.idempotency_key, f.state, f.attempts, f.started_at,
         json.dumps(f.result)[:80] if f.result else "", (f.error or "")[:120]]
        for f in found]))
