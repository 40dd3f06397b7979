"""Where a step runs: a fresh process per step (the default) or the calling process.

A fresh interpreter per step (``python -m shipyard.pipelines._executor``) gives isolation (a
crash or ``os._exit`` fails only that step), clean module state, no re-import of the
caller's ``__main__`` (which ``multiprocessing`` start methods would do), and a process
group to kill on timeout or cancel. Its stdout and stderr go straight to the step's log.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any, Protocol

from shipyard.errors import MissingDependency
from shipyard.pipelines import _executor
from shipyard.pipelines.spec import ComponentSpec


class Handle(Protocol):
    """A started step. ``sentinel`` is waitable (``None`` when already finished)."""

    @property
    def sentinel(self) -> int | None: ...

    def done(self) -> bool: ...

    def result(self) -> dict[str, Any]: ...

    def kill(self) -> None: ...


class _ProcessHandle:
    def __init__(self, process: subprocess.Popen[bytes], result_path: str) -> None:
        self._process = process
        self._result_path = result_path
        self._pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self._pidfd = os.pidfd_open(process.pid)  # readable once the process exits

    @property
    def sentinel(self) -> int | None:
        return self._pidfd

    def done(self) -> bool:
        return self._process.poll() is not None

    def _close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def result(self) -> dict[str, Any]:
        code = self._process.wait()
        self._close()
        try:
            with open(self._result_path, encoding="utf-8") as f:
                return dict(json.load(f))
        except (OSError, ValueError):
            how = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
            return {"ok": False, "error": f"the step process {how} before reporting a result"}

    def kill(self) -> None:
        # The whole group: a step's own subprocesses must not outlive it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()
        self._close()


class _DoneHandle:
    def __init__(self, result: dict[str, Any]) -> None:
        self._result = result

    @property
    def sentinel(self) -> int | None:
        return None

    def done(self) -> bool:
        return True

    def result(self) -> dict[str, Any]:
        return self._result

    def kill(self) -> None:
        return None


def write_request(path: str, request: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(request, f)
    os.chmod(path, 0o600)


def start_process(request_path: str, request: dict[str, Any]) -> Handle:
    write_request(request_path, request)
    env = {**os.environ, **request["env"]}
    with open(request["log"], "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "shipyard.pipelines._executor", request_path],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=os.path.dirname(request_path),
            start_new_session=True,
        )
    return _ProcessHandle(process, request["result"])


def run_inline(
    spec: ComponentSpec, request: dict[str, Any], func: Callable[..., Any] | None
) -> Handle:
    return _DoneHandle(_executor.run_inline(spec, request, func))


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

    def result(self) -> dict[str, Any]:
        try:
            return dict(self._ray.get(self._ref))
        except Exception as exc:  # a lost worker or a cancelled task
            return {"ok": False, "error": f"the Ray task failed: {exc}"}

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self._ray.cancel(self._ref, force=True)


def start_ray(request: dict[str, Any]) -> Handle:
    """Run the step as a Ray task (on a cluster, the work directory and the artifact
    store's location must be reachable from every node: a shared filesystem)."""
    ray = require_ray()
    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=request.get("cpus") or 1)(_executor.run_captured)
    return _RayHandle(ray, remote.remote(request))
