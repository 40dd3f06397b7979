"""Serving over the REST API (the remote ``ServingPort``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter

from shipyard.client.http import HttpClient, path_id
from shipyard.errors import InvalidArgument
from shipyard.serving.batch_job import BatchPredictionJob
from shipyard.serving.explanation import Explanation, explain_override
from shipyard.serving.instances import as_rows
from shipyard.serving.models import CanaryRollout, Endpoint, Prediction
from shipyard.validation import check_name

_ENDPOINTS = TypeAdapter(list[Endpoint])
_ROLLOUTS = TypeAdapter(list[CanaryRollout])
# Deploying waits for the replica to load the model, which may take a while.
DEPLOY_TIMEOUT = 300.0


class HttpServing:
    def __init__(self, client: HttpClient) -> None:
        self._c = client

    def _e(self, name: str, rest: str = "") -> str:
        return self._c.project_path(f"/endpoints/{quote(check_name(name, 'name'), safe='')}"
                                    f"{rest}")

    def create_endpoint(self, name: str, *, description: str = "",
                        labels: Mapping[str, str] | None = None) -> Endpoint:
        check_name(name, "name")
        body = {"name": name, "description": description,
                "labels": None if labels is None else dict(labels)}
        return Endpoint.model_validate(
            self._c.json("POST", self._c.project_path("/endpoints"), json=body))

    def get_endpoint(self, name: str) -> Endpoint:
        return Endpoint.model_validate(self._c.json("GET", self._e(name)))

    def list_endpoints(self) -> list[Endpoint]:
        return _ENDPOINTS.validate_python(
            self._c.json("GET", self._c.project_path("/endpoints")))

    def delete_endpoint(self, name: str) -> None:
        self._c.request("DELETE", self._e(name))

    def deploy(self, endpoint: str, model: str, *, version: int | None = None,
               alias: str | None = None, traffic_percentage: int | None = None,
               min_replicas: int = 1, max_replicas: int = 1, shadow: bool = False,
               follow_alias: bool = False, runtime: str = "local") -> Endpoint:
        body = {"model": model, "version": version, "alias": alias,
                "traffic_percentage": traffic_percentage, "min_replicas": min_replicas,
                "max_replicas": max_replicas, "shadow": shadow, "follow_alias": follow_alias,
                "runtime": runtime}
        return Endpoint.model_validate(self._c.json(
            "POST", self._e(endpoint, "/deployments"), json=body, timeout=DEPLOY_TIMEOUT))

    def set_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> Endpoint:
        if not isinstance(traffic, Mapping):
            raise InvalidArgument("traffic must map deployed model ids to percentages",
                                  field="traffic")
        return Endpoint.model_validate(self._c.json(
            "PUT", self._e(endpoint, "/traffic"), json={"traffic": dict(traffic)}))

    def shift_traffic(self, endpoint: str, deployed_model_id: str,
                      traffic_percentage: int) -> Endpoint:
        body = {"deployed_model_id": deployed_model_id,
                "traffic_percentage": traffic_percentage}
        return Endpoint.model_validate(self._c.json(
            "POST", self._e(endpoint, "/shift"), json=body))

    def start_rollout(self, endpoint: str, deployed_model_id: str,
                      settings: Mapping[str, Any]) -> CanaryRollout:
        if not isinstance(settings, Mapping):
            raise InvalidArgument("rollout settings must be a mapping", field="settings")
        for key, value in settings.items():  # JSON has no infinity or NaN to send
            if isinstance(value, float) and not math.isfinite(value):
                raise InvalidArgument(f"{key} must be a finite number, got {value!r}",
                                      field=str(key))
        body = {**settings, "deployed_model_id": deployed_model_id}
        return CanaryRollout.model_validate(self._c.json(
            "POST", self._e(endpoint, "/rollouts"), json=body))

    def list_rollouts(self, endpoint: str) -> list[CanaryRollout]:
        return _ROLLOUTS.validate_python(self._c.json("GET", self._e(endpoint, "/rollouts")))

    def get_rollout(self, endpoint: str, rollout_id: str) -> CanaryRollout:
        return CanaryRollout.model_validate(self._c.json(
            "GET", self._e(endpoint, f"/rollouts/{path_id(rollout_id, 'rollout_id')}")))

    def undeploy(self, endpoint: str, deployed_model_id: str,
                 traffic: Mapping[str, int] | None = None) -> Endpoint:
        body = {"deployed_model_id": deployed_model_id,
                "traffic": None if traffic is None else dict(traffic)}
        return Endpoint.model_validate(self._c.json(
            "POST", self._e(endpoint, "/undeploy"), json=body))

    def predict(self, endpoint: str, instances: Sequence[Any]) -> Prediction:
        answer = self._c.json("POST", self._e(endpoint, ":predict"),
                              json={"instances": as_rows(instances)})
        return Prediction(predictions=answer["predictions"],
                          deployed_model_id=answer["deployedModelId"], model=answer["model"],
                          model_version=int(answer["modelVersionId"]))


    def explain(self, endpoint: str, instances: Sequence[Any], *, method: str | None = None,
                path_count: int | None = None) -> Explanation:
        body: dict[str, Any] = {"instances": as_rows(instances)}
        override = explain_override(method, path_count)
        if override is not None:
            body["explanationSpecOverride"] = override
        answer = self._c.json("POST", self._e(endpoint, ":explain"), json=body)
        return Explanation(explanations=answer["explanations"],
                           predictions=answer.get("predictions") or [],
                           deployed_model_id=answer["deployedModelId"],
                           model=answer.get("model") or answer["deployedModelId"].rpartition(
                               ":")[0],
                           model_version=int(answer["modelVersionId"]))

    def record_batch_prediction(self, job: BatchPredictionJob) -> str | None:
        """Not recorded through a server yet: the REST API has no route for it (the job
        itself ran in the client, on the model the registry sent)."""
        return None
