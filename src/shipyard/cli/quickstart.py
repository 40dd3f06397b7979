"""``shipyard quickstart``: seed 002's lead-scoring workflow end to end, on generated data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli import output
from shipyard.errors import ShipyardError
from shipyard.quickstart.data import (
    CANARY_REQUESTS,
    DEFAULT_ROWS,
    DEFAULT_SEED,
    MAX_ROWS,
    MAX_SEED,
)


def quickstart(
    rows: Annotated[
        int, typer.Option("--rows", min=100, max=MAX_ROWS, help="How many leads to generate")
    ] = DEFAULT_ROWS,
    seed: Annotated[
        int,
        typer.Option(
            "--seed",
            min=0,
            max=MAX_SEED,
            help="Seed of the generated data; the same seed gives the same data, "
            "so a rerun is served from the cache",
        ),
    ] = DEFAULT_SEED,
    canary_requests: Annotated[
        int,
        typer.Option(
            "--canary-requests",
            min=1,
            max=10_000,
            help="Requests the retrained model's 10% canary answers before its verdict "
            "(promoted, or rolled back if its latency or error rate is worse)",
        ),
    ] = CANARY_REQUESTS,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="Shipyard home directory (env SHIPYARD_HOME, default ~/.shipyard)",
            show_default=False,
        ),
    ] = None,
    *,
    ctx: typer.Context,
) -> None:
    """Seed 002's lead scoring end to end: train and register a model (promoted to
    production only if it beats the current one), serve it with explanations, catch a
    drifted mix of leads with a monitor, and close the loop: the alert retrains on fresh
    leads and the winner goes out as a 10% canary, promoted or rolled back."""
    from rich.console import Console

    home = home or _root_home(ctx)
    try:
        from shipyard.quickstart.run import run_quickstart

        run_quickstart(home=home, rows=rows, seed=seed, canary_requests=canary_requests,
                       console=Console(highlight=False))
    except ShipyardError as exc:
        _fail(exc.message)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        _fail(f"{exc.strerror or exc}{where}")
    except ImportError as exc:
        # A step's import happens in its own process; this is the calling process's.
        _fail(f"{exc.name or exc} is not installed: run  pip install shipyard")


def _root_home(ctx: typer.Context) -> Path | None:
    """``shipyard --home X quickstart``: the root command keeps its options on the context."""
    home = getattr(ctx.find_root().obj, "home", None)
    return home if isinstance(home, Path) else None


def _fail(message: str) -> None:
    output.error_line(message)
    raise typer.Exit(1)
