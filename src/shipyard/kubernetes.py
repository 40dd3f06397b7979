"""Where ``from kfp import kubernetes`` lands after the import swap: Kubeflow's
Kubernetes-specific task settings (``kubernetes.mount_pvc``, ``use_secret_as_env``,
``add_node_selector``, ...) configure pods on a cluster and have no meaning for Shipyard's
steps, so every one of them is refused, by name, where the pipeline is defined, rather than
silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shipyard.errors import InvalidArgument


def __getattr__(name: str) -> Callable[..., Any]:
    if name.startswith("__"):
        raise AttributeError(name)

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise InvalidArgument(
            f"kubernetes.{name}: Kubernetes-specific settings (kfp-kubernetes) configure pods "
            "on a Kubeflow cluster and have no meaning for Shipyard's steps; remove the call "
            "(steps read files, secrets and environment variables of the machine that runs "
            "them; set_env_variable sets a step's environment)",
            field=f"kubernetes.{name}",
        )

    refused.__name__ = name
    return refused
