"""The supervisor's data plane: which deployment answers a request (the split, or the
version a request pins), the replica that takes it, and the copies sent to shadows.

A request the split sends to a deployment with no ready replica yet (just deployed, or
moving to its alias's new version) is answered by the version it is moving from, else by
the deployment with the largest share that has one, so deploying and moving traffic lose
no request. A copy of each prediction request goes to the endpoint's shadow deployments,
not awaited; their answers go to the request log marked ``shadow``, under the caller's
request id.

The server's fast layer describes each request it hands over in ``CALL`` (a context
variable, so the protocol modules between them need not carry it): its request id, and,
once the request is routed, the deployment that was to answer it and the instances sent,
so a request that fails after routing is logged against that deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from shipyard.errors import (
    Conflict,
    FailedPrecondition,
    NotFound,
    ShipyardError,
    Unavailable,
    failure_of,
)
from shipyard.ids import new_id
from shipyard.serving import service
from shipyard.serving.instances import signature_names
from shipyard.serving.models import Deployment, Prediction
from shipyard.serving.pool import Replica, Route, pinned
from shipyard.serving.reconcile import Reconciler
from shipyard.serving.requestlog import Logged, RequestLog
from shipyard.serving.service import DeployedModel


@dataclass
class Call:
    """One data-plane request: its id, and once routed, the deployment that was to answer
    it and the instances it was sent (None before routing)."""

    request_id: str
    deployment: Deployment | None = None
    instances: list[Any] | None = None


CALL: ContextVar[Call | None] = ContextVar("shipyard_serving_call", default=None)

log = logging.getLogger(__name__)


class DataPlane(Reconciler):
    """The request side of ``Supervisor`` (which declares these fields with defaults)."""

    max_in_flight: int
    request_log: RequestLog | None
    draw: Callable[[], float]
    shadow_answers: int
    shadow_failures: int
    _shadow_tasks: set[asyncio.Task[None]]
    _wake: threading.Event

    def refresh_now(self) -> None:
        """Bring replicas and routes in line with a change this server just committed
        outside serving's own routes (an alias moved through REST, and the deployments
        that follow it with it), at once rather than at the watcher's next refresh. A
        failure (the database went away) is logged and left to that refresh: the change
        itself is committed."""
        try:
            self.refresh()
        except Exception:
            log.exception("serving: could not refresh after a change; the watcher will")

    def project_of(self, endpoint: str) -> str | None:
        """The project of the one served endpoint named ``endpoint`` (KServe and OIP paths
        name no project); None when none is served here. ``Conflict`` when several
        projects serve that name."""
        found = [project for (project, name) in self.routes if name == endpoint]
        if len(found) > 1:
            raise Conflict(f"{len(found)} projects have an endpoint named {endpoint!r}: use "
                           "the path that names the project, /v1/projects/{project}/"
                           f"locations/-/endpoints/{endpoint}:predict", field="name")
        return found[0] if found else None

    def signature_of(self, project: str, endpoint: str, version: str | None = None
                     ) -> dict[str, Any] | None:
        """The input signature of the endpoint's deployment ``version`` names (else of its
        first one), from its replica; None when unknown."""
        route = self.routes.get((project, endpoint))
        if route is None or not route.targets:
            return None
        target = next(iter(route.targets.values()))
        if version is not None:
            with contextlib.suppress(ShipyardError):
                target = pinned(route, endpoint, version)
        pool = self.pools.get(target.key) or self.retiring.get(target.key)
        return None if pool is None else pool.signature

    def targets_of(self, project: str, endpoint: str) -> list[DeployedModel]:
        """The deployments served for an endpoint (in-memory; empty when none)."""
        route = self.routes.get((project, endpoint))
        return [] if route is None else list(route.targets.values())

    async def predict(self, project: str, endpoint: str, instances: list[Any],
                      version: str | None = None, request_id: str | None = None
                      ) -> Prediction:
        """One prediction through the endpoint's split, or from the deployment ``version``
        names (its model version number or its deployed model id) when given.
        ``request_id`` goes to the request log with the shadows' answers."""
        prediction, _ = await self.ask(project, endpoint, {"instances": instances}, version,
                                       request_id)
        return prediction

    async def explain(self, project: str, endpoint: str, instances: list[Any],
                      method: str | None = None, path_count: int | None = None
                      ) -> tuple[Prediction, list[dict[str, Any]]]:
        """Predictions and attributions (``serving.explain``) from one deployment."""
        prediction, answer = await self.ask(project, endpoint, {
            "op": "explain", "instances": instances, "method": method,
            "path_count": path_count})
        explanations = answer.get("explanations")
        if not isinstance(explanations, list):
            raise Unavailable(f"the replica of {prediction.deployed_model_id} answered "
                              "nonsense", retry_after=1)
        return prediction, explanations

    def pick(self, project: str, endpoint: str, version: str | None = None
             ) -> DeployedModel:
        """The deployment that answers the next request: by the split (``draw``), or the
        one ``version`` names."""
        route = self.routes.get((project, endpoint))
        if route is None:
            raise NotFound(f"no endpoint named {endpoint!r} is served here", field="name")
        return (route.targets[route.router.choose(self.draw())] if version is None
                else pinned(route, endpoint, version))

    async def ask(self, project: str, endpoint: str, message: dict[str, Any],
                  version: str | None = None, request_id: str | None = None
                  ) -> tuple[Prediction, dict[str, Any]]:
        """Send ``message`` to a replica of the deployment the split (or ``version``)
        picks, and a copy to the endpoint's shadows."""
        route = self.routes.get((project, endpoint))
        if route is None:
            # Deployed elsewhere since the last refresh, or not deployed at all.
            await asyncio.to_thread(self.refresh)
            route = self.routes.get((project, endpoint))
            if route is None:
                ep = await asyncio.to_thread(service.get_endpoint, self.store, project,
                                             endpoint)  # NotFound if there is none
                raise FailedPrecondition(f"endpoint {ep.name!r} has no deployed model: "
                                         "deploy one first", field="name")
        target = self.pick(project, endpoint, version)
        call = CALL.get()
        if call is not None:
            request_id = request_id or call.request_id
            call.deployment, call.instances = target.deployment, message.get("instances")
        replica = self._replica_for(route, target, fall_back=version is None)
        if replica is None:
            pool = self.pools.get(target.key)
            found = pool.replicas[0] if pool is not None and pool.replicas else None
            state = "gone" if found is None else found.state
            why = f": {found.error}" if found is not None and found.error else ""
            raise Unavailable(f"the replica of {target.deployment.id} is {state}{why}; retry "
                              "shortly", retry_after=1)
        deployment = replica.target.deployment  # the version that answers
        if call is not None:
            call.deployment = deployment
        if route.shadows and message.get("op") in (None, "predict"):
            self._mirror(route, message, request_id)
        try:
            answer = await replica.call(message, self.request_timeout, self.max_in_flight)
        except Unavailable as exc:
            if not exc.details.get("overloaded"):
                self._wake.set()  # it may have died: let the watcher look now
            raise
        return Prediction(predictions=answer["predictions"], deployed_model_id=deployment.id,
                          model=deployment.model, model_version=deployment.version), answer

    def _replica_for(self, route: Route, target: DeployedModel, fall_back: bool
                     ) -> Replica | None:
        """A ready replica of ``target``; else of the version it is moving from; else
        (``fall_back``, a request the split routed) of the deployment with the largest
        share that has one, so a deployment still starting loses no request."""
        pool = self.pools.get(target.key)
        if pool is None:  # a route read just before a refresh moved it to the retiring
            pool = next((p for p in list(self.retiring.values()) if p.target.key == target.key),
                        None)
        replica = None if pool is None else pool.choose()
        if replica is None and target.key in self.retiring:
            replica = self.retiring[target.key].choose()
        if replica is None and fall_back:
            for other in sorted(route.targets.values(),
                                key=lambda t: -t.deployment.traffic_percentage):
                other_pool = self.pools.get(other.key)
                if other is not target and other_pool is not None:
                    replica = other_pool.choose()
                    if replica is not None:
                        break
        return replica

    # -- shadows -----------------------------------------------------------------------------

    def _mirror(self, route: Route, message: dict[str, Any], request_id: str | None) -> None:
        """Send a copy of ``message`` to each shadow with a ready replica that has room;
        not awaited, so a shadow adds no latency and its failures reach no caller."""
        for shadow in route.shadows:
            pool = self.pools.get(shadow.key)
            replica = None if pool is None else pool.choose()
            if replica is None or replica.in_flight >= self.max_in_flight:
                self.shadow_failures += 1
                continue
            task = asyncio.get_running_loop().create_task(
                self._shadow(replica, pool.signature if pool else None, message,
                             request_id or new_id()))
            self._shadow_tasks.add(task)
            task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow(self, replica: Replica, signature: dict[str, Any] | None,
                      message: dict[str, Any], request_id: str) -> None:
        started = time.perf_counter()
        status, error, predictions = 200, None, []
        try:
            answer = await replica.call(message, self.request_timeout, self.max_in_flight)
        except Exception as exc:  # a shadow's failure is its own: counted, logged, not raised
            self.shadow_failures += 1
            status, error = failure_of(exc)
        else:
            self.shadow_answers += 1
            predictions = answer["predictions"]
        logged = self.request_log
        if logged is None or not logged.sampled():
            return
        target = replica.target
        logged.record(Logged(
            request_id=request_id, time=time.time(), project=target.project,
            endpoint=target.endpoint, deployed_model_id=target.deployment.id,
            model_version=target.deployment.version, protocol="shadow",
            latency_ms=(time.perf_counter() - started) * 1000, rows=message["instances"],
            predictions=predictions, names=signature_names(signature),
            shadow=True, status=status, error=error))
