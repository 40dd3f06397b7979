"""The runner's side of the step launcher (``_zygote``): a warm interpreter that forks a
fresh process per step.

``ForkServer`` starts a launcher and speaks its protocol (drawn in ``_zygote``'s docstring):
it asks for a step's process, or for a kill, by step id, and reads back what the launcher
and the steps report. Only the launcher reaps the steps, so only it signals them while it
lives; when it dies its steps can no longer be watched and are killed here. ``_pool`` keeps
a launcher between runs; ``_launch.ForkLauncher`` is the launcher port on top of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from shipyard.pipelines._messages import StepRequest, StepResult, died, read_result
from shipyard.pipelines._process import kill_group

# fork() is safe for a single-threaded, freshly started interpreter on Linux; on macOS
# system frameworks may not survive it, and Windows has none.
AVAILABLE = sys.platform == "linux" and hasattr(os, "fork")
# Modules worth importing once in the launcher rather than in every step, when the runner's
# own process has them loaded (a sign the steps use them too; otherwise they would only
# slow down the launcher's start).
PRELOAD = ("numpy", "pandas")
_READY_TIMEOUT = 60.0
_NOTICE_BUFFER = 65536  # above _zygote.NOTICE_LIMIT: a notice is never cut short


class _Exited:
    def __init__(self, code: int | None, why: str = "") -> None:
        self.code = code
        self.why = why


def preload_wanted() -> list[str]:
    return [m for m in PRELOAD if m in sys.modules]


class ForkServer:
    """The runner's side of one ``_zygote`` process (see that module for the protocol)."""

    def __init__(self, key: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        self.key = key  # what ``_pool`` matches a later run's interpreter against
        # The launcher's own environment (None: the runner's). Steps of server-side runs
        # fork from one started clean, so their /proc/self/environ holds nothing more.
        self.env = env
        parent, child = socket.socketpair()
        # Steps report their end on a second channel, straight to the runner: a message
        # per step (SEQPACKET keeps each whole), sent before the process exits, so
        # finishing a step waits for neither its teardown nor the launcher reaping it.
        notices, notifier = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.preloaded = set(preload_wanted())
        fds = (child.fileno(), notifier.fileno())
        # -P: nothing of the launcher's working directory on its path (each step puts its
        # own first, as a cold step would); "/" so that no directory is held busy.
        command = [sys.executable, "-P", "-m", "shipyard.pipelines._zygote", *map(str, fds)]
        try:
            self._process = subprocess.Popen(
                [*command, ",".join(sorted(self.preloaded))],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=fds,
                cwd="/",
                env=env,
                # Its own session: a Ctrl-C meant for the runner must not kill the launcher
                # under steps the runner is about to cancel cleanly.
                start_new_session=True,
            )
        except BaseException:
            parent.close()
            notices.close()
            raise
        finally:
            child.close()
            notifier.close()
        self._sock = parent
        self._notices = notices
        # One descriptor to wait on for both channels: the scheduler waits on one per step.
        self._selector = selectors.EpollSelector()
        self._selector.register(self._sock, selectors.EVENT_READ)
        self._selector.register(self._notices, selectors.EVENT_READ)
        self._buffer = b""
        self._ready = False
        self._closed = False
        self._next_id = 0
        self.pids: dict[int, int] = {}
        self.exited: dict[int, _Exited] = {}
        # Steps that reported their end themselves, with their result when it fit.
        self.finished: dict[int, StepResult | None] = {}
        self._collected: set[int] = set()  # results read before the launcher reaped them
        self._open: set[int] = set()  # started, result not read yet

    @property
    def sentinel(self) -> int:
        return self._selector.fileno()

    @property
    def alive(self) -> bool:
        return not self._closed

    @property
    def idle(self) -> bool:
        """Alive, and every step it started has ended and been read: fit for another run."""
        self.pump()
        if not self._closed and self._process.poll() is not None:
            self._lost()  # dead, with its end of file perhaps behind unread reports
        return not self._closed and not self._open

    def preload(self, modules: list[str]) -> None:
        """Have the launcher import ``modules`` too (when idle), if it has not."""
        missing = sorted(set(modules) - self.preloaded)
        if missing and not self._closed:
            with contextlib.suppress(OSError):  # a dead launcher shows at the next pump
                self._send({"op": "preload", "modules": missing})
            self.preloaded.update(missing)

    def _send(self, message: dict[str, Any]) -> None:
        self._sock.sendall(json.dumps(message).encode() + b"\n")

    def pump(self, timeout: float | None = 0.0) -> None:
        """Read what the launcher and the steps reported; wait up to ``timeout``."""
        if self._closed:
            return
        for key, _ in self._selector.select(timeout):
            if key.fileobj is self._notices:
                self._read_notices()
            elif not self._read_control():
                self._lost()
                return

    def _read_notices(self) -> None:
        while True:
            try:
                data = self._notices.recv(_NOTICE_BUFFER, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            notice = json.loads(data)
            self.finished[int(notice["id"])] = _reported(notice.get("result"))

    def _read_control(self) -> bool:
        try:
            data = self._sock.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if not data:
            return False
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            message = json.loads(line)
            step = message.get("id")
            if message.get("ready"):
                self._ready = True
            elif "pid" in message:
                self.pids[step] = message["pid"]
            elif step in self._collected:  # its result was read already
                self._collected.discard(step)
                self.pids.pop(step, None)
            elif "exit" in message:
                self.exited[step] = _Exited(message["exit"])
            elif "error" in message:
                self.exited[step] = _Exited(None, message["error"])
        return True

    def collect(self, step: int) -> StepResult | _Exited | None:
        """Forget a step whose result is being read: what it reported itself (its result,
        or ``None`` for "in the result file") or else what the launcher saw it exit with."""
        self._open.discard(step)
        exited = self.exited.pop(step, None)
        if exited is None:
            self._collected.add(step)
        else:
            self.pids.pop(step, None)
        if step in self.finished:
            return self.finished.pop(step)
        return exited

    def _lost(self) -> None:
        """The launcher died: its steps can no longer be watched, so they are killed."""
        code = self._process.poll()
        why = f"was killed: its launcher (pid {self._process.pid}) died" + (
            f" with {code}" if code is not None else ""
        )
        for step in self._open:
            if step in self.exited:
                continue
            pid = self.pids.get(step)
            if pid is not None:
                # The launcher is gone, so nobody can have reaped and reused this pid yet
                # unless init did: a small window, accepted to not leave steps running.
                kill_group(pid)
            # Also a step whose fork was never reported: it will never report anything.
            self.exited[step] = _Exited(None, why)
        self.close()

    def _until(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0 or self._closed:
                return done()
            self.pump(left)
        return True

    def start(self, request: StepRequest) -> ForkedHandle:
        """Ask for a step process; raises ``OSError`` when the launcher is not there.

        Does not wait for the fork: kills go through the launcher by step id, and a fork
        that fails is reported as the step's end."""
        if not self._until(lambda: self._ready, _READY_TIMEOUT):
            raise OSError("the step launcher did not start")
        self._next_id += 1
        step = self._next_id
        message = {
            "op": "start",
            "id": step,
            "request": request.to_json(),
            "cwd": request.folder,
            "env": request.environment(os.environ),
        }
        try:
            self._send(message)
        except OSError:
            self._lost()
            raise
        self._open.add(step)
        return ForkedHandle(self, step, request.result)

    def kill(self, step: int) -> None:
        if step in self.exited or self._closed:
            return
        with contextlib.suppress(OSError):
            self._send({"op": "kill", "id": step})
        self._until(lambda: step in self.exited, 30.0)

    def close(self) -> None:
        """End the launcher (it kills any step still running) and reap it."""
        if self._closed:
            return
        self.abandon()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def abandon(self, *, child_of_fork: bool = False) -> None:
        """Close this side without reaping the launcher (``close`` then reaps it; a forked
        copy of the runner, whose child the launcher is not, only closes). The launcher
        exits when every copy of this side is closed."""
        self._closed = True
        self._selector.close()
        self._sock.close()
        self._notices.close()
        if child_of_fork:
            # Not this process's child: nothing to wait for, and nothing for ``Popen`` to
            # warn about ("still running") when it is collected here.
            self._process.returncode = 0


class ForkedHandle:
    """A step forked by a ``ForkServer`` (a ``_launch.Handle``)."""

    def __init__(self, server: ForkServer, step: int, result_path: str) -> None:
        self._server = server
        self._step = step
        self._result_path = result_path

    @property
    def sentinel(self) -> int | None:
        return self._server.sentinel if self._server.alive else None

    def done(self) -> bool:
        self._server.pump()
        return self._step in self._server.exited or self._step in self._server.finished

    def result(self) -> StepResult:
        server = self._server
        while not self.done() and server.alive:
            server.pump(None)
        lost = not self.done()
        reported = server.collect(self._step)
        if isinstance(reported, StepResult):
            return reported
        try:
            return read_result(self._result_path)
        except (OSError, ValueError):
            if reported is None:
                reported = _Exited(None, "was lost" if lost else "ended without a result file")
            return died(reported.code, reported.why)

    def kill(self) -> None:
        self._server.kill(self._step)
        self._server.collect(self._step)


def _reported(result: Any) -> StepResult | None:
    """The result a step's notice carried (``None``: too big for one, in its result file)."""
    if result is None:
        return None
    try:
        return StepResult.from_json(result)
    except ValueError as exc:
        return StepResult.failed(f"the step process reported a malformed result: {exc}")
