"""Serving in local mode (the local ``ServingPort``): the control plane on the store, and
predictions in this process.

No replica processes here: ``predict`` loads the deployed versions into this process
(once each, through the shared model cache) and picks one per request with the
endpoint's traffic split, as the server's router does. Predictions are logged to the same
request log as the server's (``serving_log_rate`` of them), so monitors see local traffic
too (a request that fails after routing with its status and error, as the server logs
it); with no writer thread to outlive, each call's rows are written before it returns.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.errors import failure_of
from shipyard.ids import new_id
from shipyard.registry import loading
from shipyard.serving import rollouts, service
from shipyard.serving.batch_job import BatchPredictionJob
from shipyard.serving.explanation import Explanation
from shipyard.serving.instances import as_rows, predict, signature_names, to_records
from shipyard.serving.models import CanaryRollout, Deployment, Endpoint, Prediction
from shipyard.serving.requestlog import Logged, RequestLog
from shipyard.serving.traffic import Router

if TYPE_CHECKING:
    from shipyard.registry.loaded import LoadedModel
    from shipyard.sdk.local import Scope
    from shipyard.serving.explain import Explainer


class LocalServing:
    def __init__(self, scope: Scope) -> None:
        self._s = scope
        self._store = scope.store
        self._loaded: dict[str, LoadedModel] = {}  # by model version id
        self._lock = threading.Lock()
        self._explainers: dict[tuple[str, str, int], Explainer] = {}
        self._request_log: RequestLog | None = None

    def create_endpoint(self, name: str, *, description: str = "",
                        labels: Mapping[str, str] | None = None) -> Endpoint:
        return service.create_endpoint(self._store, self._s.ctx(), name,
                                       description=description, labels=labels)

    def get_endpoint(self, name: str) -> Endpoint:
        return service.get_endpoint(self._store, self._s.project, name)

    def list_endpoints(self) -> list[Endpoint]:
        return service.list_endpoints(self._store, self._s.project)

    def delete_endpoint(self, name: str) -> None:
        service.delete_endpoint(self._store, self._s.ctx(), name)

    def deploy(self, endpoint: str, model: str, *, version: int | None = None,
               alias: str | None = None, traffic_percentage: int | None = None,
               min_replicas: int = 1, max_replicas: int = 1, shadow: bool = False,
               follow_alias: bool = False, runtime: str = "local") -> Endpoint:
        return service.deploy(self._store, self._s.ctx(), endpoint, model, version=version,
                              alias=alias, traffic_percentage=traffic_percentage,
                              min_replicas=min_replicas, max_replicas=max_replicas,
                              shadow=shadow, follow_alias=follow_alias, runtime=runtime)

    def set_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> Endpoint:
        return service.set_traffic(self._store, self._s.ctx(), endpoint, traffic)

    def shift_traffic(self, endpoint: str, deployed_model_id: str,
                      traffic_percentage: int) -> Endpoint:
        return service.shift_traffic(self._store, self._s.ctx(), endpoint, deployed_model_id,
                                     traffic_percentage)

    def undeploy(self, endpoint: str, deployed_model_id: str,
                 traffic: Mapping[str, int] | None = None) -> Endpoint:
        return service.undeploy(self._store, self._s.ctx(), endpoint, deployed_model_id,
                                traffic)

    def start_rollout(self, endpoint: str, deployed_model_id: str,
                      settings: Mapping[str, Any]) -> CanaryRollout:
        return rollouts.start_rollout(self._store, self._s.ctx(), endpoint, deployed_model_id,
                                      settings)

    def list_rollouts(self, endpoint: str) -> list[CanaryRollout]:
        service.get_endpoint(self._store, self._s.project, endpoint)  # NotFound, named
        return rollouts.list_rollouts(self._store, self._s.project, endpoint)

    def get_rollout(self, endpoint: str, rollout_id: str) -> CanaryRollout:
        return rollouts.endpoint_rollout(self._store, self._s.project, endpoint, rollout_id)

    def predict(self, endpoint: str, instances: Sequence[Any]) -> Prediction:
        started = time.perf_counter()
        chosen, model = self._choose(endpoint)
        names = signature_names(model.version.signature)
        rows: Sequence[Any] = instances
        try:
            rows = as_rows(instances)
            predictions = predict(model, rows, names)
        except Exception as exc:  # routed, then failed: logged as the server logs it
            status, error = failure_of(exc)
            self._record(endpoint, chosen, started, rows, [], names, status, error)
            raise
        self._record(endpoint, chosen, started, rows, predictions, names, 200, None)
        return Prediction(predictions=predictions, deployed_model_id=chosen.id,
                          model=chosen.model, model_version=chosen.version)

    def _record(self, endpoint: str, chosen: Deployment, started: float,
                rows: Sequence[Any], predictions: list[Any], names: Sequence[str] | None,
                status: int, error: str | None) -> None:
        """One request's rows in the request log, when it is sampled."""
        log = self._log()
        if log is None or not isinstance(rows, list | tuple) or not rows or \
                not log.sampled():
            return
        log.write([Logged(
            request_id=new_id(), time=time.time(), project=self._s.project,
            endpoint=endpoint, deployed_model_id=chosen.id, model_version=chosen.version,
            protocol="sdk", latency_ms=(time.perf_counter() - started) * 1000,
            rows=list(rows), predictions=predictions, names=names, status=status,
            error=error)])

    def _log(self) -> RequestLog | None:
        if self._request_log is None:
            self._request_log = RequestLog.for_artifacts(self._s.settings.artifacts,
                                                         self._s.settings.extra)
        return self._request_log

    def explain(self, endpoint: str, instances: Sequence[Any], *, method: str | None = None,
                path_count: int | None = None) -> Explanation:
        """Attributions computed in this process (``serving.explain``), with the
        predictions of the same deployed version."""
        import pandas as pd

        from shipyard.serving.explain import Explainer

        chosen, model = self._choose(endpoint)
        names = signature_names(model.version.signature)
        records = to_records(as_rows(instances), names)
        predictions = predict(model, records, names)
        settings = (chosen.model_version_id, method or "auto",
                    10 if path_count is None else path_count)
        with self._lock:
            explainer = self._explainers.get(settings)
        if explainer is None:  # kept: the baseline and TreeSHAP's tables are built once
            explainer = Explainer(model, method=settings[1], path_count=settings[2])
            with self._lock:
                self._explainers[settings] = explainer
        attributions = explainer.explain(pd.DataFrame.from_records(records))
        return Explanation(explanations=[{"attributions": [a]} for a in attributions],
                           predictions=predictions, deployed_model_id=chosen.id,
                           model=chosen.model, model_version=chosen.version)

    def record_batch_prediction(self, job: BatchPredictionJob) -> str | None:
        from shipyard.serving import batch_lineage

        return batch_lineage.record(self._store, self._s.ctx(), job.model_dump())

    def _choose(self, endpoint: str) -> tuple[Deployment, LoadedModel]:
        """The deployment that answers this request (by the split) and its model."""
        from shipyard.errors import FailedPrecondition

        current = self.get_endpoint(endpoint)
        if not current.deployments:
            raise FailedPrecondition(f"endpoint {endpoint!r} has no deployed model: deploy "
                                     "one first", field="name")
        chosen_id = Router(current.traffic).choose(random.random())
        chosen = next(d for d in current.deployments if d.id == chosen_id)
        return chosen, self._model(chosen.model, chosen.version, chosen.model_version_id)

    def _model(self, name: str, version: int, version_id: str) -> LoadedModel:
        with self._lock:
            model = self._loaded.get(version_id)
            if model is None:
                model = loading.load_model(self._store, self._s.artifacts, self._s.project,
                                           f"{name}:{version}", self._s.settings)
                self._loaded[version_id] = model
            return model
