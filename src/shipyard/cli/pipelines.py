"""``shipyard pipelines ...``: compile, run (with live task states), inspect, retry, cancel."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

import shipyard as sy
from shipyard.cli import output
from shipyard.cli.state import command, configure, current, fail, usage_errors
from shipyard.errors import InvalidArgument, ShipyardError
from shipyard.pipelines.models import PipelineRun

app = typer.Typer(help="Pipelines: compile, run, list, show, logs, retry and cancel.",
                  no_args_is_help=True)

_WHAT = "pipelines"
_POLL_SECONDS = 0.25
_STATE_STYLE = {"SUCCEEDED": "green", "FAILED": "red", "RUNNING": "cyan", "CANCELLED": "yellow",
                "CANCELLING": "yellow", "SKIPPED": "dim", "PENDING": "dim", "QUEUED": "dim"}
_TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


def load_function(target: str) -> Any:
    """``path/to/file.py:function`` -> the function (the file is imported, as Python would)."""
    path_text, sep, name = target.rpartition(":")
    if not sep or not path_text.endswith(".py") or not name.isidentifier():
        raise InvalidArgument(f"{target!r}: give FILE.py:FUNCTION, e.g. pipeline.py:my_pipeline",
                              field="pipeline")
    path = Path(path_text).resolve()
    if not path.is_file():
        raise InvalidArgument(f"{path_text}: no such file", field="pipeline")
    module = _import_file(path)
    fn = getattr(module, name, None)
    if fn is None:
        raise InvalidArgument(f"{path_text} has no {name!r}", field="pipeline")
    return fn


def _import_file(path: Path) -> ModuleType:
    # The file's folder goes on sys.path so that it can import its sibling modules, exactly
    # as `python file.py` would let it.
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise InvalidArgument(f"{path}: not an importable Python file", field="pipeline")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def parse_arguments(pairs: list[str]) -> dict[str, Any]:
    """``k=v`` pairs; values are read as JSON when they parse (5000, 0.1, true, [1,2]),
    otherwise kept as text."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r}: use NAME=VALUE", param_hint="--arg")
        try:
            result[key.strip()] = json.loads(text)
        except ValueError:
            result[key.strip()] = text
    return result


@app.command("compile")
@command
def compile_(
    pipeline: Annotated[str, typer.Argument(metavar="FILE.py:FUNC",
                                            help="The @dsl.pipeline function")],
    out: Annotated[Path, typer.Argument(metavar="OUT.yaml", help="Where to write the spec")],
) -> None:
    """Compile a pipeline function to a versioned YAML spec."""
    configure()
    fn = load_function(pipeline)
    sy.compile_pipeline(fn, out)
    if current().json:
        output.print_json({"pipeline": pipeline, "path": str(out)})
    else:
        output.show(f"wrote {escape(str(out))}")


@app.command("run")
@command
def run(
    pipeline: Annotated[str, typer.Argument(metavar="SPEC.yaml|FILE.py:FUNC",
                                            help="A compiled spec or a pipeline function")],
    arg: Annotated[list[str] | None, typer.Option(
        "--arg", "-a", help="Pipeline argument NAME=VALUE (repeatable)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache",
                                           help="Run every step, ignoring the cache")] = False,
    submit: Annotated[bool, typer.Option(
        "--submit", help="Queue the run for a worker and return at once")] = False,
    inline: Annotated[bool, typer.Option(
        "--inline", help="Run steps in this process (for debuggers and breakpoints)")] = False,
    parallelism: Annotated[int | None, typer.Option(
        "--parallelism", min=1, help="Steps at once (default: one per core)")] = None,
) -> None:
    """Run a pipeline and show its task states as they change."""
    configure()
    target: Any = load_function(pipeline) if ".py:" in pipeline else pipeline
    if isinstance(target, str) and not Path(target).is_file():
        raise InvalidArgument(f"{target}: no such file (give SPEC.yaml or FILE.py:FUNC)",
                              field="pipeline")
    arguments = parse_arguments(arg or [])

    def start() -> PipelineRun:
        return sy.run_pipeline(target, arguments, enable_caching=not no_cache,
                               parallelism=parallelism, inline=inline, raise_on_error=False,
                               submit=submit)

    live = not (submit or inline or current().json) and sys.stdout.isatty()
    if live:
        result = _run_with_live_display(start)
    elif current().json:
        # Inline steps print to this process's stdout; keep it for the JSON document alone.
        with contextlib.redirect_stdout(sys.stderr):
            result = _unwrap(start)
    else:
        result = _unwrap(start)
    _finish(result)


