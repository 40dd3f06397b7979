"""A registered version loaded into memory: ``.predict(frame)`` behind its signature.

Store-free, so the HTTP client, local mode and (later) serving replicas share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipyard.errors import FailedPrecondition, UnsafeModel
from shipyard.registry import flavors
from shipyard.registry.flavors._manifest import FileEntry, Manifest
from shipyard.registry.models import ModelVersion
from shipyard.registry.signature import Signature, to_frame


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
            raise FailedPrecondition(f"{self.version.uri} has no predict_proba")
        return method(self.prepare(data))

    def input_example(self) -> Any:
        return flavors.read_input_example(self.path, self.manifest)

    def __repr__(self) -> str:
        return f"LoadedModel({self.version.uri!r}, flavor={self.flavor!r})"


def load_directory(
    version: ModelVersion,
    path: Path,
    options: flavors.LoadOptions,
    stored: Mapping[str, FileEntry] | None,
) -> LoadedModel:
    """``flavors.load`` for ``version``'s directory; an ``UnsafeModel`` error names the
    version it refused. ``stored``: the files' digests when the caller has just verified
    them (else the load hashes each file against the manifest)."""
    try:
        manifest, model = flavors.load(path, options, stored=stored)
    except UnsafeModel as exc:
        raise UnsafeModel(f"{version.uri}: {exc.message}", field=exc.field, **exc.details
                          ) from None
    return LoadedModel(version, manifest, model, path)
