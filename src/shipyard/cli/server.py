"""``shipyard server``: the API, console and prediction routes on one port."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.state import command, current

if TYPE_CHECKING:
    from shipyard.config import Settings


def register(root: typer.Typer) -> None:
    root.command("server")(server)
    root.command("worker")(worker)


@command
def server(
    host: Annotated[str, typer.Option(
        "--host", help="Interface to bind; 127.0.0.1 keeps the server private to this "
        "machine")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535,
                                      help="TCP port")] = 8080,
) -> None:
    """Run the Shipyard server (API, console, prediction routes) until interrupted."""
    # Imported here, not at the top: the server's dependencies are heavy and no other
    # command needs them.
    from shipyard.server.run import serve

    serve(_local_settings("a server stores its data"), host=host, port=port)


@command
def worker(
    poll: Annotated[float, typer.Option("--poll", min=0.05, max=60.0,
                                        help="Seconds between looks at the queue")] = 0.5,
) -> None:
    """Run queued pipeline runs from this process until interrupted (Ctrl-C)."""
    import threading

    from shipyard.artifacts import open_artifact_store
    from shipyard.store import open_store
    from shipyard.worker import run_worker, worker_name

    settings = _local_settings("a worker reads the queue from the database")
    store = open_store(settings.uri)
    artifacts = open_artifact_store(settings.artifacts)
    typer.echo(f"worker {worker_name()} waiting for queued pipeline runs (Ctrl-C stops)")
    run_worker(store, artifacts, settings, threading.Event(), poll_seconds=poll)


def _local_settings(why: str) -> Settings:
    """The settings for a process that opens the store itself (not a client of a server)."""
    from shipyard.config import Settings, ensure_home

    state = current()
    settings = Settings.resolve(home=state.home, uri=state.uri, project=state.project)
    if settings.remote:
        raise typer.BadParameter(f"{why}: give a sqlite:// or postgresql+psycopg:// --uri, "
                                 "not http(s)://", param_hint="--uri")
    ensure_home(settings.home)
    return settings
