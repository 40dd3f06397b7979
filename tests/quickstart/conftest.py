"""Fixtures for the quickstart tests: a small dataset keeps each run to a few seconds."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from shipyard.quickstart.run import QuickstartResult, run_quickstart
from shipyard.sdk import session

ROWS = 3_000


@pytest.fixture(autouse=True)
def _fresh_sdk(home: Path) -> Iterator[None]:
    session.reset()
    yield
    session.reset()


def quickstart(home: Path, seed: int = 2, rows: int = ROWS,
               canary_requests: int = 20) -> tuple[QuickstartResult, str]:
    """Run the quickstart, returning its result and what it printed."""
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False)
    result = run_quickstart(home=home, rows=rows, seed=seed, console=console,
                            canary_requests=canary_requests)
    return result, out.getvalue()
