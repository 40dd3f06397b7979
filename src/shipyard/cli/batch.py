"""``shipyard batch-predict``: a table file through a registered model, resumably."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import shipyard as sy
from shipyard.cli import output
from shipyard.cli.state import command, configure, current, usage_errors
from shipyard.serving import batch


def register(root: typer.Typer) -> None:
    root.command("batch-predict")(batch_predict)


@command
def batch_predict(
    model: Annotated[str, typer.Argument(help="name:3, name@alias, models:/name@alias or "
                                         "name (latest)")],
    source: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON Lines file")],
    destination: Annotated[Path, typer.Argument(help="Parquet or CSV file to write")],
    chunk_rows: Annotated[int, typer.Option(
        "--chunk-rows", min=1, max=batch.MAX_CHUNK_ROWS,
        help="Rows read and predicted at a time (memory holds about one chunk)")
    ] = batch.DEFAULT_CHUNK_ROWS,
    output_format: Annotated[str | None, typer.Option(
        "--format", help="parquet or csv (default: from DESTINATION's suffix)")] = None,
    input_format: Annotated[str | None, typer.Option(
        "--input-format", help="csv, parquet or jsonl (default: from SOURCE's suffix)")
    ] = None,
    executor: Annotated[str, typer.Option(
        "--executor", help="local (this process) or ray (chunks as Ray tasks on RAY_ADDRESS's "
        "cluster)")] = "local",
) -> None:
    """Predict every row of SOURCE into DESTINATION, with the model version on each row.

    Run the same command again after an interruption: finished chunks are not redone.
    """
    configure()
    quiet = current().json
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TextColumn("rows"), TimeElapsedColumn(),
                  console=output.stderr(), disable=quiet, transient=True) as bar:
        task = bar.add_task(f"predicting {source.name}", total=None)

        def advance(progress: batch.Progress) -> None:
            bar.update(task, completed=progress.rows, total=progress.total_rows)

        with usage_errors(chunk_rows="--chunk-rows", output_format="--format",
                          input_format="--input-format", executor="--executor"):
            job = sy.batch_predict(model, source, destination, chunk_rows=chunk_rows,
                                   output_format=output_format, input_format=input_format,
                                   on_progress=advance, executor=executor)
    if quiet:
        output.print_json(job)
        return
    output.show(output.key_values("batch prediction", {
        "model": f"{job.model}:{job.model_version}", "rows": job.rows,
        "chunks": f"{job.chunks} ({job.skipped_chunks} done earlier)" if job.skipped_chunks
        else job.chunks,
        "destination": job.destination, "seconds": job.seconds,
        "lineage execution": job.execution_id or "(not recorded through a server)",
    }, sort=False))
