"""The runtime: what a process that works on the store directly opens once and shares.

``open_runtime(settings)`` resolves the settings into the metadata store (migrated), the
artifact store and the hooks capabilities install for each other. The server
(``server.app.create_app``), the SDK in local mode (``sdk.local.LocalSession``), the worker
(``shipyard worker``) and the quick start all start here, so they open the same things the
same way; services then receive ``runtime.store`` and ``runtime.artifacts`` as arguments, as
before. A process in remote mode (``http(s)://``) has no runtime: the server it talks to has.

``Runtime`` is frozen: what a process works on does not change under it. ``close()``
releases what the runtime opened for itself (``cached=False``); stores shared by the whole
process (the default, one per URI) stay open for the process's other users.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from shipyard.artifacts import ArtifactStore, open_artifact_store
from shipyard.config import Settings, ensure_home
from shipyard.errors import InvalidArgument
from shipyard.store import Store, open_store

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from shipyard.registry import DeploymentLookup

__all__ = ["Hooks", "Runtime", "open_runtime"]


@dataclass(frozen=True)
class Hooks:
    """What one capability asks of another that it may not import.

    ``deployment_lookups``: the model versions each endpoint serves, by model id; the
    registry reports such versions with status ``deployed``. The serving capability adds
    its lookup here (the registry cannot import serving, which depends on the registry).
    """

    deployment_lookups: tuple[DeploymentLookup, ...] = ()

    def deployments(self) -> DeploymentLookup | None:
        """One lookup answering for all installed ones; None when there are none."""
        lookups = self.deployment_lookups
        if not lookups:
            return None
        if len(lookups) == 1:
            return lookups[0]

        def all_of(conn: Connection, model_id: str) -> set[int]:
            return set().union(*(lookup(conn, model_id) for lookup in lookups))

        return all_of


@dataclass(frozen=True)
class Runtime:
    """A process's settings, metadata store, artifact store and hooks (see the module)."""

    settings: Settings
    store: Store
    artifacts: ArtifactStore
    hooks: Hooks = field(default_factory=Hooks)
    # Whether close() disposes the store: only one opened for this runtime alone.
    owns_store: bool = False

    def close(self) -> None:
        """Release what this runtime opened for itself (its database connections); shared
        stores are left open. Safe to call more than once."""
        if self.owns_store:
            self.store.dispose()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def open_runtime(
    settings: Settings,
    *,
    deployment_lookups: Sequence[DeploymentLookup] = (),
    cached: bool = True,
) -> Runtime:
    """Open the runtime for ``settings`` (a ``sqlite:///`` or ``postgresql+psycopg://``
    URI): the home (for SQLite, whose file lives there), the store, migrated to the newest
    schema, and the artifact store.

    ``cached=True`` shares the store and artifact store with every other user of the same
    URI in this process; ``cached=False`` opens them for this runtime alone, and ``close()``
    then releases them. Raises ``InvalidArgument(field="uri")`` for a server URL.
    """
    if settings.remote:
        raise InvalidArgument(
            "a runtime opens the store itself: give a sqlite:/// or postgresql+psycopg:// "
            "URI, not a server's http(s):// URL",
            field="uri",
        )
    if settings.uri.startswith("sqlite"):
        ensure_home(settings.home)
    store = open_store(settings.uri, cached=cached)
    try:
        artifacts = open_artifact_store(settings.artifacts, cached=cached)
    except BaseException:
        if not cached:
            store.dispose()
        raise
    return Runtime(
        settings=settings,
        store=store,
        artifacts=artifacts,
        hooks=Hooks(deployment_lookups=tuple(deployment_lookups)),
        owns_store=not cached,
    )
