"""A Ray deployment's replica process: the bridge from the server to a Ray Serve application
(``python -m shipyard.serving.ray_bridge``, ``runtime="ray"``).

The server's supervisor starts it where it would start a local replica (``autoscaler``,
``RUNNERS`` in ``pool``), and talks to it exactly as to one: the same JSON line on stdin,
``ready`` (or one JSON line with the error) on stdout, then ``wire`` frames on a Unix
socket. So the routes, the traffic split, shadows, pinned versions, the request log and the
metrics stay in the server, unchanged, and only the model runs on the cluster.

The bridge is Ray's driver, in a process of its own as for pipelines and batch prediction
(``pipelines._ray``): a driver whose head goes away is ended by Ray, which must not end
the server. It connects to the cluster ``RAY_ADDRESS`` names, deploys the version as one
Ray Serve application (``ray_model.RayModel``, between the deployment's ``min_replicas``
and ``max_replicas`` Ray Serve replicas, autoscaled by Ray Serve on requests in flight),
and forwards each frame to it through a ``DeploymentHandle``. The model's files travel in
the application's arguments (a tar of the folder from the server's model cache), so Ray
Serve can start a replica on any node, again after a crash, without the server.

Its application is named after the deployment and this server process
(``shipyard-<deployment row>-<version>-<server>``), so servers sharing a cluster do not
replace each other's. It is deleted when the bridge's stdin ends: the deployment was
undeployed (the supervisor closes the pipe once its requests are answered), the server
stopped, or died. When the head stops answering, the bridge exits (a Ray call that fails
closes the socket, so requests get 503 at once) and the supervisor starts a new one, with
its backoff, which deploys again once the head is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from shipyard.errors import InvalidArgument
from shipyard.ids import new_id
from shipyard.serving.requestlog import setting

if TYPE_CHECKING:
    from shipyard.config import Settings
    from shipyard.serving.service import DeployedModel

log = logging.getLogger(__name__)

# This server process, in its applications' names (see the module).
SERVER = new_id()[-8:]
CPUS = "1"  # per Ray Serve replica (settings.extra serving_ray_cpus)
MAX_ONGOING = 64  # requests a Ray Serve replica takes at once (its batches' bound)


def app_name(target: DeployedModel) -> str:
    """The Ray Serve application of ``target`` run by this server process."""
    return f"shipyard-{target.row or target.key}-{target.deployment.version}-{SERVER}"


def config(target: DeployedModel, settings: Settings, target_in_flight: float
           ) -> dict[str, Any]:
    """What a bridge needs besides a replica's config: the cluster, its application's name
    and the Ray Serve replicas' bounds, resources and the requests in flight each aims at
    when Ray Serve scales them (the supervisor's own target)."""
    from shipyard.pipelines._ray import ray_address

    deployment = target.deployment
    given = setting(settings.extra, "serving_ray_cpus", CPUS)
    try:
        cpus = float(given)
    except ValueError:
        cpus = 0.0
    if not 0 < cpus <= 1024:
        raise InvalidArgument(f"serving_ray_cpus must be a number of CPUs above 0, got "
                              f"{given[:32]!r}", field="serving_ray_cpus")
    return {"address": ray_address(), "app": app_name(target),
            "min_replicas": deployment.min_replicas, "max_replicas": deployment.max_replicas,
            "cpus": cpus, "target_in_flight": target_in_flight}


# --- the bridge process --------------------------------------------------------------------


def _model_folder(config: dict[str, Any]) -> Path:
    """The version's folder in this machine's model cache (fetched from the artifact store
    and checked against its tree digest, as a replica's)."""
    from shipyard.artifacts import open_artifact_store
    from shipyard.registry.cache import cache_root, cached_tree
    from shipyard.registry.models import ModelVersion

    version = ModelVersion.model_validate(config["version"])
    artifacts = open_artifact_store(config["artifacts"], cached=False)

    def fetch(version: ModelVersion, target: Path) -> None:
        artifacts.get_tree(version.tree_digest, target, durable=False)

    path, _ = cached_tree(version, cache_root(Path(config["home"])), fetch)
    return path


def run_app(config: dict[str, Any]) -> None:
    """Connect to the cluster and run the version's application (returns once its
    replicas are up)."""
    from shipyard.pipelines._ray import _pack, reachable, require_ray
    from shipyard.registry.flavors.pickle import trust_list

    address = config["address"]
    if not reachable(address):
        raise RuntimeError(f"no Ray cluster answers at RAY_ADDRESS={address}")
    folder = _model_folder(config)
    ray = require_ray()
    ray.init(address=address, ignore_reinit_error=True, include_dashboard=False,
             log_to_driver=False)
    from ray import serve
    from shipyard.serving.ray_model import RayModel

    # No HTTP proxy of Ray's: requests come through this bridge's handle only.
    serve.start(proxy_location="Disabled")
    low, high = int(config["min_replicas"]), int(config["max_replicas"])
    scaling: dict[str, Any] = (
        {"num_replicas": low} if low == high else
        {"autoscaling_config": {"min_replicas": low, "max_replicas": high,
                                "target_ongoing_requests": config["target_in_flight"]}})
    options = {"trusted_types": list(config.get("trusted_types", ())),
               "allow_pickle": True,  # only digests the server's own settings trust
               "trusted_digests": sorted(trust_list(tuple(config.get("trusted_digests", ())),
                                                    None))}
    deployment = serve.deployment(
        name="model", max_ongoing_requests=MAX_ONGOING,
        ray_actor_options={"num_cpus": float(config["cpus"])}, **scaling)(RayModel)
    serve.run(deployment.bind(_pack(str(folder)), config["version"], options),
              name=config["app"], route_prefix=None)


async def _listen(app: str, socket: str, tell: IO[str]) -> None:
    """Answer ``wire`` frames on ``socket`` through the application's handle."""
    from ray import serve
    from shipyard.serving import wire

    handle = serve.get_app_handle(app)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await wire.read_frame(reader)
                try:
                    reply = await handle.remote(request)
                except Exception as exc:  # a lost replica or node, or the head: the
                    # server sees the socket close and answers 503
                    log.warning("ray serve call failed: %s", exc)
                    return
                writer.write(wire.encode(reply))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    listener = await asyncio.start_unix_server(answer, path=socket)
    os.chmod(socket, 0o600)
    tell.write("ready\n")
    tell.flush()
    async with listener:
        await listener.serve_forever()


def _end_with_parent(app: str) -> None:
    """At the end of stdin (undeployed, or the server is gone), even while the application
    is still being deployed: delete it, and exit."""
    sys.stdin.buffer.read()
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        try:
            from ray import serve

            serve.delete(app)
        except Exception as exc:  # the head is gone too: nothing is left to delete
            log.warning("could not delete Ray Serve application %s: %s", app, exc)
    os._exit(0)


def _watch_head(address: str) -> None:
    """End the bridge as soon as its head stops accepting connections (a new bridge
    deploys again once it is back)."""
    from shipyard.pipelines._ray import reachable

    while True:
        time.sleep(0.5)
        if not reachable(address):
            os._exit(75)


def main() -> None:
    from shipyard.pipelines._ray import RECONNECT_SECONDS
    from shipyard.serving.replica import FAILED_TO_LOAD

    # A lost head ends Ray's driver after this long (Ray's default is a minute).
    os.environ["RAY_gcs_rpc_server_reconnect_timeout_s"] = str(RECONNECT_SECONDS)
    config = json.loads(sys.stdin.buffer.readline())
    tell = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever Ray prints goes to the log, not into the protocol
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    threading.Thread(target=_end_with_parent, args=(config["app"],), daemon=True).start()
    try:
        run_app(config)
    except Exception as exc:
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():
            with contextlib.suppress(Exception):  # a half-deployed application
                from ray import serve

                serve.delete(config["app"])
        tell.write(json.dumps({"error": f"on Ray: {type(exc).__name__}: {exc}"[:2000]}) + "\n")
        tell.flush()
        os._exit(FAILED_TO_LOAD)
    threading.Thread(target=_watch_head, args=(config["address"],), daemon=True).start()
    asyncio.run(_listen(config["app"], config["socket"], tell))


if __name__ == "__main__":
    main()
