"""Serving from the SDK (re-exported as ``shipyard.*``): endpoints, deployments, traffic
splits and predictions, in local and remote mode alike."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from shipyard.errors import InvalidArgument
from shipyard.sdk import session
from shipyard.serving import models
from shipyard.serving.explanation import Explanation
from shipyard.serving.models import CanaryRollout, Deployment, Prediction, Rollout
from shipyard.serving.port import ServingPort

__all__ = ["Endpoint", "create_endpoint", "delete_endpoint", "get_endpoint", "list_endpoints"]


def _serving() -> ServingPort:
    return session.current().serving


class Endpoint:
    """An endpoint: what it serves (``deployments``, ``traffic``) and its verbs. Its state
    is the one the last call returned (``refresh()`` reads it again)."""

    def __init__(self, state: models.Endpoint) -> None:
        self._state = state

    @property
    def id(self) -> str:
        return self._state.id

    @property
    def name(self) -> str:
        return self._state.name

    @property
    def project(self) -> str:
        return self._state.project

    @property
    def description(self) -> str:
        return self._state.description

    @property
    def labels(self) -> dict[str, str]:
        return self._state.labels

    @property
    def deployments(self) -> list[Deployment]:
        return self._state.deployments

    @property
    def traffic(self) -> dict[str, int]:
        """``{deployed model id: percentage}``, adding up to 100 once a model is deployed
        (shadows are not in it: see ``shadows``)."""
        return self._state.traffic

    @property
    def shadows(self) -> list[str]:
        """The shadow deployments: each gets a copy of the traffic."""
        return self._state.shadows

    @property
    def created_at(self) -> datetime:
        return self._state.created_at

    @property
    def updated_at(self) -> datetime:
        return self._state.updated_at

    @property
    def state(self) -> models.Endpoint:
        """The endpoint as a value (what ``--output json`` prints)."""
        return self._state

    def refresh(self) -> Endpoint:
        self._state = _serving().get_endpoint(self.name)
        return self

    def deploy(self, model: str, *, version: int | None = None, alias: str | None = None,
               traffic_percentage: int | None = None, min_replicas: int = 1,
               max_replicas: int = 1, shadow: bool = False,
               follow_alias: bool = False, runtime: str = "local") -> Deployment:
        """Deploy ``model`` (by ``version`` or ``alias``; the latest with neither) with
        ``traffic_percentage`` of the requests (the others share the rest as before; the
        first model takes 100). Returns the new deployment (``.id`` is ``model:version``).
        Through a server, returns once its replicas have loaded the model; the server
        runs between ``min_replicas`` and ``max_replicas`` of them, by load.

        ``shadow=True``: the version gets a copy of every request instead of a share; its
        answers go to the request log marked shadow and never to a caller, and its failures
        reach no caller. ``follow_alias=True`` (with ``alias``): when the registry moves
        the alias, the deployment moves to the new version, keeping its share.

        ``runtime="ray"``: the server runs the version as a Ray Serve application on the
        Ray cluster ``RAY_ADDRESS`` names (between ``min_replicas`` and ``max_replicas``
        Ray Serve replicas), behind the same routes, split and request log; refused when
        no cluster answers there. Local mode predicts in this process whatever the
        runtime."""
        before = {d.id for d in self.deployments}
        self._state = _serving().deploy(
            self.name, model, version=version, alias=alias,
            traffic_percentage=traffic_percentage, min_replicas=min_replicas,
            max_replicas=max_replicas, shadow=shadow, follow_alias=follow_alias,
            runtime=runtime)
        return next(d for d in self.deployments if d.id not in before)

    def set_traffic(self, traffic: Mapping[str, int]) -> Endpoint:
        """Set the whole split, ``{"model:3": 90, "model:4": 10}``: percentages adding up to
        100 over deployed models (those left out get 0)."""
        self._state = _serving().set_traffic(self.name, traffic)
        return self

    def shift_traffic(self, deployed_model_id: str, traffic_percentage: int) -> Endpoint:
        """Give one deployed model ``traffic_percentage`` of the requests; the others share
        the rest in their current proportions."""
        self._state = _serving().shift_traffic(self.name, deployed_model_id,
                                               traffic_percentage)
        return self

    def canary(self, deployed_model_id: str, *, steps: Sequence[int] = (10, 50, 100),
               interval: float = 60.0, check: Callable[[Endpoint], bool] | None = None,
               sleep: Callable[[float], None] = time.sleep) -> Rollout:
        """Move traffic to ``deployed_model_id`` in ``steps`` (its percentages, rising),
        waiting ``interval`` seconds after each and then asking ``check(endpoint)``. When
        the check says False or raises, the split goes back to what it was before the
        canary (a rollback) and the result says why; otherwise the canary ends with the
        last step's share (100: the others keep 0, still deployed for a quick rollback)."""
        clean = list(steps)
        if not clean or any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= 100
                            for s in clean) or clean != sorted(set(clean)):
            raise InvalidArgument(f"steps must be rising whole percentages from 0 to 100, "
                                  f"got {steps!r}", field="steps")
        if isinstance(interval, bool) or not isinstance(interval, int | float) \
                or not 0 <= interval <= 86_400:
            raise InvalidArgument(f"interval must be 0 to 86400 seconds, got {interval!r}",
                                  field="interval")
        before = dict(self.refresh().traffic)
        if deployed_model_id not in before:
            raise InvalidArgument(f"{deployed_model_id!r} does not answer on {self.name!r}: "
                                  f"its models are {sorted(before)}", field="deployed_model_id")
        taken: list[int] = []
        for step in clean:
            self.shift_traffic(deployed_model_id, step)
            taken.append(step)
            sleep(interval)
            try:
                healthy, reason = bool(check is None or check(self)), "the check said no"
            except Exception as exc:  # the check's failure is the canary's failure
                healthy, reason = False, f"the check failed: {type(exc).__name__}: {exc}"
            if not healthy:
                self.set_traffic(before)
                return Rollout(deployed_model_id=deployed_model_id, steps=taken,
                               rolled_back=True, reason=f"at {step}%: {reason}",
                               traffic=self.traffic)
        return Rollout(deployed_model_id=deployed_model_id, steps=taken, rolled_back=False,
                       traffic=self.traffic)

    def start_rollout(self, deployed_model_id: str, *, percent: int = models.DEFAULT_PERCENT,
                      after_requests: int = models.DEFAULT_AFTER_REQUESTS,
                      max_latency_ratio: float = models.DEFAULT_LATENCY_RATIO,
                      prediction_tolerance: float | None = None,
                      promote_alias: str | None = models.DEFAULT_ALIAS,
                      error_rate_alpha: float = models.DEFAULT_ERROR_ALPHA,
                      max_error_rate_increase: float = models.DEFAULT_ERROR_MARGIN
                      ) -> CanaryRollout:
        """A durable canary, judged by the workers rather than this process (unlike
        ``canary``): ``deployed_model_id`` (deployed already, usually at 0%) gets ``percent``
        of the requests; after ``after_requests`` of them the request log decides. It is
        promoted to 100% (and ``promote_alias`` moved to its version) when its p95 latency is
        within ``max_latency_ratio`` of the champions', its error rate is not worse (a
        one-sided two-proportion test at ``error_rate_alpha`` with the margin
        ``max_error_rate_increase``) and, given ``prediction_tolerance``, its mean prediction
        is that close to theirs; otherwise it is rolled back to the split before it.
        ``rollouts()`` and ``get_rollout(id)`` show the verdict and its reasons."""
        settings = {"percent": percent, "after_requests": after_requests,
                    "max_latency_ratio": max_latency_ratio,
                    "prediction_tolerance": prediction_tolerance,
                    "promote_alias": promote_alias, "error_rate_alpha": error_rate_alpha,
                    "max_error_rate_increase": max_error_rate_increase}
        rollout = _serving().start_rollout(self.name, deployed_model_id, settings)
        self.refresh()
        return rollout

    def rollouts(self) -> list[CanaryRollout]:
        """This endpoint's canary rollouts, newest first: ``state`` (running, promoted,
        rolled_back) and ``decision`` (the verdict, its reasons and figures)."""
        return _serving().list_rollouts(self.name)

    def get_rollout(self, rollout_id: str) -> CanaryRollout:
        return _serving().get_rollout(self.name, rollout_id)

    def undeploy(self, deployed_model_id: str, *, traffic: Mapping[str, int] | None = None
                 ) -> Endpoint:
        """Remove a deployed model; its share goes to the others in proportion, or as
        ``traffic`` says."""
        self._state = _serving().undeploy(self.name, deployed_model_id, traffic)
        return self

    def predict(self, instances: Sequence[Any]) -> Prediction:
        """Predictions for ``instances``: dicts keyed by feature, rows in signature order,
        or a DataFrame. ``.predictions``, ``.deployed_model_id``, ``.model_version``."""
        return _serving().predict(self.name, instances)

    def explain(self, instances: Sequence[Any], *, method: str | None = None,
                path_count: int | None = None) -> Explanation:
        """Feature attributions for ``instances`` (as ``predict`` takes them), in Vertex's
        shape: ``.explanations[i]["attributions"][0]["featureAttributions"]``, adding up
        with ``baselineOutputValue`` to ``instanceOutputValue``; ``.predictions`` too.
        ``method``: ``"auto"`` (TreeSHAP for tree models on numeric features, else
        sampled Shapley), ``"tree_shap"`` or ``"sampled_shapley"`` with ``path_count``
        (1 to 50) feature orders; by default, the deployment's settings."""
        return _serving().explain(self.name, instances, method=method, path_count=path_count)

    def monitoring_stats(self, monitor: str | None = None) -> dict[str, Any]:
        """The newest run of this endpoint's monitors, as seed 002 reads it:
        ``["feature_metrics"][feature]["drift_score"]`` (see ``sy.monitoring_stats``)."""
        return session.current().monitoring.monitoring_stats(self.name, monitor)

    def delete(self) -> None:
        _serving().delete_endpoint(self.name)

    def __repr__(self) -> str:
        return f"Endpoint({self.name!r}, traffic={self.traffic})"


def create_endpoint(name: str, *, description: str = "",
                    labels: Mapping[str, str] | None = None) -> Endpoint:
    """A new endpoint serving nothing yet: ``deploy`` a model version to it."""
    return Endpoint(_serving().create_endpoint(name, description=description, labels=labels))


def get_endpoint(name: str) -> Endpoint:
    return Endpoint(_serving().get_endpoint(name))


def list_endpoints() -> list[Endpoint]:
    return [Endpoint(state) for state in _serving().list_endpoints()]


def delete_endpoint(name: str) -> None:
    """Delete an endpoint that serves nothing (undeploy its models first)."""
    _serving().delete_endpoint(name)
