"""The root ``shipyard`` command: global options, command groups, the entry point."""

from __future__ import annotations

import importlib
import importlib.util

import typer

from shipyard.cli import identity, lineage, models, pipelines, runs, server
from shipyard.cli.state import (
    CliState,
    HomeOption,
    OutputOption,
    ProjectOption,
    UriOption,
    guarded,
)

app = typer.Typer(
    name="shipyard",
    help="Shipyard: self-hosted MLOps. Tracking, lineage, pipelines and a model registry.",
    no_args_is_help=True,
    # Tracebacks are for bugs; ShipyardErrors are caught in state.command and printed as
    # one line, so Typer's pretty (and long) exception pages stay off.
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root(ctx: typer.Context, home: HomeOption = None, uri: UriOption = None,
         project: ProjectOption = None, output: OutputOption = None) -> None:
    """Shipyard: self-hosted MLOps. Tracking, lineage, pipelines and a model registry.

    The options below apply to every command and may also be given after it.
    """
    # Only remembered here: the SDK is set up when a command runs, so `--help` on a
    # subcommand never creates a home directory or opens a store.
    ctx.obj = CliState(home=home, uri=uri, project=project, output=output)


server.register(app)
app.add_typer(runs.app, name="runs")
app.add_typer(lineage.app, name="lineage")
lineage.register_audit(app)
app.add_typer(models.app, name="models")
app.add_typer(pipelines.app, name="pipelines")
identity.register(app)


def _register_quickstart() -> None:
    # Written by the quick-start work, which may not have landed: the CLI works without it.
    if importlib.util.find_spec("shipyard.cli.quickstart") is None:
        return
    module = importlib.import_module("shipyard.cli.quickstart")
    quickstart = getattr(module, "quickstart", None)
    if callable(quickstart):
        app.command("quickstart")(guarded(quickstart))


_register_quickstart()


def main() -> None:
    """The console script: exit codes 0 success, 1 failure, 2 usage, 130 interrupted."""
    app(prog_name="shipyard")


if __name__ == "__main__":
    main()
