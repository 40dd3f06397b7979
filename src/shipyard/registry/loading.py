"""Loading a registered version into memory: ``load_model(ref)`` -> ``.predict(frame)``.

The version's directory is materialised from the artifact store (every blob verified
against the digest recorded in the version row) into a per-digest cache under
``$SHIPYARD_HOME/cache/models``. A load from the cache checks every file against the
manifest again before parsing it, so an edited cache is caught too. Predictions validate
their input against the signature first.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from shipyard.artifacts import ArtifactStore, BlobInfo
from shipyard.config import Settings
from shipyard.errors import DataCorruption, InvalidArgument, UnsafeModel
from shipyard.registry import flavors
from shipyard.registry.flavors._manifest import MANIFEST_NAME, FileEntry, Manifest, hash_file
from shipyard.registry.flavors.pickle import trust_list
from shipyard.registry.models import ModelVersion
from shipyard.registry.refs import ModelRef, parse_ref
from shipyard.registry.service import resolve_ref
from shipyard.registry.signature import Signature, to_frame
from shipyard.store import Store

log = logging.getLogger(__name__)


class LoadedModel:
    """A model ready to predict. ``model`` is the framework object (or adapter) itself."""

    def __init__(self, version: ModelVersion, manifest: Manifest, model: Any, path: Path) -> None:
        self.version = version
        self.manifest = manifest
        self.model = model
        self.path = path
        self.signature: Signature | None = manifest.signature

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def flavor(self) -> str:
        return self.manifest.flavor

    def prepare(self, data: Any) -> Any:
        """The input as the model receives it: validated, in signature order.

        Raises ``InvalidArgument`` naming the offending column and row.
        """
        if self.signature is None:
            return to_frame(data, None)
        return self.signature.validate(data)

    def predict(self, data: Any) -> Any:
        return self.model.predict(self.prepare(data))

    def predict_proba(self, data: Any) -> Any:
        method = getattr(self.model, "predict_proba", None)
        if method is None:
            from shipyard.errors import FailedPrecondition

            raise FailedPrecondition(f"{self.version.uri} has no predict_proba")
        return method(self.prepare(data))

    def input_example(self) -> Any:
        return flavors.read_input_example(self.path, self.manifest)

    def __repr__(self) -> str:
        return f"LoadedModel({self.version.uri!r}, flavor={self.flavor!r})"


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
    cache_root = settings.home / "cache" / "models"
    options = flavors.LoadOptions(
        trusted_types=tuple(settings.trusted_types),
        allow_pickle=allow_pickle,
        trusted_digests=trusted_digests,
    )
    path, fetched = materialise(artifacts, version.tree_digest, cache_root)
    try:
        return load_directory(version, path, options, fetched)
    except DataCorruption:
        # The cache copy was altered after it was fetched (the store's copy is verified
        # on every fetch): replace it once; if the fresh copy fails too, the error stands.
        log.warning("model cache entry %s is damaged; fetching it again", path)
        shutil.rmtree(path, ignore_errors=True)
        path, fetched = materialise(artifacts, version.tree_digest, cache_root)
        return load_directory(version, path, options, fetched)


def load_directory(
    version: ModelVersion,
    path: Path,
    options: flavors.LoadOptions,
    stored: Mapping[str, FileEntry] | None,
) -> LoadedModel:
    """``flavors.load`` for ``version``'s directory (local and remote mode alike); an
    ``UnsafeModel`` error names the version it refused."""
    try:
        manifest, model = flavors.load(path, options, stored=stored)
    except UnsafeModel as exc:
        raise UnsafeModel(f"{version.uri}: {exc.message}", field=exc.field, **exc.details
                          ) from None
    return LoadedModel(version, manifest, model, path)


def materialise(
    artifacts: ArtifactStore, tree_digest: str, cache_root: Path
) -> tuple[Path, dict[str, FileEntry] | None]:
    """The version's directory in the cache, fetched if absent, checked against the tree.

    Also returns the digests of the files when this call fetched them (each verified on
    the way), so the load need not hash them again; ``None`` for a cached copy, which the
    load verifies.
    """
    cache_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = cache_root / tree_digest
    expected = artifacts.read_tree_manifest(tree_digest)
    if target.is_dir():
        try:
            _check_against_tree(target, expected)
            return target, None
        except DataCorruption:
            # A damaged cache entry is replaced from the verified store, not trusted.
            shutil.rmtree(target, ignore_errors=True)
    fetched: dict[str, FileEntry] | None = None
    try:
        # Not fsynced: the cache can always be fetched again, and a copy a crash left short
        # fails the check on its next load and is replaced.
        tree = artifacts.get_tree(tree_digest, target, durable=False)
        fetched = {
            name: FileEntry(blob.digest, blob.size)
            for name, blob in tree.files.items()
            if name != MANIFEST_NAME
        }
    except (OSError, InvalidArgument):
        # Another process materialised the same version first; its copy is checked below.
        if not (target / MANIFEST_NAME).is_file():
            raise
    _check_against_tree(target, expected)
    return target, fetched


def _check_against_tree(target: Path, expected: Mapping[str, BlobInfo]) -> None:
    """Check the manifest file against the tree recorded in the store. The manifest in
    turn lists every other file's digest, which ``flavors.load`` checks."""
    blob = expected.get(MANIFEST_NAME)
    path = target / MANIFEST_NAME
    if blob is None:
        raise DataCorruption(f"the stored model has no {MANIFEST_NAME}", file=MANIFEST_NAME)
    if not path.is_file() or hash_file(path).sha256 != blob.digest:
        raise DataCorruption(
            f"{MANIFEST_NAME} in the model cache does not match the stored model",
            file=MANIFEST_NAME,
        )
