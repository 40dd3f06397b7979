"""A tripwire that makes unpickling fail inside this process (DESIGN.md 6: the server
process never unpickles).

While armed, :func:`deserialization_tripwire` makes these raise :class:`UnsafeDeserialization`:

* ``pickle.load``, ``pickle.loads``, ``pickle.Unpickler`` (and the pure-Python
  ``pickle._load``, ``pickle._loads``, ``pickle._Unpickler``), ``_pickle.load(s)``;
* ``cloudpickle.load(s)`` and ``joblib.load`` when those packages are importable;
* **any** unpickler that resolves a global, through an audit hook on
  ``pickle.find_class``. That covers functions bound before arming (``from pickle import
  loads``), ``numpy.load(allow_pickle=True)``, ``pandas.read_pickle``, ``torch.load`` and
  subclasses of ``Unpickler`` defined elsewhere: a malicious pickle cannot run code without
  looking up a callable, so it cannot get past the hook.

Every trip is recorded on the :class:`Tripwire` even if the code under test swallows the
exception, so a test can fail on it afterwards (:meth:`Tripwire.assert_untripped`). The
exception is deliberately *not* a ``ShipyardError``: the server must not turn it into a
tidy 4xx that lets a test pass. Use it around a test suite, e.g. in ``conftest.py``::

    @pytest.fixture(autouse=True)
    def _no_unpickling() -> Iterator[None]:
        with deserialization_tripwire() as wire:
            yield
        wire.assert_untripped()
"""

from __future__ import annotations

import contextlib
import importlib
import pickle
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

__all__ = ["Tripwire", "UnsafeDeserialization", "deserialization_tripwire"]


class UnsafeDeserialization(RuntimeError):
    """Something tried to unpickle while the tripwire was armed."""


@dataclass
class Tripwire:
    """The record of one arming: what tried to unpickle while it was on."""

    trips: list[str] = field(default_factory=list)

    def assert_untripped(self) -> None:
        """Raise ``UnsafeDeserialization`` if anything tried to unpickle."""
        if self.trips:
            raise UnsafeDeserialization(
                "unpickling was attempted while the tripwire was armed: " + "; ".join(self.trips)
            )


_lock = threading.RLock()
_active: list[Tripwire] = []
_saved: list[tuple[ModuleType, str, Any]] = []
_hook_installed = False


def _trip(what: str) -> UnsafeDeserialization:
    with _lock:
        for wire in _active:
            wire.trips.append(what)
    return UnsafeDeserialization(
        f"{what} called while the deserialization tripwire is armed: the server process "
        "never unpickles (DESIGN.md section 6); load models in a safe format"
    )


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Audit hooks cannot be removed, so this one is installed once and does nothing unless
    # a tripwire is armed. Raising here aborts the unpickler before it gets the callable.
    if event == "pickle.find_class" and _active:
        raise _trip(f"pickle find_class({args[0]!s:.60}, {args[1]!s:.60})")


def _blocked(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise _trip(what)

    refuse.__name__ = what.rsplit(".", 1)[-1]
    return refuse


def _blocked_unpickler(name: str, base: type[Any]) -> type[Any]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        raise _trip(name)

    return type(base.__name__, (base,), {"__init__": __init__, "__module__": base.__module__})


def _targets() -> list[tuple[ModuleType, str, Any]]:
    import _pickle

    targets: list[tuple[ModuleType, str, Any]] = []
    for module in (pickle, _pickle):
        for attr in ("load", "loads", "_load", "_loads"):
            if hasattr(module, attr):
                targets.append((module, attr, _blocked(f"{module.__name__}.{attr}")))
        for attr in ("Unpickler", "_Unpickler"):
            base = getattr(module, attr, None)
            if isinstance(base, type):
                targets.append(
                    (module, attr, _blocked_unpickler(f"{module.__name__}.{attr}", base))
                )
    # Optional packages: only patched if the test process already uses them or can import
    # them; importing here happens when arming, never when this module is imported.
    for name, attrs in (
        ("cloudpickle", ("load", "loads")),
        ("joblib", ("load",)),
        ("joblib.numpy_pickle", ("load",)),
    ):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for attr in attrs:
            if hasattr(module, attr):
                targets.append((module, attr, _blocked(f"{name}.{attr}")))
    return targets


@contextlib.contextmanager
def deserialization_tripwire() -> Iterator[Tripwire]:
    """Arm the tripwire for the whole process while the ``with`` block runs.

    Re-entrant and thread-safe: nested or concurrent armings share one patch, which is
    undone when the last one exits. Yields the :class:`Tripwire` recording this arming.
    """
    global _hook_installed
    wire = Tripwire()
    with _lock:
        if not _hook_installed:
            sys.addaudithook(_audit)
            _hook_installed = True
        if not _active:
            for module, attr, replacement in _targets():
                _saved.append((module, attr, getattr(module, attr)))
                setattr(module, attr, replacement)
        _active.append(wire)
    try:
        yield wire
    finally:
        with _lock:
            _active.remove(wire)
            if not _active:
                while _saved:
                    module, attr, original = _saved.pop()
                    setattr(module, attr, original)
