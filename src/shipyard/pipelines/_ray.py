"""The Ray launcher: each step a Ray task (``backend="ray"``, ``pip install 'shipyard[ray]'``).

The task runs ``_executor.run_captured`` in a Ray worker, a process Shipyard does not own:
the step's environment and output capture last only for the step. The request and the
result cross to the worker as JSON, as they do to a step process. On a cluster, the step's
folder and the artifact store's location must be reachable from every node (a shared
filesystem, or ``s3://``/``gs://`` for the artifacts).
"""

from __future__ import annotations

import contextlib
from typing import Any

from shipyard.errors import MissingDependency
from shipyard.pipelines import _executor
from shipyard.pipelines._messages import StepRequest, StepResult


def require_ray() -> Any:
    """The ``ray`` module, or ``MissingDependency`` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise MissingDependency("ray", "ray") from None
    return ray


class _RayHandle:
    def __init__(self, ray: Any, ref: Any) -> None:
        self._ray = ray
        self._ref = ref

    @property
    def sentinel(self) -> int | None:
        return None

    def done(self) -> bool:
        ready, _ = self._ray.wait([self._ref], timeout=0)
        return bool(ready)

    def result(self) -> StepResult:
        try:
            reported = self._ray.get(self._ref)
        except Exception as exc:  # a lost worker or a cancelled task
            return StepResult.failed(f"the Ray task failed: {exc}")
        try:
            return StepResult.from_json(reported)
        except ValueError as exc:
            return StepResult.failed(f"the Ray task returned a malformed result: {exc}")

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self._ray.cancel(self._ref, force=True)


class RayLauncher:
    """Starts each step as a Ray task asking for the step's ``cpus`` (one by default), on
    the cluster ``RAY_ADDRESS`` names or, without it, a local one Ray starts."""

    blocking = False

    def __init__(self) -> None:
        self._ray = require_ray()

    def start(self, request: StepRequest) -> _RayHandle:
        ray = self._ray
        if not ray.is_initialized():
            ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
        remote = ray.remote(num_cpus=request.cpus or 1)(_executor.run_captured)
        return _RayHandle(ray, remote.remote(request.to_json()))

    def close(self) -> None:
        return None  # Ray stays up for the runs that follow, as it would for any caller
