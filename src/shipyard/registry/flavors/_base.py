"""What every flavor provides, and the options a load runs under.

A flavor knows how to write one kind of model object into a directory in a safe format and
how to read it back. Flavors never see the registry or the store: ``flavors.save`` and
``flavors.load`` put the manifest around them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shipyard.registry.flavors._manifest import Manifest


@dataclass(frozen=True)
class Saved:
    """What a flavor reports after writing a model: recorded in the manifest."""

    framework: str
    framework_version: str
    # Distribution names whose versions are recorded for reproducibility.
    packages: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadOptions:
    """Trust decisions for one load; they come from the caller's configuration only."""

    trusted_types: Sequence[str] = ()
    # Unpickling runs arbitrary code: only ``load_model`` in the user's own process allows
    # it (never an evaluation that may run in the server)...
    allow_pickle: bool = False
    # ...and only for a file whose sha256 is in the loader's own trust list (its argument
    # and configuration). Whatever the registrant vouched for is no part of it.
    trusted_digests: frozenset[str] = frozenset()


class Flavor(Protocol):
    """One model format. ``name`` is stored in the manifest and the version row."""

    name: str

    def matches(self, obj: object) -> bool:
        """Whether this flavor can save ``obj`` (checked without importing optional extras)."""
        ...

    def save(self, obj: Any, model_dir: Path) -> Saved: ...

    def load(self, model_dir: Path, manifest: Manifest, options: LoadOptions) -> Any:
        """Return an object with ``predict(frame)``; files are already verified."""
        ...


def module_of(obj: object) -> str:
    """The top-level package an object's class comes from, without importing anything."""
    return type(obj).__module__.split(".", 1)[0]


def model_file(model_dir: Path, manifest: Manifest, default: str) -> Path:
    """The file a flavor option names, which must be one the manifest lists (and so has
    been verified and checked as a safe relative path)."""
    from shipyard.errors import DataCorruption

    name = str(manifest.options.get("file", default))
    if name not in manifest.files:
        raise DataCorruption(f"the manifest names model file {name!r} but does not list it")
    return model_dir / name
