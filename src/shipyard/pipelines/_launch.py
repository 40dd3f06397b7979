"""The launcher port: where a step runs. A ``Launcher`` starts a step from its request and
hands back a ``Handle`` to wait on, read the result from, or kill; a run chooses one
launcher for all its steps (``StepRunner``) and closes it when it ends.

- ``ForkLauncher`` (the default on Linux): a process per step, forked from a warm launcher
  (``_zygote``, a fresh interpreter with the executor imported, taken from ``_pool``), which
  costs a millisecond or two instead of a cold interpreter's ~0.1 s. If no launcher can be
  started, or one cannot start a step, that step and the run's later ones start cold.
- ``ColdLauncher`` (elsewhere): a fresh ``python -m shipyard.pipelines._executor`` per step.
- ``InlineLauncher`` (``inline=True``): the calling process, one step at a time, so
  breakpoints work; the step has ended when ``start`` returns (``blocking``).
- ``RayLauncher`` (``backend="ray"``, in ``_ray``): a Ray task per step.

A process per step gives isolation (a crash or ``os._exit`` fails only that step), clean
module state, no re-import of the caller's ``__main__`` (which ``multiprocessing`` start
methods would do), and a process group to kill on timeout or cancel (``_process``). Its
stdout and stderr go straight to the step's log. A step's result comes back as a
``StepResult`` whatever became of it: a process that died without reporting one fails the
step with how it ended.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from shipyard.pipelines import _executor, _pool
from shipyard.pipelines._forkserver import ForkServer
from shipyard.pipelines._messages import (
    StepRequest,
    StepResult,
    died,
    read_result,
    write_request,
)
from shipyard.pipelines._process import ProcessGroup, spawn
from shipyard.pipelines.spec import ComponentSpec

log = logging.getLogger(__name__)


class Handle(Protocol):
    """A started step. ``sentinel`` is a descriptor to wait on for its end (``None``: poll
    ``done``); ``result`` waits for the end; ``kill`` ends it and whatever it started."""

    @property
    def sentinel(self) -> int | None: ...

    def done(self) -> bool: ...

    def result(self) -> StepResult: ...

    def kill(self) -> None: ...


class Launcher(Protocol):
    """Starts the steps of one run (see the module docstring)."""

    @property
    def blocking(self) -> bool:
        """Whether ``start`` returns only once the step has ended."""
        ...

    def start(self, request: StepRequest) -> Handle:
        """Start the step ``request`` names; its folder and log's folder exist."""
        ...

    def close(self) -> None:
        """Release what the launcher holds (the steps it started have been collected)."""
        ...


class _ColdHandle:
    def __init__(self, process: ProcessGroup, result_path: str) -> None:
        self._process = process
        self._result_path = result_path

    @property
    def sentinel(self) -> int | None:
        return self._process.sentinel

    def done(self) -> bool:
        return self._process.returncode is not None

    def result(self) -> StepResult:
        code = self._process.wait()
        try:
            return read_result(self._result_path)
        except (OSError, ValueError):
            return died(code)

    def kill(self) -> None:
        self._process.kill()


class ColdLauncher:
    """A fresh interpreter per step, reading its request from a file in its folder."""

    blocking = False

    def start(self, request: StepRequest) -> Handle:
        path = os.path.join(request.folder, "request.json")
        write_request(path, request)
        process = spawn(
            [sys.executable, "-m", "shipyard.pipelines._executor", path],
            log=request.log,
            env=request.environment(os.environ),
            cwd=request.folder,
            user=request.user,
        )
        return _ColdHandle(process, request.result)

    def close(self) -> None:
        return None


class ForkLauncher:
    """Steps forked from a warm launcher taken from ``_pool`` (and handed back by
    ``close``), started with ``env`` when given (a server-side run's steps fork from one
    started with a clean environment) or the runner's. Falls back to ``ColdLauncher``, for
    good, the first time a launcher cannot be started or cannot start a step."""

    blocking = False

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self._env = env
        self._server: ForkServer | None = None
        self._cold: ColdLauncher | None = None  # once fallen back
        self._acquire()  # not waited for: it starts while the run sets up

    def _acquire(self) -> ForkServer | ColdLauncher:
        """What starts the next step: a live launcher (a new one if the last died), or
        once fallen back the cold launcher."""
        if self._cold is not None:
            return self._cold
        if self._server is None or not self._server.alive:
            self.close()
            try:
                self._server = _pool.acquire(self._env)
            except OSError as exc:
                return self._fall_back(exc)
        return self._server

    def _fall_back(self, exc: OSError) -> ColdLauncher:
        log.warning("cannot fork steps (%s); starting each in a fresh interpreter", exc)
        self.close()
        self._cold = ColdLauncher()
        return self._cold

    def start(self, request: StepRequest) -> Handle:
        launcher = self._acquire()
        if isinstance(launcher, ColdLauncher):
            return launcher.start(request)
        try:
            return launcher.start(request)
        except OSError as exc:
            return self._fall_back(exc).start(request)

    def close(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            _pool.release(server)  # kept for the next run if it is fit


class _DoneHandle:
    def __init__(self, result: StepResult) -> None:
        self._result = result

    @property
    def sentinel(self) -> int | None:
        return None

    def done(self) -> bool:
        return True

    def result(self) -> StepResult:
        return self._result

    def kill(self) -> None:
        return None


class InlineLauncher:
    """Steps run in this process with the pipeline's own functions when it has them (a
    pipeline loaded from YAML has only their recorded source), output teed to their logs."""

    blocking = True

    def __init__(
        self,
        components: Mapping[str, ComponentSpec],
        functions: Mapping[str, Callable[..., Any]],
    ) -> None:
        self._components = components
        self._functions = functions

    def start(self, request: StepRequest) -> Handle:
        key = request.component_key
        spec = self._components[key]
        return _DoneHandle(_executor.run_inline(spec, request, self._functions.get(key)))

    def close(self) -> None:
        return None
