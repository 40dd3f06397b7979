"""What every command shares: the global options, the SDK set up from them, error handling.

The global options (``--home --uri --project --output``) are accepted on the root command
(``shipyard --output json runs list``) and on every command (``shipyard runs list --output
json``); a value given on the command wins. ``command`` adds them to a command's signature
and turns a ``ShipyardError`` into one red line and exit code 1.
"""

from __future__ import annotations

import functools
import inspect
import os
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer

from shipyard.cli import output
from shipyard.cli.output import Format
from shipyard.config import Settings
from shipyard.errors import InvalidArgument, ShipyardError

P = ParamSpec("P")
R = TypeVar("R")

HomeOption = Annotated[Path | None, typer.Option(
    "--home", help="Shipyard home directory (env SHIPYARD_HOME, default ~/.shipyard)",
    show_default=False)]
UriOption = Annotated[str | None, typer.Option(
    "--uri", help="Metadata store or server: sqlite:///..., postgresql+psycopg://..., "
    "http(s)://host:port (env SHIPYARD_URI)", show_default=False)]
ProjectOption = Annotated[str | None, typer.Option(
    "--project", help="Project to work in (env SHIPYARD_PROJECT, default 'default')",
    show_default=False)]
OutputOption = Annotated[Format | None, typer.Option(
    "--output", "-o", help="table for people, json for scripts (default table)",
    show_default=False, case_sensitive=False)]

_GLOBALS: dict[str, Any] = {
    "home": HomeOption, "uri": UriOption, "project": ProjectOption, "output": OutputOption,
}


def global_option_names() -> frozenset[str]:
    return frozenset(_GLOBALS)


@dataclass(frozen=True)
class CliState:
    home: Path | None = None
    uri: str | None = None
    project: str | None = None
    output: Format | None = None

    def merged(self, overrides: dict[str, Any]) -> CliState:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def json(self) -> bool:
        return self.output == Format.json


# The options and settings of the command being run. Context variables rather than Typer's
# context object so that helpers need not be handed a context.
_state: ContextVar[CliState | None] = ContextVar("shipyard_cli_state", default=None)
_settings: ContextVar[Settings | None] = ContextVar("shipyard_cli_settings", default=None)
_invoked: ContextVar[str | None] = ContextVar("shipyard_cli_subcommand", default=None)


def invoked_subcommand() -> str | None:
    """In a group's callback: the subcommand about to run (None: the group alone)."""
    return _invoked.get()


def current() -> CliState:
    """The options of the command being run (root options merged with its own)."""
    return _state.get() or CliState()


def configure() -> Settings:
    """Set the SDK up from the global options; commands then call ``shipyard.*``.

    ``init`` runs on every command, not once per process: it re-reads ``SHIPYARD_*``, so
    commands invoked one after another in one process (tests, scripts) see the current
    environment.
    """
    import shipyard

    state = current()
    with usage_errors(project="--project", uri="--uri"):
        configured = shipyard.init(home=state.home, uri=state.uri, project=state.project)
    _settings.set(configured)
    return configured


def settings() -> Settings:
    """The ``Settings`` the SDK was set up with (after ``configure()``)."""
    configured = _settings.get()
    return configured if configured is not None else configure()


def project() -> str:
    """The project the SDK was set up with (after ``configure()``)."""
    return settings().project


@contextmanager
def usage_errors(**options: str) -> Iterator[None]:
    """Report the SDK's ``InvalidArgument`` about one of the command's options as a usage
    error (exit 2) naming the option: ``usage_errors(order_by="--order-by")``.

    The SDK's message is kept, so local mode, remote mode and the CLI say the same thing;
    only the exit code and the option's name are the CLI's.
    """
    try:
        yield
    except InvalidArgument as exc:
        field = (exc.field or "").split("[", 1)[0].split(".", 1)[0]
        if field not in options:
            raise
        raise typer.BadParameter(exc.message, param_hint=options[field]) from None


def fail(message: str, field: str | None = None) -> NoReturn:
    output.error_line(message, field)
    raise typer.Exit(1)


@contextmanager
def handled_errors() -> Iterator[None]:
    """ShipyardError and OS errors become one red line and exit 1, never a traceback."""
    try:
        yield
    except ShipyardError as exc:
        fail(exc.message, exc.field)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        fail(f"{exc.strerror or exc}{where}")
    except (typer.Exit, typer.Abort, typer.TyperException, KeyboardInterrupt):
        raise
    except Exception as exc:
        if os.environ.get("SHIPYARD_DEBUG"):
            raise
        fail(f"unexpected {type(exc).__name__}: {exc} (set SHIPYARD_DEBUG=1 for the traceback)")


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Only the CLI's error handling, for a command that sets the SDK up itself."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with handled_errors():
            return fn(*args, **kwargs)

    return wrapper


_CTX = "shipyard_context"


def command(fn: Callable[P, R]) -> Callable[..., R]:
    """Give ``fn`` the global options and the CLI's error handling."""
    hints = typing.get_type_hints(fn, include_extras=True)
    signature = inspect.signature(fn)
    params = [p.replace(annotation=hints.get(p.name, p.annotation))
              for p in signature.parameters.values()]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                                 default=None)
               for name, annotation in _GLOBALS.items()]
    # Typer fills a parameter annotated as its Context; the root callback left the root
    # options on it.
    params.append(inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY,
                                    annotation=typer.Context))

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        overrides = {name: kwargs.pop(name, None) for name in _GLOBALS}
        ctx = kwargs.pop(_CTX)
        root = ctx.find_root().obj
        base = root if isinstance(root, CliState) else CliState()
        token = _state.set(base.merged(overrides))
        invoked = _invoked.set(ctx.invoked_subcommand)
        try:
            with handled_errors():
                return fn(*args, **kwargs)
        finally:
            _invoked.reset(invoked)
            _state.reset(token)

    # Typer reads the parameters from the signature; the annotations are evaluated here
    # because the wrapper lives in another module than the string annotations it copies.
    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper
