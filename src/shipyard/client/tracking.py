"""Experiment tracking over the REST API (the remote ``TrackingPort``)."""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from pydantic import TypeAdapter

from shipyard.artifacts.archives import safe_extract
from shipyard.client.http import CHUNK, HttpClient, path_id
from shipyard.errors import DataCorruption, InvalidArgument
from shipyard.tracking.destination import resolve_dest, writing
from shipyard.tracking.models import (
    Experiment,
    MetricPoint,
    MetricTuple,
    RunArtifact,
    RunData,
    RunPage,
)
from shipyard.tracking.points import clean_metrics
from shipyard.validation import check_key, check_name


class HttpTracking:
    def __init__(self, client: HttpClient) -> None:
        self._c = client

    def _run(self, run_id: str, rest: str = "") -> str:
        return self._c.project_path(f"/runs/{path_id(run_id, 'run_id')}{rest}")

    def create_experiment(self, name: str) -> Experiment:
        check_name(name, "experiment")  # the service's check: the same message in both modes
        return Experiment.model_validate(
            self._c.json("POST", self._c.project_path("/experiments"), json={"name": name}))

    def list_experiments(self) -> list[Experiment]:
        return TypeAdapter(list[Experiment]).validate_python(
            self._c.json("GET", self._c.project_path("/experiments")))

    def create_run(self, experiment: str, *, name: str | None = None,
                   tags: Mapping[str, str] | None = None,
                   params: Mapping[str, Any] | None = None) -> RunData:
        # The service's checks, before sending: the server's schema would word them its way.
        check_name(experiment, "experiment")
        if name is not None:
            check_name(name, "name")
        body = {"experiment": experiment, "name": name,
                "tags": dict(tags) if tags else None,
                "params": {k: str(v) for k, v in params.items()} if params else None}
        return RunData.model_validate(
            self._c.json("POST", self._c.project_path("/runs"), json=body))

    def log_batch(self, run_id: str, *, metrics: Sequence[MetricTuple] = (),
                  params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, str] | None = None) -> None:
        # Checked here as the service checks them, so a NaN fails with the same error rather
        # than as unencodable JSON.
        points = [{"key": k, "value": v, "step": s, "timestamp": t}
                  for k, v, s, t in clean_metrics(metrics)]
        body = {"metrics": points,
                "params": {k: str(v) for k, v in params.items()} if params else None,
                "tags": {k: str(v) for k, v in tags.items()} if tags else None}
        self._c.request("POST", self._run(run_id, "/log-batch"), json=body)

    def terminate_run(self, run_id: str, status: str = "FINISHED") -> RunData:
        return RunData.model_validate(self._c.json(
            "POST", self._run(run_id, "/terminate"), json={"status": status}))

    def heartbeat_run(self, run_id: str, lease_seconds: float) -> str:
        body = self._c.json("POST", self._run(run_id, "/heartbeat"),
                            json={"lease_seconds": lease_seconds})
        return str(body["status"])

    def get_run(self, run_id: str) -> RunData:
        return RunData.model_validate(self._c.json("GET", self._run(run_id)))

    def search_runs(self, *, experiments: Sequence[str] | None = None,
                    filter: str | None = None, order_by: Sequence[str] | None = None,
                    max_results: int = 1000, page_token: str | None = None) -> RunPage:
        body = {"experiments": list(experiments) if experiments else None, "filter": filter,
                "order_by": list(order_by) if order_by else None, "max_results": max_results,
                "page_token": page_token}
        return RunPage.model_validate(
            self._c.json("POST", self._c.project_path("/runs:search"), json=body))

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        check_key(key, "key")
        return TypeAdapter(list[MetricPoint]).validate_python(self._c.json(
            "GET", self._run(run_id, "/metrics/history"), params={"key": key}))

    def log_artifact(self, run_id: str, path: str | os.PathLike[str],
                     name: str | None = None) -> RunArtifact:
        source = Path(path)
        artifact_name = check_name(name if name is not None else source.name, "name")
        if not source.is_dir() and not source.is_file():  # the service's check, before sending
            raise InvalidArgument(f"{source} is not a file or directory", field="path")
        with tempfile.TemporaryFile(prefix="shipyard-upload-") as spool:
            if source.is_dir():
                kind = "tree"
                with tarfile.open(fileobj=spool, mode="w") as tar:
                    tar.add(source, arcname=".")
            else:
                kind = "file"
                with open(source, "rb") as f:
                    while chunk := f.read(CHUNK):
                        spool.write(chunk)
            spool.seek(0)
            digest = hashlib.file_digest(spool, "sha256").hexdigest()
            spool.seek(0)
            response = self._c.request(
                "PUT", self._run(run_id, f"/artifacts/{artifact_name}"),
                params={"kind": kind}, content=_chunks(spool),
                headers={"Content-Type": "application/octet-stream",
                         "X-Content-SHA256": digest})
        return RunArtifact.model_validate(response.json())

    def download_artifact(self, run_id: str, name: str, dest: str | os.PathLike[str]) -> Path:
        check_name(name, "name")
        with self._c.stream("GET", self._run(run_id, f"/artifacts/{name}"),
                            repr(name)) as response:
            kind = response.headers.get("x-artifact-kind", "file")
            expected = response.headers.get("x-content-sha256", "")
            target = resolve_dest(dest, name, kind)
            with writing(target), _spool_beside(target) as spool:
                hasher = hashlib.sha256()
                for chunk in response.iter_bytes(CHUNK):
                    hasher.update(chunk)
                    spool.write(chunk)
                spool.flush()
                os.fsync(spool.fileno())
                if kind == "file":
                    if expected and hasher.hexdigest() != expected:
                        raise DataCorruption(
                            f"artifact {name!r} arrived damaged: its sha256 does not "
                            "match the server's; nothing was written")
                    os.replace(spool.name, target)
                else:
                    safe_extract(spool.name, target)
        return target


@contextmanager
def _spool_beside(target: Path) -> Iterator[IO[bytes]]:
    """A temporary file in ``target``'s folder (so that it can be renamed over it), removed
    unless it was."""
    with tempfile.NamedTemporaryFile(prefix="shipyard-download-", dir=target.absolute().parent,
                                     delete=False) as spool:
        try:
            yield spool
        finally:
            if os.path.exists(spool.name):
                os.unlink(spool.name)


def _chunks(f: IO[bytes]) -> Iterator[bytes]:
    while chunk := f.read(CHUNK):
        yield chunk
