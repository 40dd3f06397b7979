"""The warm step launcher kept between runs.

Starting a launcher (``_forkserver.ForkServer``) costs ~0.1 s, as much as dozens of trivial
steps, so a finished run hands its launcher back here and the next run in this process
takes it. A run has its launcher to itself while it runs; runs at the same time (threads)
each get their own, and one is kept when they finish.

A kept launcher is not reused when it died, when a step it started is still unaccounted
for, or when the interpreter it would have been started with differs: another
``sys.executable`` or other ``PYTHON*`` environment variables (``PYTHONPATH`` decides what
its ``import`` finds). Modules the runner has loaded since it started are sent to it to
preload. Kept launchers are closed at interpreter exit; a forked copy of this process closes
its copies of their sockets at once, so that a launcher still sees its runner go away.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import weakref

from shipyard.pipelines._forkserver import ForkServer, preload_wanted

_lock = threading.Lock()
_kept: list[tuple[tuple[str, ...], ForkServer]] = []
_every: weakref.WeakSet[ForkServer] = weakref.WeakSet()
_hooked = False


def _interpreter(env: dict[str, str] | None = None) -> tuple[str, ...]:
    """What a launcher must match to be reused: the interpreter, its ``PYTHON*`` variables,
    and for a launcher started with an environment of its own, that whole environment."""
    source = os.environ if env is None else env
    python = sorted(f"{k}={v}" for k, v in source.items() if k.startswith("PYTHON"))
    own = () if env is None else ("clean", *sorted(f"{k}={v}" for k, v in env.items()))
    return (sys.executable, *python, *own)


def acquire(env: dict[str, str] | None = None) -> ForkServer:
    """A launcher for one run: a kept one that still fits, or a new one (not waited for:
    its first start does), started with ``env`` when given (the runner's otherwise).
    Raises ``OSError`` when none can be started."""
    global _hooked
    key = _interpreter(env)
    stale: list[ForkServer] = []
    found: ForkServer | None = None
    with _lock:
        while _kept and found is None:
            kept_key, server = _kept.pop()
            if kept_key == key and server.idle:
                found = server
            else:
                stale.append(server)
        if not _hooked:
            _hooked = True
            atexit.register(shutdown)
            os.register_at_fork(after_in_child=_forget_in_child)
    for server in stale:
        server.close()
    if found is not None:
        found.preload(preload_wanted())
        return found
    server = ForkServer(key, env)
    _every.add(server)
    return server


def release(server: ForkServer) -> None:
    """Hand back a run's launcher: kept for the next run if fit, otherwise closed."""
    if server.idle and server.key == _interpreter(server.env):
        with _lock:
            if not _kept:
                _kept.append((server.key, server))
                return
    server.close()


def shutdown() -> None:
    """Close every kept launcher (at interpreter exit, or for a test)."""
    with _lock:
        kept = [server for _, server in _kept]
        _kept.clear()
    for server in kept:
        server.close()


def _forget_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the fork
    for server in list(_every):
        if server.alive:
            server.abandon(child_of_fork=True)
    # Only now: the list may hold the last reference to a launcher, which must not vanish
    # from ``_every`` (to be collected whenever) before its sockets are closed above.
    _kept.clear()
