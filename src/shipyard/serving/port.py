"""What the SDK needs from serving (local: ``shipyard.sdk.local.serving``; remote:
``shipyard.client.serving``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from shipyard.serving.batch_job import BatchPredictionJob
from shipyard.serving.explanation import Explanation
from shipyard.serving.models import CanaryRollout, Endpoint, Prediction


class ServingPort(Protocol):
    def create_endpoint(self, name: str, *, description: str = "",
                        labels: Mapping[str, str] | None = None) -> Endpoint: ...

    def get_endpoint(self, name: str) -> Endpoint: ...

    def list_endpoints(self) -> list[Endpoint]: ...

    def delete_endpoint(self, name: str) -> None: ...

    def deploy(self, endpoint: str, model: str, *, version: int | None = None,
               alias: str | None = None, traffic_percentage: int | None = None,
               min_replicas: int = 1, max_replicas: int = 1, shadow: bool = False,
               follow_alias: bool = False, runtime: str = "local") -> Endpoint: ...

    def set_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> Endpoint: ...

    def shift_traffic(self, endpoint: str, deployed_model_id: str,
                      traffic_percentage: int) -> Endpoint: ...

    def undeploy(self, endpoint: str, deployed_model_id: str,
                 traffic: Mapping[str, int] | None = None) -> Endpoint: ...

    def predict(self, endpoint: str, instances: Sequence[Any]) -> Prediction: ...

    def explain(self, endpoint: str, instances: Sequence[Any], *, method: str | None = None,
                path_count: int | None = None) -> Explanation: ...

    def record_batch_prediction(self, job: BatchPredictionJob) -> str | None:
        """Record a finished batch job in lineage; its execution id (None: not recorded)."""
        ...

    # Durable canary rollouts (serving.rollouts), judged by the workers. ``settings``: the
    # keyword arguments of ``rollouts.start_canary`` (percent, after_requests, ...).
    def start_rollout(self, endpoint: str, deployed_model_id: str,
                      settings: Mapping[str, Any]) -> CanaryRollout: ...

    def list_rollouts(self, endpoint: str) -> list[CanaryRollout]: ...

    def get_rollout(self, endpoint: str, rollout_id: str) -> CanaryRollout: ...
