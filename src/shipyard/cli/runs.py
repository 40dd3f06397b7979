"""``shipyard runs list|show|compare``: experiment runs logged through the SDK."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shipyard.cli import output
from shipyard.cli.state import command, current, sdk

app = typer.Typer(help="Experiment runs: list, show and compare.", no_args_is_help=True)

# A table wider than this many metric/param columns is unreadable; json has them all.
_MAX_VALUE_COLUMNS = 6


@app.command("list")
@command
def list_runs(
    experiment: Annotated[list[str] | None, typer.Option(
        "--experiment", "-e", help="Only runs of this experiment (repeatable)")] = None,
    filter: Annotated[str | None, typer.Option(
        "--filter", "-f",
        help="Filter, e.g. \"metrics.rmse < 0.2 and params.max_depth = '6'\"")] = None,
    order_by: Annotated[list[str] | None, typer.Option(
        "--order-by", help="Sort key, e.g. 'metrics.rmse ASC' (repeatable)")] = None,
    max_results: Annotated[int, typer.Option(
        "--max", min=1, max=100_000, help="At most this many runs")] = 100,
) -> None:
    """List runs, newest first unless --order-by says otherwise."""
    sy = sdk()
    frame = sy.search_runs(experiment=experiment or None, filter=filter, order_by=order_by,
                           max_results=max_results)
    if current().json:
        output.print_json(frame)
        return
    values = [c for c in frame.columns if c.startswith(("metrics.", "params."))]
    shown = values[:_MAX_VALUE_COLUMNS]
    columns = ["run_id", "experiment", "name", "status", "start_time", *shown]
    rows = [[row[c] for c in columns] for _, row in frame.iterrows()]
    output.show(output.table(None, ["run id", "experiment", "name", "status", "started",
                                    *shown], rows, keep=["run id"]))
    if len(values) > len(shown):
        output.note(f"{len(values) - len(shown)} more columns: use --output json")
    if not rows:
        output.note("no runs match")


@app.command("show")
@command
def show(run_id: Annotated[str, typer.Argument(help="The run's id")]) -> None:
    """Show a run: params, metrics (with their history), tags and artifacts."""
    sy = sdk()
    run = sy.get_run(run_id)
    history = {key: sy.get_metric_history(run.id, key) for key in sorted(run.metrics)}
    if current().json:
        data = output.jsonable(run)
        data["metric_history"] = output.jsonable(history)
        output.print_json(data)
        return
    summary = {
        "id": run.id, "name": run.name, "experiment": run.experiment, "status": run.status,
        "started": output.local_time(run.start_time), "ended": output.local_time(run.end_time),
        "duration": output.duration(run.start_time, run.end_time),
    }
    if run.created_by:
        summary["created by"] = run.created_by
    parts: list[Any] = [output.key_values(f"Run {run.id}", summary, sort=False)]
    if run.params:
        parts.append(output.key_values("Params", run.params))
    if run.metrics:
        rows = []
        for key in sorted(run.metrics):
            points = [p.value for p in sorted(history[key], key=lambda p: (p.step, p.timestamp))]
            trend = output.sparkline(output.downsample(points)) if len(points) > 1 else ""
            rows.append([key, run.metrics[key], len(points),
                         min(points) if points else None, max(points) if points else None,
                         trend])
        parts.append(output.table("Metrics", ["key", "latest", "steps", "min", "max",
                                              "history"], rows))
    if run.tags:
        parts.append(output.key_values("Tags", run.tags))
    if run.artifacts:
        parts.append(output.table(
            "Artifacts", ["name", "kind", "size", "artifact id", "digest"],
            [[a.name, a.kind, a.size, a.artifact_id, a.digest[:12]] for a in run.artifacts],
            keep=["artifact id"]))
    output.show(*parts)


@app.command("compare")
@command
def compare(run_ids: Annotated[list[str], typer.Argument(
        help="Two or more run ids")]) -> None:
    """Compare runs side by side: one column per run, one row per param or metric."""
    sy = sdk()
    frame = sy.compare_runs(run_ids)
    if current().json:
        output.print_json({str(c): {str(k): v for k, v in frame[c].items()}
                           for c in frame.columns})
        return
    rows = [[key, *frame.loc[key].tolist()] for key in frame.index]
    output.show(output.table(None, ["", *map(str, frame.columns)], rows))
