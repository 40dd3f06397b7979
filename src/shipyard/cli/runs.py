"""``shipyard runs list|show|compare``: experiment runs logged through the SDK."""

from __future__ import annotations

from typing import Annotated, Any

import typer

import shipyard as sy
from shipyard.cli import output
from shipyard.cli.state import command, configure, current, usage_errors

app = typer.Typer(help="Experiment runs: list, show and compare.", no_args_is_help=True)

# Table headers of the frame's base columns; params, metrics and tags keep their names.
_HEADERS = {"run_id": "run id", "start_time": "started", "end_time": "ended"}
_BASE = ["run_id", "experiment", "name", "status", "start_time", "end_time"]


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
    columns: Annotated[list[str] | None, typer.Option(
        "--columns", "-c",
        help="Columns to show, comma-separated or repeated, e.g. "
        "'run_id,name,metrics.rmse,params.max_depth' (default: as many as fit the "
        "terminal: run id, name, status, started, then metrics, experiment and params)"
    )] = None,
) -> None:
    """List runs, newest first unless --order-by says otherwise."""
    configure()
    with usage_errors(order_by="--order-by"):
        frame = sy.search_runs(experiment=experiment or None, filter=filter,
                               order_by=order_by, max_results=max_results)
    wanted = _wanted_columns(columns, list(frame.columns)) if columns else None
    if current().json:
        output.print_json(frame[wanted] if wanted else frame)
        return
    if frame.empty:
        output.note("no runs match")
        return
    names = wanted or _default_columns(frame, order_by or [])
    rows = [[row[c] for c in names] for _, row in frame.iterrows()]
    table, left_out = output.fitted_table([_HEADERS.get(c, c) for c in names], rows,
                                          width=output.width(), keep=["run id"])
    output.show(table)
    if left_out and not wanted:
        output.note(f"{len(left_out)} more columns: name them with --columns (e.g. "
                    f"--columns run_id,{','.join(_frame_name(c) for c in left_out[:2])}) "
                    "or use --output json")


def _default_columns(frame: Any, order_by: list[str]) -> list[str]:
    """The columns in order of importance: the metrics and params the runs are sorted by
    come right after the status, the other metrics after the start time; the experiment
    comes before the params only when the runs belong to more than one."""
    keys = {_sort_key(entry) for entry in order_by}
    sorted_by = [c for c in frame.columns if c in keys and c.startswith(("metrics.", "params."))]
    metrics = [c for c in frame.columns if c.startswith("metrics.") and c not in sorted_by]
    params = [c for c in frame.columns if c.startswith("params.") and c not in sorted_by]
    several = frame["experiment"].nunique() > 1
    return ["run_id", "name", "status", *sorted_by, "start_time", *metrics,
            *(["experiment", *params] if several else [*params, "experiment"])]


def _sort_key(entry: str) -> str:
    """'metrics.`rmse` DESC' -> 'metrics.rmse', the frame's column name."""
    words = entry.strip().rsplit(" ", 1)
    key = words[0] if len(words) == 2 and words[1].upper() in ("ASC", "DESC") else entry
    return key.strip().replace("`", "")


def _frame_name(header: str) -> str:
    return {v: k for k, v in _HEADERS.items()}.get(header, header)


def _wanted_columns(given: list[str], available: list[str]) -> list[str]:
    """``--columns`` as frame column names; a name the runs do not have is a usage error
    naming the choices."""
    names = [n.strip() for item in given for n in item.split(",") if n.strip()]
    valid = [*_BASE, *(c for c in available if c not in _BASE)]
    # With no runs, params, metrics and tags are unknown rather than wrong.
    prefixed = ("params.", "metrics.", "tags.") if len(available) <= len(_BASE) else ()
    unknown = [n for n in names if n not in valid and not n.startswith(prefixed)]
    if unknown or not names:
        shown = ", ".join(valid[:40]) + (", ..." if len(valid) > 40 else "")
        what = f"no column {unknown[0]!r}" if unknown else "no columns given"
        raise typer.BadParameter(f"{what}; choose from {shown}", param_hint="--columns")
    return list(dict.fromkeys(names))


@app.command("show")
@command
def show(run_id: Annotated[str, typer.Argument(help="The run's id")]) -> None:
    """Show a run: params, metrics (with their history), tags and artifacts."""
    configure()
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
    if len(run_ids) < 2:
        raise typer.BadParameter("give two or more run ids to compare (shipyard runs show "
                                 "RUN_ID shows one)", param_hint="RUN_IDS")
    configure()
    frame = sy.compare_runs(run_ids)
    if current().json:
        output.print_json({str(c): {str(k): v for k, v in frame[c].items()}
                           for c in frame.columns})
        return
    rows = [[key, *frame.loc[key].tolist()] for key in frame.index]
    output.show(output.table(None, ["", *map(str, frame.columns)], rows))
