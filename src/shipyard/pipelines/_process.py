"""Child processes that lead a process group of their own, and killing them whole.

A process Shipyard starts to run someone's code (a pipeline step; later a serving replica)
is started in a session of its own, so that killing its process group kills whatever it
started as well; and where Linux offers one, a pidfd makes its end something to wait on
with other descriptors (``multiprocessing.connection.wait``, a selector), rather than
something to poll. Nothing here knows what the process runs.

On Linux such a process also dies with its parent (``die_with_parent``): a worker that is
SIGKILLed leaves no step running that nobody would record, or kill on timeout.

This module imports only the standard library (``subprocess`` and ``ctypes`` only when
starting a process): the step launcher (``_zygote``) imports it for ``kill_group``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess


def kill_group(pid: int) -> None:
    """SIGKILL the process group ``pid`` leads and the process itself (in case it has not
    reached ``setsid`` yet: then it has no group of its own, nor anything in it). The
    caller must know ``pid`` is not reaped yet, or it could name another process."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` (Linux only), loaded before a fork: a forked child must not load it."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        fn: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return fn


def parent_death_hook() -> Callable[[], None] | None:
    """A function to call in a new child (between fork and exec, or at the start of a
    forked child's work, after any change of user, which clears the setting) that makes
    the kernel SIGKILL the child when the thread that started it ends, its process killed
    with it; ``None`` where the platform has no such thing. If the parent is already gone
    when it runs, the child ends at once."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # it died before the request took effect
            os._exit(70)

    return hook


def open_pidfd(pid: int) -> int | None:
    """A descriptor readable once process ``pid`` has exited, or ``None`` where the
    platform has none (then the process's end must be polled for)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


class ProcessGroup:
    """A child process leading its own process group (see ``spawn``)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self._pidfd = open_pidfd(process.pid)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def sentinel(self) -> int | None:
        """A descriptor to wait on for the process's end (``None``: poll ``returncode``)."""
        return self._pidfd

    @property
    def returncode(self) -> int | None:
        """Its exit code (negative: the signal that killed it), ``None`` while it runs."""
        return self._process.poll()

    def wait(self) -> int:
        """Wait for the process to end and reap it; its exit code."""
        code = self._process.wait()
        self._close()
        return code

    def kill(self) -> None:
        """Kill the process and everything in its group, and reap it."""
        kill_group(self._process.pid)  # not reaped before ``wait`` below: the pid is its
        self.wait()

    def _close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


def spawn(
    command: Sequence[str],
    *,
    log: str,
    env: Mapping[str, str],
    cwd: str,
    user: tuple[int, int] | None = None,
) -> ProcessGroup:
    """Start ``command`` in a session of its own, with stdin on ``/dev/null`` and stdout and
    stderr appended to the file ``log``; as OS user ``user`` (uid, gid; no supplementary
    groups) when given, which needs root. On Linux it is killed when the calling thread
    ends (``parent_death_hook``; the caller waits for it in that thread)."""
    # Imported here: the step launcher imports this module and must start small.
    import subprocess

    with open(log, "ab") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            user=user[0] if user else None,
            group=user[1] if user else None,
            extra_groups=[] if user else None,
            # Runs after the change of user (which would clear it), before the exec.
            preexec_fn=parent_death_hook(),
        )
    return ProcessGroup(process)
