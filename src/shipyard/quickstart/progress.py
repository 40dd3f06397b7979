"""Showing a pipeline run's tasks as they settle (the quickstart's training run and the
closed loop's retraining run alike)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from shipyard.pipelines import PipelineRun
from shipyard.quickstart.pipeline import TASKS


def ordered_tasks(run: PipelineRun) -> list[Any]:
    """The run's tasks in pipeline order (the store returns them in no particular one)."""
    rank = {name: i for i, name in enumerate(TASKS)}
    return sorted(run.tasks.values(), key=lambda t: rank.get(t.name, len(rank)))


def report_tasks(console: Console, status: Any, run: PipelineRun, shown: set[str]) -> None:
    for task in ordered_tasks(run):
        if task.name in shown:
            continue
        if task.state == "RUNNING" and status is not None:
            status.update(f"running [bold]{task.name}[/]...")
            continue
        # Skipped and cancelled tasks are listed once the run is over, after the ones
        # that explain them.
        settled = (
            ("SUCCEEDED", "FAILED")
            if status is not None
            else ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED")
        )
        if task.state not in settled:
            continue
        shown.add(task.name)
        seconds = seconds_between(task.started_at, task.finished_at)
        if task.cached:
            console.print(f"  [cyan]cached[/]  {task.name}")
        elif task.state == "SUCCEEDED":
            took = "" if seconds is None else f"  [dim]{seconds:.1f} s[/]"
            console.print(f"  [green]ran[/]     {task.name}{took}")
        else:
            console.print(f"  [red]{task.state.lower()}[/]  {task.name}")


def seconds_between(start: Any, end: Any) -> float | None:
    if start is None or end is None:
        return None
    return float((end - start).total_seconds())
