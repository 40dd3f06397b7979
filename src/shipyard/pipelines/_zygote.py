"""The step launcher of one run: a warm interpreter that forks a fresh process per step.

A cold ``python -m shipyard.pipelines._executor`` costs ~0.3 s before a step's first line
runs; most of it is importing Python, pydantic and Shipyard. This process (started once per
run by ``_launch.ForkServer``) pays that once, then forks a child per step. Each child is
what a cold step process was: its own session and process group (so a timeout or a cancel
kills the step and everything it started), stdout and stderr on the step's log, stdin on
``/dev/null``, the run's environment, and ``_executor.child_main`` writing the result file.

The protocol is newline-delimited JSON over a socket shared with the runner, plus a
SEQPACKET socket on which each step reports its own end just before it exits, with its
result (``{"id": 7, "result": {...}}``), or ``{"id": 7}`` when the result was too big for one
message and went to the step's result file instead:

    runner -> here   {"op": "start", "id": 7, "request": {...}, "cwd": ..., "env": {...}}
                     {"op": "kill", "id": 7}
    here -> runner   {"ready": true, "pid": ...}            once, after the imports
                     {"id": 7, "pid": 12345}                 the step is forked
                     {"id": 7, "error": "fork failed: ..."}  or it could not be
                     {"id": 7, "exit": -9}                   reaped; Popen-style returncode

Only this process reaps the children, so only it may signal them: a pid it has reaped can
be reused, so the runner asks for kills instead of sending signals itself. When the runner
goes away (end of file on the socket: it finished or was killed) the steps still running are
killed, since nobody is left to record their outputs, and this process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import threading
import traceback
from typing import Any

_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND
NOTICE_LIMIT = 60_000  # bytes; the runner reads notices into a 64 KiB buffer


class _Server:
    def __init__(self, sock: socket.socket, notifier: socket.socket, preload: list[str]) -> None:
        self.sock = sock
        self.notifier = notifier
        self.preload = preload
        self.buffer = b""
        self.live: dict[int, int] = {}  # pid -> step id, until reaped
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.sock, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)

    def send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the runner is gone: EOF ends the loop
            self.sock.sendall(json.dumps(message).encode() + b"\n")

    def serve(self) -> None:
        # The handler does nothing: its only job is to make the kernel write to the wakeup
        # fd, which wakes the selector so children are reaped as soon as they exit.
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.set_wakeup_fd(self.wake_w)
        self.send({"ready": True, "pid": os.getpid()})
        while True:
            # Heavy modules are imported when nothing is waiting, so the first steps start
            # at once and the later ones find them loaded.
            events = self.selector.select(0 if self.preload else None)
            if not events and self.preload:
                _import(self.preload.pop(0))
                continue
            for key, _ in events:
                if key.fileobj is self.sock:
                    if not self._read():
                        self._shutdown()
                        return
                else:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wake_r, 4096)
            self._reap()

    def _read(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:  # the runner closed with our reports unread
            return False
        if not data:
            return False
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            message = json.loads(line)
            if message["op"] == "start":
                self._start(message)
            elif message["op"] == "kill":
                self._kill(int(message["id"]))
        return True

    def _reap(self) -> None:
        while self.live:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            step = self.live.pop(pid, None)
            if step is not None:
                self.send({"id": step, "exit": os.waitstatus_to_exitcode(status)})

    def _kill(self, step: int) -> None:
        for pid, known in self.live.items():
            if known == step:
                _kill_group(pid)

    def _shutdown(self) -> None:
        for pid in list(self.live):
            _kill_group(pid)
        for pid in list(self.live):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)

    def _start(self, message: dict[str, Any]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:
            self.send({"id": message["id"], "error": f"could not be forked: {exc}"})
            return
        if pid == 0:
            code = 70
            try:
                self._become_step(message)
                code = 0
            except BaseException:
                with contextlib.suppress(BaseException):
                    traceback.print_exc()
                    sys.stderr.flush()
            os._exit(code)
        self.live[pid] = int(message["id"])
        self.send({"id": message["id"], "pid": pid})

    def _become_step(self, message: dict[str, Any]) -> None:
        """Runs in the forked child: turn it into a step process, run the step, exit."""
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.selector.close()
        self.sock.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        null = os.open(os.devnull, os.O_RDONLY)
        request = message["request"]
        log = os.open(request["log"], _LOG_FLAGS, 0o600)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        os.chdir(message["cwd"])
        os.environ.clear()
        os.environ.update(message["env"])
        _reseed()
        from shipyard.pipelines import _executor

        sys.argv = [_executor.__file__]
        result = _executor.run_request(request)
        _finish_like_an_interpreter()
        # The result travels in the notice unless it is too big for one message.
        notice = json.dumps({"id": message["id"], "result": result}).encode()
        if len(notice) > NOTICE_LIMIT:
            _executor.write_result(request["result"], result)
            notice = json.dumps({"id": message["id"]}).encode()
        with contextlib.suppress(OSError):  # the runner is gone; nobody to tell
            self.notifier.send(notice)


def _kill_group(pid: int) -> None:
    # The group for the step's own subprocesses, the pid itself in case the child has not
    # reached setsid() yet (then it has no group of its own, and no subprocesses either).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _reseed() -> None:
    # Forked children share their parent's random state. ``random`` reseeds itself after a
    # fork; numpy's legacy global generator does not, and every step would draw the same
    # "random" numbers, unlike steps in fresh interpreters.
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        with contextlib.suppress(Exception):
            numpy.random.seed()


def _finish_like_an_interpreter() -> None:
    """What a fresh interpreter does at exit and ``os._exit`` would skip: wait for the
    step's non-daemon threads, run its ``atexit`` callbacks, flush the streams."""
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()


def _import(name: str) -> None:
    with contextlib.suppress(ImportError):
        importlib.import_module(name)
    # Everything imported so far is shared with the children copy-on-write; a child's
    # garbage collection would write to every object's header and copy nearly all pages
    # (tens of ms with pandas loaded). Frozen objects are never scanned.
    gc.freeze()


def main(argv: list[str]) -> None:
    """``python -m shipyard.pipelines._zygote FD NOTIFY_FD [MODULE,...]``: serve on socket
    ``FD``, steps report their end on ``NOTIFY_FD``; the executor is imported first, the
    listed modules (those the runner had loaded) whenever the launcher is idle."""
    sock = socket.socket(fileno=int(argv[0]))
    notifier = socket.socket(fileno=int(argv[1]))
    _import("shipyard.pipelines._executor")
    preload = [m for m in (argv[2] if len(argv) > 2 else "").split(",") if m]
    _Server(sock, notifier, preload).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
