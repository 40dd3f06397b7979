"""Where a deployment's replicas run: ``runtime="local"`` (replica processes of the server,
the default) or ``runtime="ray"`` (a Ray Serve application on an existing Ray cluster,
``RAY_ADDRESS``; ``ray_bridge`` and ``ray_model``).

The control plane refuses ``runtime="ray"`` when no cluster answers (``check_runtime``),
so a deployment is only recorded where it can be served. This module only looks at the
head's port: the process that runs the control plane never imports or connects Ray (a Ray
driver whose head goes away ends its whole process; ``pipelines._ray``).
"""

from __future__ import annotations

import importlib.util

from shipyard.errors import FailedPrecondition, InvalidArgument, MissingDependency

RUNTIMES = ("local", "ray")


def check_runtime(runtime: object) -> str:
    """``runtime`` if it is one of ``RUNTIMES`` (and, for ``"ray"``, a cluster answers at
    ``RAY_ADDRESS``); ``InvalidArgument``, ``MissingDependency`` or ``FailedPrecondition``
    naming the field otherwise."""
    if not isinstance(runtime, str) or runtime not in RUNTIMES:
        raise InvalidArgument(f"runtime must be one of {list(RUNTIMES)}, got {runtime!r}",
                              field="runtime")
    if runtime == "ray":
        require_cluster()
    return runtime


def require_cluster() -> str:
    """The address of the Ray cluster Ray deployments go to (``RAY_ADDRESS``), checked to
    accept connections."""
    from shipyard.pipelines._ray import ray_address, reachable

    if importlib.util.find_spec("ray") is None:  # found, not imported
        raise MissingDependency("ray", "ray")
    address = ray_address()
    if not address or address in ("auto", "local"):
        raise FailedPrecondition(
            "runtime='ray' serves on an existing Ray cluster: set RAY_ADDRESS to its head "
            "(e.g. RAY_ADDRESS=head.internal:6379) where the server runs", field="runtime")
    if not reachable(address):
        raise FailedPrecondition(
            f"runtime='ray': no Ray cluster answers at RAY_ADDRESS={address}: start the "
            "head (ray start --head) or fix RAY_ADDRESS", field="runtime")
    return address
