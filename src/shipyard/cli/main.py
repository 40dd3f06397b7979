"""The root ``shipyard`` command: global options, command groups, the entry point."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from shipyard.cli import (
    automation,
    batch,
    endpoints,
    events,
    identity,
    lineage,
    models,
    monitors,
    output,
    pipelines,
    quickstart,
    runs,
    server,
)
from shipyard.cli.state import (
    CliState,
    HomeOption,
    OutputOption,
    ProjectOption,
    UriOption,
    guarded,
)


class RootGroup(TyperGroup):
    """The root command, printing usage errors as one ``error:`` line like every failure.

    Click's standalone mode would print the usage, a hint and a boxed message; the CLI's
    contract (DESIGN.md 4) is one line and exit code 2.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args,
                                **extra)
        try:
            # Not standalone: typer.Exit comes back as its code, KeyboardInterrupt as 130.
            result = super().main(args, prog_name, complete_var, False, windows_expand_args,
                                  **extra)
        except typer.TyperException as exc:
            _usage_error(exc)
        except typer.Abort:
            output.error_line("aborted")
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


def _usage_error(exc: typer.TyperException) -> NoReturn:
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":
        # A group run without a subcommand: Typer has printed its help, the useful answer.
        if exc.format_message().strip():
            sys.stderr.write(exc.format_message() + "\n")
        sys.exit(exc.exit_code)
    hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
    output.error_line(exc.format_message() + hint)
    sys.exit(exc.exit_code)


app = typer.Typer(
    name="shipyard",
    cls=RootGroup,
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
app.add_typer(endpoints.app, name="endpoints")
app.add_typer(events.app, name="events")
app.add_typer(monitors.app, name="monitors")
events.app.add_typer(automation.schedules_app, name="schedules")
events.app.add_typer(automation.triggers_app, name="triggers")
batch.register(app)
identity.register(app)


app.command("quickstart")(guarded(quickstart.quickstart))


def main() -> None:
    """The console script: exit codes 0 success, 1 failure, 2 usage, 130 interrupted."""
    app(prog_name="shipyard")


if __name__ == "__main__":
    main()
