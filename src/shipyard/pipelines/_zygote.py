"""The step launcher: a warm interpreter that forks a fresh process per step.

A cold ``python -m shipyard.pipelines._executor`` costs ~0.1 s before a step's first line
runs, starting Python and importing Shipyard's executor. This process (started by
``_forkserver.ForkServer`` and kept by ``_pool`` for the runs that follow) pays that once, then
forks a child per step. Each child is what a cold step process was: its own session and
process group (so a timeout or a cancel kills the step and everything it started), stdout
and stderr on the step's log, stdin on ``/dev/null``, the run's environment, its working
directory first on ``sys.path``, and ``_executor`` running the step from its recorded source.

Forking copies the page tables of the whole interpreter (about a millisecond), so it is
done ahead: when idle the launcher keeps one *spare* child forked, already in its own
session, waiting on a pipe for its step. A start hands the request to the spare (or forks
one if there is none), then defines the component here too, so the spares forked afterwards
find its source compiled.

The protocol is newline-delimited JSON over a socket shared with the runner, plus a
SEQPACKET socket on which each step reports its own end just before it exits, with its
result (``{"id": 7, "result": {...}}``), or ``{"id": 7}`` when the result was too big for one
message and went to the step's result file instead. A request and a result are the JSON of
a ``_messages.StepRequest`` and ``StepResult``; ``env`` is the step's whole environment:

    runner -> here   {"op": "start", "id": 7, "request": {...}, "cwd": ..., "env": {...}}
                     {"op": "kill", "id": 7}
                     {"op": "preload", "modules": ["pandas"]}  import these when idle
    here -> runner   {"ready": true, "pid": ...}            once, after the imports
                     {"id": 7, "pid": 12345}                 the step has its process
                     {"id": 7, "error": "fork failed: ..."}  or it could not have one
                     {"id": 7, "exit": -9}                   reaped; Popen-style returncode

Only this process reaps the children, so only it may signal them: a pid it has reaped can
be reused, so the runner asks for kills instead of sending signals itself. When the runner
goes away (end of file on the socket: it finished or was killed) the steps still running are
killed, since nobody is left to record their outputs, and this process exits; so does a
spare, which sees the end of its pipe.
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
from collections.abc import Callable
from typing import Any

from shipyard.pipelines import _executor
from shipyard.pipelines._messages import StepRequest, write_result
from shipyard.pipelines._process import kill_group, parent_death_hook

_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND
NOTICE_LIMIT = 60_000  # bytes; the runner reads notices into a 64 KiB buffer


class _Server:
    def __init__(self, sock: socket.socket, notifier: socket.socket, preload: list[str]) -> None:
        self.sock = sock
        self.notifier = notifier
        self.preload = preload
        self.buffer = b""
        self.live: dict[int, int | None] = {}  # pid -> step id (None: the spare), until reaped
        self.spare: tuple[int, int] | None = None  # its pid, and the pipe its step goes to
        self.spares = True  # False after a failed fork, until a start needs a process again
        self.last: bytes | None = None  # the last start message, for spares to rehearse
        # A step dies with this process (on Linux): nobody would be left to record it.
        self.die_with_launcher = parent_death_hook()
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
            # Work that can wait is done when no message is waiting: a spare first (the
            # next step's fork), then heavy modules, so the first steps start at once and
            # the later ones find them loaded.
            want_spare = self.spare is None and self.spares
            events = self.selector.select(0 if want_spare or self.preload else None)
            if not events:
                if want_spare:
                    self._fork_spare()
                else:
                    _import(self.preload.pop(0))
                    self._drop_spare()  # it was forked without the module
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
                self._start(message, line)
            elif message["op"] == "kill":
                self._kill(int(message["id"]))
            elif message["op"] == "preload":
                self.preload += [m for m in message["modules"] if m not in sys.modules]
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
            if self.spare is not None and self.spare[0] == pid:  # it died waiting
                os.close(self.spare[1])
                self.spare = None
            if step is not None:
                self.send({"id": step, "exit": os.waitstatus_to_exitcode(status)})

    def _kill(self, step: int) -> None:
        for pid, known in self.live.items():
            if known == step:
                kill_group(pid)

    def _shutdown(self) -> None:
        self._drop_spare()
        for pid in list(self.live):
            kill_group(pid)
        for pid in list(self.live):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)

    def _start(self, message: dict[str, Any], line: bytes) -> None:
        step = int(message["id"])
        self.spares = True
        self.last = line
        pid = self._hand_to_spare(line)
        if pid is None:
            pid = self._fork(lambda: self._become_step(message))
        if pid is None:
            self.send({"id": step, "error": "could not be forked"})
            return
        self.live[pid] = step
        self.send({"id": step, "pid": pid})
        # Defined here after the step has its process (which defines it too, meanwhile),
        # so that every spare forked from now on has it ready.
        with contextlib.suppress(Exception):  # a broken component fails in its step
            _executor.load(message["request"]["component"])
            gc.freeze()

    def _hand_to_spare(self, line: bytes) -> int | None:
        if self.spare is None:
            return None
        pid, pipe = self.spare
        self.spare = None
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(pipe, view) :]
        except OSError:  # it died waiting: reaped as a spare, never reported
            kill_group(pid)
            return None
        finally:
            os.close(pipe)
        return pid

    def _fork_spare(self) -> None:
        read, write = os.pipe()
        pid = self._fork(lambda: self._wait_as_spare(read, write, self.last))
        os.close(read)
        if pid is None:
            os.close(write)
            self.spares = False
            return
        self.live[pid] = None
        self.spare = (pid, write)

    def _drop_spare(self) -> None:
        if self.spare is not None:
            pid, pipe = self.spare
            self.spare = None
            os.close(pipe)  # it sees the end of the pipe and exits
            kill_group(pid)

    def _fork(self, child: Callable[[], None]) -> int | None:
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError:
            return None
        if pid == 0:
            code = 70
            try:
                child()
                code = 0
            except BaseException:
                with contextlib.suppress(BaseException):
                    traceback.print_exc()
                    sys.stderr.flush()
            os._exit(code)
        return pid

    def _leave_launcher(self) -> None:
        """In a forked child: drop what belongs to the launcher, take a session of its own."""
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.selector.close()
        self.sock.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        if self.spare is not None:  # a spare's pipe is for it alone
            os.close(self.spare[1])

    def _wait_as_spare(self, read: int, write: int, rehearsal: bytes | None) -> None:
        """Runs in a spare: wait for a step (the whole message, then the end of the pipe);
        the end alone means the launcher is gone or has replaced this spare."""
        os.close(write)
        self._leave_launcher()
        if rehearsal is not None:
            _rehearse(rehearsal)
        chunks = []
        while chunk := os.read(read, 65536):
            chunks.append(chunk)
        os.close(read)
        if chunks:
            self._run_step(json.loads(b"".join(chunks)))

    def _become_step(self, message: dict[str, Any]) -> None:
        self._leave_launcher()
        self._run_step(message)

    def _run_step(self, message: dict[str, Any]) -> None:
        """Runs in a step's process: set it up as a step process, run the step, report."""
        null = os.open(os.devnull, os.O_RDONLY)
        request = StepRequest.from_json(message["request"])
        log = os.open(request.log, _LOG_FLAGS, 0o600)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        if request.isolated:
            # A server-side run's step: its code must not hold the channel on which every
            # step of this launcher (later runs' too) reports its end, or a process it leaves
            # behind could forge another step's result. It reports in its result file.
            self.notifier.close()
        if request.user is not None:  # a server-side run's step, as the step user (``_isolation``)
            uid, gid = request.user
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        if self.die_with_launcher is not None:  # after the change of user, which clears it
            self.die_with_launcher()
        os.chdir(message["cwd"])
        # A cold ``python -m`` step would have its working directory first on its path.
        sys.path.insert(0, message["cwd"])
        _set_environment(message["env"])
        _reseed()
        sys.argv = [_executor.__file__]
        result = _executor.run_request(request)
        _finish_like_an_interpreter()
        if request.isolated:
            write_result(request.result, result)
            return
        # The result travels in the notice unless it is too big for one message.
        notice = json.dumps({"id": message["id"], "result": result.to_json()}).encode()
        if len(notice) > NOTICE_LIMIT:
            write_result(request.result, result)
            notice = json.dumps({"id": message["id"]}).encode()
        with contextlib.suppress(OSError):  # the runner is gone; nobody to tell
            self.notifier.send(notice)


def _rehearse(line: bytes) -> None:
    """In a spare, before its step arrives: go through the previous step's setup as far as
    it has no effect outside this process (decode it, find its component, take on its
    environment). The memory that writes to is copied from the launcher now, page by page,
    instead of after the step has arrived, and the step's own setup finds little to do."""
    with contextlib.suppress(Exception):
        message = json.loads(line)
        _executor.load(message["request"]["component"])
        _set_environment(message["env"])


def _set_environment(env: dict[str, str]) -> None:
    """Make ``os.environ`` exactly ``env``, changing only what differs (little: the step's
    environment is the runner's plus a few variables)."""
    for key in [k for k in os.environ if k not in env]:
        del os.environ[key]
    for key, value in env.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


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
    ``FD``, steps report their end on ``NOTIFY_FD``; the listed modules (those the runner
    had loaded) are imported whenever the launcher is idle."""
    sock = socket.socket(fileno=int(argv[0]))
    notifier = socket.socket(fileno=int(argv[1]))
    gc.freeze()
    preload = [m for m in (argv[2] if len(argv) > 2 else "").split(",") if m]
    _Server(sock, notifier, preload).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
