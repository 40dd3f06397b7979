"""Loading a registered version in local mode: ``load_model(ref)`` -> ``.predict(frame)``.

The version's directory comes from the artifact store (every blob verified against the
digest recorded in the version row) into the shared model cache (``registry.cache``), which
checks it against the tree digest on every load. Predictions validate their input against
the signature first.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from shipyard.artifacts import ArtifactStore
from shipyard.config import Settings
from shipyard.registry import flavors
from shipyard.registry.cache import cache_root, load_cached
from shipyard.registry.flavors.pickle import trust_list
from shipyard.registry.loaded import LoadedModel, load_directory
from shipyard.registry.models import ModelVersion
from shipyard.registry.refs import ModelRef, parse_ref
from shipyard.registry.service import resolve_ref
from shipyard.store import Store

__all__ = ["LoadedModel", "load_directory", "load_model", "load_version"]


def load_model(
    store: Store,
    artifacts: ArtifactStore,
    project: str,
    ref: str | ModelRef,
    settings: Settings,
    *,
    trusted_digests: Iterable[str] | None = None,
) -> LoadedModel:
    """Load the version ``ref`` names, in the calling (user's) process.

    skops files load only with types from ``settings.trusted_types`` and the built-in list.
    A pickle loads only if the sha256 of its bytes is in ``trusted_digests`` or
    ``settings.trusted_digests``: the loader's decision alone, whatever the registrant
    vouched for (``UnsafeModel``, naming the digest, otherwise). ``InvalidArgument`` for a
    trusted digest that is not 64 lowercase hex characters.
    """
    trusted = trust_list(settings.trusted_digests, trusted_digests)
    version = resolve_ref(store, project, ref if isinstance(ref, ModelRef) else parse_ref(ref))
    return _load(artifacts, version, settings, allow_pickle=True, trusted_digests=trusted)


def load_version(
    store: Store,
    artifacts: ArtifactStore,
    project: str,
    name: str,
    version: int,
    settings: Settings,
) -> LoadedModel:
    """Load for evaluation inside Shipyard: pickles are refused (the server never unpickles)."""
    mv = resolve_ref(store, project, ModelRef(name, version=version))
    return _load(artifacts, mv, settings, allow_pickle=False)


def _load(
    artifacts: ArtifactStore,
    version: ModelVersion,
    settings: Settings,
    *,
    allow_pickle: bool,
    trusted_digests: frozenset[str] = frozenset(),
) -> LoadedModel:
    options = flavors.LoadOptions(
        trusted_types=tuple(settings.trusted_types),
        allow_pickle=allow_pickle,
        trusted_digests=trusted_digests,
    )

    def fetch(version: ModelVersion, target: Path) -> None:
        artifacts.get_tree(version.tree_digest, target, durable=False)

    return load_cached(version, cache_root(settings.home), fetch, options)