def _unwrap(call: Callable[[], PipelineRun]) -> PipelineRun:
    # A failed run comes back as a value (raise_on_error=False), but an SDK that raises
    # anyway carries the run on the error: show it the same way.
    try:
        return call()
    except ShipyardError as exc:
        carried = getattr(exc, "run", None)
        if not isinstance(carried, PipelineRun):
            raise
        return carried


def _run_with_live_display(start: Callable[[], PipelineRun]) -> Any:
    """Run in a worker thread while this one polls the store for the run's task states."""
    outcome: dict[str, Any] = {}
    started = datetime.now(UTC)
    before = {r.id for r in sy.list_pipeline_runs(limit=20)}

    def work() -> None:
        try:
            outcome["run"] = _unwrap(start)
        except BaseException as exc:  # handed to the main thread, which reports it
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="shipyard-pipeline-run", daemon=True)
    worker.start()
    run_id: str | None = None
    try:
        with Live(_task_table(None), console=output.stdout(), refresh_per_second=8,
                  transient=True) as display:
            while worker.is_alive():
                worker.join(_POLL_SECONDS)
                if run_id is None:
                    run_id = _find_new_run(before, started)
                if run_id is not None:
                    display.update(_task_table(sy.get_pipeline_run(run_id)))
    except KeyboardInterrupt:
        if run_id is not None:
            sy.cancel_pipeline_run(run_id)
            output.note(f"cancelling run {run_id}")
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["run"]


def _find_new_run(before: set[str], started: datetime) -> str | None:
    for candidate in sy.list_pipeline_runs(limit=20):
        created = candidate.created_at
        if candidate.id not in before and (created is None or created >= started.replace(
                microsecond=0)):
            return str(candidate.id)
    return None


def _finish(result: Any) -> None:
    if current().json:
        output.print_json(result)
    else:
        output.show(_task_table(result))
    if result.state == "FAILED":
        failed = [t.name for t in result.tasks.values() if t.state == "FAILED"]
        for name in failed:
            error = result.tasks[name].error or ""
            output.stderr().print(f"--- task {name} ---\n{error}", markup=False,
                                  highlight=False)
        fail(f"pipeline run {result.id} failed"
             + (f" in task {', '.join(failed)}" if failed else "")
             + f": see  shipyard pipelines logs {result.id}")
    if result.state == "CANCELLED":
        fail(f"pipeline run {result.id} was cancelled")


def _styled(state: str) -> Text:
    return Text(state, style=_STATE_STYLE.get(state, ""))


def _task_table(run: Any) -> Table:
    if run is None:
        return output.table("starting...", ["task", "state"], [])
    title = f"{run.pipeline_name}  {run.id}  {run.state}"
    return output.table(title, ["task", "state", "cached", "attempts", "duration"], [
        [task.name, _styled(task.state), "yes" if task.cached else "", task.attempts or None,
         output.duration(task.started_at, task.finished_at)] for task in run.tasks.values()])


@app.command("list")
@command
def list_runs(
    pipeline_name: Annotated[str | None, typer.Option(
        "--pipeline", "-p", help="Only runs of this pipeline")] = None,
    state: Annotated[str | None, typer.Option(
        "--state", help="Only runs in this state: QUEUED, RUNNING, CANCELLING, SUCCEEDED, "
        "FAILED or CANCELLED (any case)")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000,
                                       help="At most this many")] = 100,
) -> None:
    """List pipeline runs, newest first."""
    with usage_errors(state="--state"):
        configure()
        runs = sy.list_pipeline_runs(
            pipeline_name=pipeline_name, state=state.upper() if state else None, limit=limit)
    if current().json:
        output.print_json(runs)
        return
    rows = [[r.id, r.pipeline_name, _styled(r.state), r.created_at,
             output.duration(r.started_at, r.finished_at)] for r in runs]
    output.show(output.table(None, ["run id", "pipeline", "state", "created", "duration"],
                             rows, keep=["run id", "state"]))


