"""Experiment tracking from the SDK (re-exported as ``shipyard.*``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.sdk import session
from shipyard.sdk.runs import ActiveRun
from shipyard.tracking import source
from shipyard.tracking.models import MetricPoint, RunData

if TYPE_CHECKING:
    import pandas as pd

def start_run(
    experiment: str = "default",
    name: str | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    synchronous: bool = True,
) -> ActiveRun:
    """Start a run; use it as ``with sy.start_run(...) as run:``.

    ``synchronous=False`` buffers log calls and writes them from a background thread, so a
    training loop never waits for the store; ``run.flush()`` makes them durable.
    """
    current = session.current()
    backend = current.tracking
    clean_tags = {k: str(v) for k, v in (tags or {}).items()}
    pipeline_task = os.environ.get("SHIPYARD_PIPELINE_TASK")
    if pipeline_task:
        clean_tags.setdefault("shipyard.pipeline_task", pipeline_task)
    for key, value in source.source_tags().items():  # the user's own tags win
        clean_tags.setdefault(key, value)
    data = backend.create_run(experiment, name=name, tags=clean_tags or None, params=params)
    return ActiveRun(backend, data, synchronous=synchronous,
                     heartbeat=current.settings.run_heartbeat)


def get_run(run_id: str) -> RunData:
    return session.current().tracking.get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[MetricPoint]:
    return session.current().tracking.metric_history(run_id, key)


def download_artifact(run_id: str, name: str, dest: str | os.PathLike[str]) -> Path:
    return session.current().tracking.download_artifact(run_id, name, dest)


def search_runs(
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
) -> pd.DataFrame:
    """Runs matching ``filter`` as a DataFrame with MLflow's columns: run_id, experiment,
    name, status, start_time, end_time, params.*, metrics.*, tags.*."""

    experiments = [experiment] if isinstance(experiment, str) else experiment
    backend = session.current().tracking
    runs: list[RunData] = []
    token: str | None = None
    while True:
        page = backend.search_runs(experiments=experiments, filter=filter, order_by=order_by,
                                   max_results=min(max_results - len(runs), 1000) or 1,
                                   page_token=token)
        runs.extend(page.runs)
        token = page.next_page_token
        if token is None or len(runs) >= max_results:
            break
    return runs_to_frame(runs[:max_results])


def runs_to_frame(runs: Sequence[RunData]) -> pd.DataFrame:
    import pandas as pd

    base = ["run_id", "experiment", "name", "status", "start_time", "end_time"]
    rows = []
    for r in runs:
        row: dict[str, Any] = {"run_id": r.id, "experiment": r.experiment, "name": r.name,
                               "status": r.status, "start_time": r.start_time,
                               "end_time": r.end_time}
        row.update({f"params.{k}": v for k, v in r.params.items()})
        row.update({f"metrics.{k}": v for k, v in r.metrics.items()})
        row.update({f"tags.{k}": v for k, v in r.tags.items()})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else base)
    extra = sorted(c for c in frame.columns if c not in base)
    ordered = base + [c for c in extra if c.startswith("params.")] + \
        [c for c in extra if c.startswith("metrics.")] + \
        [c for c in extra if c.startswith("tags.")]
    result: pd.DataFrame = frame[ordered]
    return result


def compare_runs(run_ids: Sequence[str]) -> pd.DataFrame:
    """Params and metrics of several runs side by side: one column per run."""
    import pandas as pd

    backend = session.current().tracking
    runs = [backend.get_run(r) for r in run_ids]
    keys = sorted({f"params.{k}" for r in runs for k in r.params}) + \
        sorted({f"metrics.{k}" for r in runs for k in r.metrics})
    data = {}
    for r in runs:
        values: dict[str, Any] = {f"params.{k}": v for k, v in r.params.items()}
        values.update({f"metrics.{k}": v for k, v in r.metrics.items()})
        data[r.id] = [values.get(k) for k in keys]
    return pd.DataFrame(data, index=keys)
