"""``shipyard events ...``: topics, publishing, subscriptions, pulling and dead letters."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

import shipyard as sy
from shipyard.cli import output
from shipyard.cli.state import command, configure, current

app = typer.Typer(help="Events: topics, subscriptions, messages and dead letters.",
                  no_args_is_help=True)


@app.command("topics")
@command
def topics() -> None:
    """List the project's topics."""
    configure()
    found = sy.list_topics()
    if current().json:
        output.print_json(found)
        return
    output.show(output.table(None, ["topic", "retention (s)", "created"], [
        [t.name, t.retention_seconds, t.created_at] for t in found]))
    if not found:
        output.note("no topics: shipyard events publish TOPIC DATA creates one")


@app.command("publish")
@command
def publish(
    topic: Annotated[str, typer.Argument(help="Topic name (created if missing)")],
    data: Annotated[str, typer.Argument(help="The message: JSON (plain text is sent as a "
                                             "JSON string)")],
    ordering_key: Annotated[str | None, typer.Option("--ordering-key")] = None,
) -> None:
    """Publish a message; only subscriptions that exist now receive it."""
    try:
        value: Any = json.loads(data)
    except ValueError:
        value = data
    configure()
    message_id = sy.publish(topic, value, ordering_key=ordering_key)
    if current().json:
        output.print_json({"message_id": message_id})
    else:
        output.show(f"published {message_id} to {topic}")


@app.command("subscriptions")
@command
def subscriptions(
    topic: Annotated[str | None, typer.Option("--topic", help="Only this topic's")] = None,
) -> None:
    """List subscriptions with their delivery settings."""
    configure()
    found = sy.list_subscriptions(topic)
    if current().json:
        output.print_json([s.state for s in found])
        return
    output.show(output.table(None, ["subscription", "topic", "max attempts", "ack deadline (s)",
                                    "backoff (s)"], [
        [s.name, s.topic, s.state.max_attempts, s.state.ack_deadline_seconds,
         f"{s.state.min_backoff_seconds}-{s.state.max_backoff_seconds}"] for s in found]))
    if not found:
        output.note("no subscriptions: sy.subscribe(TOPIC, name=NAME) creates one")


@app.command("subscribe")
@command
def subscribe(
    topic: Annotated[str, typer.Argument(help="Topic name")],
    name: Annotated[str, typer.Argument(help="Subscription name")],
    max_attempts: Annotated[int, typer.Option("--max-attempts", min=1, max=100)] = 5,
) -> None:
    """Create a subscription (or show the existing one of that name on that topic)."""
    configure()
    sub = sy.subscribe(topic, name=name, max_attempts=max_attempts)
    if current().json:
        output.print_json(sub.state)
    else:
        output.show(f"subscription {sub.name} on {sub.topic}")


@app.command("pull")
@command
def pull(
    subscription: Annotated[str, typer.Argument(help="Subscription name")],
    max_messages: Annotated[int, typer.Option("--max", min=1, max=1000)] = 10,
    ack: Annotated[bool, typer.Option("--ack/--no-ack",
                                      help="Acknowledge what was shown")] = False,
) -> None:
    """Pull messages (leased for the ack deadline); --ack acknowledges them."""
    configure()
    messages = _pull(subscription, max_messages)
    if ack:
        for m in messages:
            m.ack()
    if current().json:
        output.print_json([m.state for m in messages])
        return
    output.show(output.table(None, ["message", "attempt", "ordering key", "published", "data"], [
        [m.id, m.attempt, m.ordering_key or "", m.published_at,
         json.dumps(m.data)[:200]] for m in messages]))
    if not messages:
        output.note("no message is waiting")


def _pull(subscription: str, max_messages: int) -> list[Any]:
    found = [s for s in sy.list_subscriptions() if s.name == subscription]
    if not found:
        from shipyard.errors import NotFound

        raise NotFound(f"no subscription {subscription!r}", field="subscription")
    return found[0].pull(max_messages)


@app.command("dead-letters")
@command
def dead_letters(
    subscription: Annotated[str, typer.Argument(help="Subscription name")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
) -> None:
    """Messages a subscription gave up on, with every attempt's outcome."""
    configure()
    found = sy.dead_letters(subscription, limit)
    if current().json:
        output.print_json(found)
        return
    output.show(output.table(None, ["message", "attempts", "last outcome", "published",
                                    "data"], [
        [d.id, d.attempts, (d.history[-1]["outcome"] if d.history else ""), d.published_at,
         json.dumps(d.data)[:200]] for d in found]))
    if not found:
        output.note(f"no dead letters in {subscription}")


@app.command("push")
@command
def push(
    subscription: Annotated[str, typer.Argument(help="Subscription name")],
    url: Annotated[str | None, typer.Argument(help="Endpoint to POST each message to "
                                                   "(omit to show the current one)")] = None,
    timeout: Annotated[int, typer.Option("--timeout", min=1, max=600,
                                         help="Seconds to wait for the endpoint")] = 10,
    clear: Annotated[bool, typer.Option("--clear", help="Pull the subscription again")
                     ] = False,
) -> None:
    """Push a subscription to a webhook (Pub/Sub's push format, through the outbound
    allowlist), show where it is pushed, or --clear it."""
    configure()
    if clear and url is not None:
        raise typer.BadParameter("give a URL or --clear, not both", param_hint="--clear")
    if clear or url is not None:
        found = sy.set_push_endpoint(subscription, None if clear else url,
                                     timeout_seconds=timeout)
    else:
        found = sy.get_push_endpoint(subscription)
    if current().json:
        output.print_json(found)
    elif found.endpoint is None:
        output.show(f"{subscription} is pulled (not pushed)")
    else:
        output.show(f"{subscription} is pushed to {found.endpoint} "
                    f"(timeout {found.timeout_seconds}s)")


watches_app = typer.Typer(help="Data watches: announce new files of a directory or bucket "
                               "prefix as data-arrived.", no_args_is_help=True)
app.add_typer(watches_app, name="watches")


@watches_app.command("list")
@command
def list_watches() -> None:
    """List the project's data watches."""
    configure()
    found = sy.list_watches()
    if current().json:
        output.print_json(found)
        return
    output.show(output.table(None, ["watch", "uri", "interval (s)", "last scan"], [
        [w.name, w.uri, w.interval_seconds, w.last_scan_at or ""] for w in found]))
    if not found:
        output.note("no watches: shipyard events watches create NAME URI creates one")


@watches_app.command("create")
@command
def create_watch(
    name: Annotated[str, typer.Argument(help="Watch name (the data-arrived events' watch)")],
    location: Annotated[str, typer.Argument(metavar="URI",
                                            help="Directory, or s3://, gs://, memory:// prefix")],
    interval: Annotated[int, typer.Option("--interval", min=1, max=86400,
                                          help="Seconds between scans")] = 60,
    announce_existing: Annotated[bool, typer.Option(
        "--announce-existing", help="Announce the files already there too")] = False,
) -> None:
    """Watch a directory or bucket prefix for new files."""
    configure()
    watch = sy.create_watch(name, location, interval_seconds=interval,
                            announce_existing=announce_existing)
    if current().json:
        output.print_json(watch)
    else:
        output.show(f"watching {watch.uri} as {watch.name} (every {watch.interval_seconds}s)")


@watches_app.command("delete")
@command
def delete_watch(name: Annotated[str, typer.Argument(help="Watch name")]) -> None:
    """Stop watching (the files it announced stay announced)."""
    configure()
    sy.delete_watch(name)
    if current().json:
        output.print_json({"deleted": name})
    else:
        output.show(f"deleted watch {name}")
