"""``HttpBackend``: the SDK's interface implemented with httpx against the REST API.

Server errors come back as problem+json and are raised as the same ``ShipyardError`` kinds
the services raise locally, with the same message and field. A server that cannot be reached
is ``Unavailable`` (the async logger retries those).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from pydantic import TypeAdapter

from shipyard.client.http_pipelines import HttpPipelines
from shipyard.client.http_registry import HttpRegistry
from shipyard.client.problems import raise_for_problem
from shipyard.config import Settings
from shipyard.errors import DataCorruption, InvalidArgument, Unavailable
from shipyard.ids import check_id
from shipyard.lineage.models import ArtifactNode, ContextNode, ExecutionNode, LineageGraph
from shipyard.lineage.queries import check_graph_options
from shipyard.sdk.backend import MetricTuple
from shipyard.tracking.destination import resolve_dest, writing
from shipyard.tracking.models import Experiment, MetricPoint, RunArtifact, RunData, RunPage
from shipyard.tracking.service import clean_metrics
from shipyard.validation import check_key, check_name

_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
_CHUNK = 1 << 20


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(settings: Settings) -> str | None:
    """``SHIPYARD_TOKEN``/``--token`` first; for a server on this machine, the token the
    server wrote to ``$SHIPYARD_HOME/credentials`` on first start."""
    if settings.token:
        return settings.token
    from shipyard.sdk.identity import credentials_file
    from shipyard.security.credentials import read_credentials

    try:  # saved by `shipyard login` for this server: comment lines, then the token
        lines = credentials_file(settings.home, settings.uri).read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    saved = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    if saved:
        return saved[0]
    if _is_loopback(settings.uri):
        return read_credentials(settings.home)
    return None


class HttpBackend(HttpRegistry, HttpPipelines):
    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None
                 ) -> None:
        self.settings = settings
        self.project = settings.project
        headers = {"User-Agent": "shipyard-sdk"}
        token = resolve_token(settings)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=settings.uri.rstrip("/"), headers=headers,
                                  timeout=_TIMEOUT, transport=transport)

    def close(self) -> None:
        self._http.close()

    # -- plumbing ------------------------------------------------------------------------------
    def _p(self, path: str) -> str:
        return f"/api/v1/projects/{quote(self.project, safe='')}{path}"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the Shipyard server at {self.settings.uri}: "
                              f"{exc.__class__.__name__}", retry_after=1) from None
        raise_for_problem(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    # -- tracking ----------------------------------------------------------------------------
    def create_experiment(self, name: str) -> Experiment:
        check_name(name, "experiment")  # the service's check: the same message in both modes
        return Experiment.model_validate(
            self._json("POST", self._p("/experiments"), json={"name": name}))

    def list_experiments(self) -> list[Experiment]:
        return TypeAdapter(list[Experiment]).validate_python(
            self._json("GET", self._p("/experiments")))

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
        return RunData.model_validate(self._json("POST", self._p("/runs"), json=body))

    def log_batch(self, run_id: str, *, metrics: Sequence[MetricTuple] = (),
                  params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, str] | None = None) -> None:
        # Validated here as the service would, so a NaN fails with the same error rather
        # than as unencodable JSON.
        points = [{"key": k, "value": v, "step": s, "timestamp": t}
                  for k, v, s, t in clean_metrics(metrics)]
        body = {"metrics": points,
                "params": {k: str(v) for k, v in params.items()} if params else None,
                "tags": {k: str(v) for k, v in tags.items()} if tags else None}
        self.request("POST", self._p(f"/runs/{_id(run_id, 'run_id')}/log-batch"), json=body)

    def terminate_run(self, run_id: str, status: str = "FINISHED") -> RunData:
        return RunData.model_validate(self._json(
            "POST", self._p(f"/runs/{_id(run_id, 'run_id')}/terminate"),
            json={"status": status}))

    def get_run(self, run_id: str) -> RunData:
        return RunData.model_validate(self._json("GET", self._p(f"/runs/{_id(run_id, 'run_id')}")))

    def search_runs(self, *, experiments: Sequence[str] | None = None,
                    filter: str | None = None, order_by: Sequence[str] | None = None,
                    max_results: int = 1000, page_token: str | None = None) -> RunPage:
        body = {"experiments": list(experiments) if experiments else None, "filter": filter,
                "order_by": list(order_by) if order_by else None, "max_results": max_results,
                "page_token": page_token}
        return RunPage.model_validate(self._json("POST", self._p("/runs:search"), json=body))

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        check_key(key, "key")
        return TypeAdapter(list[MetricPoint]).validate_python(self._json(
            "GET", self._p(f"/runs/{_id(run_id, 'run_id')}/metrics/history"),
            params={"key": key}))

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
                    while chunk := f.read(_CHUNK):
                        spool.write(chunk)
            spool.seek(0)
            digest = hashlib.file_digest(spool, "sha256").hexdigest()
            spool.seek(0)
            response = self.request(
                "PUT", self._p(f"/runs/{_id(run_id, 'run_id')}/artifacts/{artifact_name}"),
                params={"kind": kind}, content=_iter_file(spool),
                headers={"Content-Type": "application/octet-stream",
                         "X-Content-SHA256": digest},
                timeout=httpx.Timeout(None, connect=5.0))
        return RunArtifact.model_validate(response.json())

    def download_artifact(self, run_id: str, name: str, dest: str | os.PathLike[str]) -> Path:
        from shipyard.artifacts import safe_extract

        check_name(name, "name")
        url = self._p(f"/runs/{_id(run_id, 'run_id')}/artifacts/{name}")
        try:
            with self._http.stream("GET", url) as response:
                if not response.is_success:
                    response.read()
                    raise_for_problem(response)
                kind = response.headers.get("x-artifact-kind", "file")
                expected = response.headers.get("x-content-sha256", "")
                target = resolve_dest(dest, name, kind)
                with writing(target), _spool_beside(target) as spool:
                    hasher = hashlib.sha256()
                    for chunk in response.iter_bytes(_CHUNK):
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
        except httpx.TransportError as exc:
            raise Unavailable(f"download of {name!r} failed: {exc.__class__.__name__}"
                              ) from None
        return target

    # -- lineage -----------------------------------------------------------------------------
    def get_artifact(self, artifact_id: str) -> ArtifactNode:
        return ArtifactNode.model_validate(self._json(
            "GET", self._p(f"/lineage/artifacts/{_id(artifact_id, 'artifact_id')}")))

    def lineage_graph(self, artifact_id: str, direction: str = "upstream",
                      depth: int = 1000) -> LineageGraph:
        check_graph_options(direction, depth)
        return LineageGraph.model_validate(self._json(
            "GET", self._p(f"/lineage/artifacts/{_id(artifact_id, 'artifact_id')}/graph"),
            params={"direction": direction, "depth": depth}))

    def list_artifacts(self, *, type: str | None = None, name: str | None = None,
                       context_id: str | None = None, limit: int = 100) -> list[ArtifactNode]:
        params = {k: v for k, v in {"type": type, "name": name, "context_id": context_id,
                                    "limit": limit}.items() if v is not None}
        return TypeAdapter(list[ArtifactNode]).validate_python(
            self._json("GET", self._p("/lineage/artifacts"), params=params))

    def get_execution(self, execution_id: str) -> ExecutionNode:
        return ExecutionNode.model_validate(self._json(
            "GET", self._p(f"/lineage/executions/{_id(execution_id, 'execution_id')}")))

    def list_executions(self, *, context_id: str | None = None, type: str | None = None,
                        limit: int = 100) -> list[ExecutionNode]:
        params = {k: v for k, v in {"context_id": context_id, "type": type,
                                    "limit": limit}.items() if v is not None}
        return TypeAdapter(list[ExecutionNode]).validate_python(
            self._json("GET", self._p("/lineage/executions"), params=params))

    def list_contexts(self, *, type: str | None = None, limit: int = 100) -> list[ContextNode]:
        params = {k: v for k, v in {"type": type, "limit": limit}.items() if v is not None}
        return TypeAdapter(list[ContextNode]).validate_python(
            self._json("GET", self._p("/lineage/contexts"), params=params))

    def audit(self, **filters: Any) -> list[dict[str, Any]]:
        params = {k: v for k, v in filters.items() if v is not None}
        result: list[dict[str, Any]] = self._json("GET", self._p("/audit"), params=params)
        return result

    def verify_audit(self) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", "/api/v1/audit/verify")
        return result


def _id(value: str, field: str) -> str:
    # Checked before sending: the server decodes %2F before routing, so a hostile id would
    # otherwise surface as a bare 404 instead of the error local mode gives.
    return check_id(value, field)


@contextmanager
def _spool_beside(target: Path) -> Iterator[Any]:
    """A temporary file in ``target``'s folder (so that it can be renamed over it), removed
    unless it was."""
    with tempfile.NamedTemporaryFile(prefix="shipyard-download-", dir=target.absolute().parent,
                                     delete=False) as spool:
        try:
            yield spool
        finally:
            if os.path.exists(spool.name):
                os.unlink(spool.name)


def _iter_file(f: Any) -> Any:
    while chunk := f.read(_CHUNK):
        yield chunk
