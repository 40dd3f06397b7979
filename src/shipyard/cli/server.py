"""``shipyard server``: the API, console and prediction routes on one port."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.state import command, current


def register(root: typer.Typer) -> None:
    root.command("server")(server)


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
    from shipyard.config import Settings, ensure_home
    from shipyard.server.run import serve

    state = current()
    settings = Settings.resolve(home=state.home, uri=state.uri, project=state.project)
    if settings.remote:
        raise typer.BadParameter("a server stores its data locally: give a sqlite:// or "
                                 "postgresql+psycopg:// --uri, not http(s)://",
                                 param_hint="--uri")
    ensure_home(settings.home)
    serve(settings, host=host, port=port)