@app.command("show")
@command
def show(run_id: Annotated[str, typer.Argument(help="The pipeline run's id")]) -> None:
    """Show a pipeline run: each task's state, cache hit and duration, and where the code
    that started it came from."""
    configure()
    result = sy.get_pipeline_run(run_id)
    if current().json:
        output.print_json(result)
        return
    output.show(_task_table(result))
    if result.claimed_by:  # the worker (host-pid) running it, or that ran it last
        output.show(f"claimed by {escape(result.claimed_by)}")
    source = {k: v for k, v in result.source.items() if k != "source.packages"}
    if source:  # the package list is long: -o json has it
        output.show(output.key_values("Source", source))
    if result.error:
        output.show(f"[red]{escape(result.error.splitlines()[0])}[/red]")


@app.command("logs")
@command
def logs(
    run_id: Annotated[str, typer.Argument(help="The pipeline run's id")],
    task: Annotated[str | None, typer.Option(
        "--task", "-t", help="Only this task's log (default: every task, in order)")] = None,
) -> None:
    """Print the captured stdout and stderr of a run's steps. A step served from the cache
    did not run: its entry names the run whose step produced the outputs."""
    configure()
    get_log = sy.get_task_log
    texts = {task: get_log(run_id, task)} if task is not None else None
    run = sy.get_pipeline_run(run_id)
    names = [task] if task is not None else list(run.tasks)
    if texts is None:
        texts = {name: get_log(run_id, name) for name in names}
    sources = {name: _cache_source(run.tasks.get(name)) for name in names}
    if current().json:
        output.print_json({"run_id": run_id, "logs": texts,
                           "cached_from": {k: v for k, v in sources.items() if v}})
        return
    for name, text in texts.items():
        if task is None:
            sys.stdout.write(f"===== {name} =====\n")
        source = sources.get(name)
        if source is not None:
            sys.stdout.write(
                f"(served from the cache: run {source['run_id']} produced the outputs; its "
                f"log: shipyard pipelines logs {source['run_id']} --task {source['task']})\n")
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


def _cache_source(info: Any) -> dict[str, str] | None:
    """For a task served from the cache: the run and task whose step produced its outputs
    (from the lineage graph: a cached execution records the one it took them from)."""
    if info is None or not info.cached or not info.execution_id:
        return None
    try:
        cached = sy.get_execution(info.execution_id)
        origin = cached.properties.get("cached_from")
        if not isinstance(origin, str):
            return None
        produced = sy.get_execution(origin).properties
    except ShipyardError:
        return None  # the producer was deleted: the note is a courtesy, not the answer
    run, step = produced.get("run_id"), produced.get("task")
    if not isinstance(run, str) or not isinstance(step, str):
        return None
    return {"run_id": run, "task": step}


@app.command("retry")
@command
def retry(run_id: Annotated[str, typer.Argument(help="The pipeline run's id")]) -> None:
    """Rerun what did not succeed in a run; finished steps are reused."""
    configure()
    retry_run = sy.retry_pipeline_run
    _finish(_unwrap(lambda: retry_run(run_id, raise_on_error=False)))


@app.command("cancel")
@command
def cancel(
    run_id: Annotated[str, typer.Argument(help="The pipeline run's id")],
    force: Annotated[bool, typer.Option("--force",
                                        help="Kill running steps instead of waiting")] = False,
) -> None:
    """Cancel a queued or running pipeline run."""
    configure()
    result = sy.cancel_pipeline_run(run_id, force=force)
    if current().json:
        output.print_json(result)
    elif result is not None and hasattr(result, "state"):
        output.show(Text(f"run {run_id}: ").append(_styled(result.state)))
    else:
        output.show(f"run {run_id}: cancel requested")

