"""Model packaging: detect an object's flavor, save it in a safe format, load it back.

A packaged model is a directory holding the flavor's files and ``shipyard-model.json`` (the
manifest: flavor, framework, Python and package versions, signature, every file's sha256).
``package`` prepares one for the store (``Package``), ``save`` writes one to a directory;
``load`` returns a model only once every file has matched the manifest.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import DataCorruption, FailedPrecondition, InvalidArgument
from shipyard.registry.flavors._base import Flavor, LoadOptions, Saved
from shipyard.registry.flavors._files import ACCEPTED, save_file
from shipyard.registry.flavors._manifest import (
    MANIFEST_NAME,
    FileEntry,
    Manifest,
    check_entries,
    check_file_set,
    hash_tree,
    list_files,
    package_versions,
    verify_tree,
)
from shipyard.registry.flavors.composite import CompositeFlavor
from shipyard.registry.flavors.custom import CustomFlavor, CustomPredictor
from shipyard.registry.flavors.lightgbm import LightGBMFlavor
from shipyard.registry.flavors.onnx import OnnxFlavor
from shipyard.registry.flavors.pickle import PickleFlavor
from shipyard.registry.flavors.sklearn import SklearnFlavor
from shipyard.registry.flavors.xgboost import XGBoostFlavor
from shipyard.registry.signature import Signature, infer_signature, to_frame

__all__ = [
    "FLAVORS",
    "MANIFEST_NAME",
    "CustomPredictor",
    "FileEntry",
    "LoadOptions",
    "Manifest",
    "Package",
    "load",
    "package",
    "save",
]

# Detection order matters: a Pipeline ending in a booster is also an sklearn estimator.
FLAVORS: tuple[Flavor, ...] = (
    CompositeFlavor(),
    SklearnFlavor(),
    XGBoostFlavor(),
    LightGBMFlavor(),
    OnnxFlavor(),
    CustomFlavor(),
    PickleFlavor(),
)
_BY_NAME = {f.name: f for f in FLAVORS}
INPUT_EXAMPLE = "input_example.json"
MAX_EXAMPLE_ROWS = 20


@dataclass
class Package:
    """A model ready to store: its files, some still where the user keeps them, and all the
    manifest needs except the files' digests, which the caller learns while storing them
    (so every byte is read once). ``manifest`` completes it.
    """

    flavor: str
    saved: Saved
    files: dict[str, Path]  # name in the model directory -> file to read
    signature: Signature | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    input_example: str | None = None
    adopted: tuple[Manifest, bytes] | None = None  # a directory packaged earlier, as is

    def manifest(self, entries: Mapping[str, FileEntry]) -> tuple[Manifest, bytes]:
        """The manifest for these stored files, and its bytes. ``entries`` are the digests
        and sizes of ``files`` as they were actually stored."""
        if set(entries) != set(self.files):
            raise ValueError(f"entries for {sorted(entries)}, files {sorted(self.files)}")
        if self.adopted is not None:
            manifest, data = self.adopted
            for name in sorted(entries):
                if manifest.files.get(name) != entries[name]:
                    raise DataCorruption(
                        f"{name} does not match its manifest entry: the model files were "
                        "changed after saving, or while they were being registered",
                        file=name,
                    )
            return manifest, data
        manifest = Manifest(
            flavor=self.flavor,
            framework=self.saved.framework,
            framework_version=self.saved.framework_version,
            files=dict(entries),
            packages=package_versions(self.saved.packages),
            signature=self.signature,
            options=self.saved.options,
            metadata=self.metadata,
            input_example=self.input_example,
        )
        return manifest, manifest.encode()


def package(
    model_or_path: Any,
    model_dir: Path,
    *,
    signature: Signature | Mapping[str, Any] | None = None,
    input_example: Any = None,
    metadata: Mapping[str, Any] | None = None,
    trusted_digest: str | None = None,
) -> Package:
    """Package ``model_or_path``, writing what must be written into the empty directory
    ``model_dir``; a model file given by path is left where it is.

    Raises ``InvalidArgument`` for an unsupported object or metadata that is not JSON,
    ``UnsafeModel`` for a pickle file without a matching ``trusted_digest``.
    """
    clean_metadata = dict(metadata or {})
    sig = _signature(signature, input_example)
    _check_json({"metadata": clean_metadata, "signature": sig and sig.to_dict()})
    external: dict[str, Path] = {}
    if isinstance(model_or_path, str | Path):
        source = Path(model_or_path)
        if source.is_dir():
            return _adopt_directory(source, trusted_digest)
        flavor_name, saved, external = save_file(source, model_dir, trusted_digest)
    else:
        flavor = next((f for f in FLAVORS if f.matches(model_or_path)), None)
        if flavor is None:
            raise InvalidArgument(
                f"cannot register a {type(model_or_path).__module__}."
                f"{type(model_or_path).__qualname__}: pass {ACCEPTED}",
                field="model",
            )
        flavor_name, saved = flavor.name, flavor.save(model_or_path, model_dir)
    example_file = None
    if input_example is not None:
        example_file = INPUT_EXAMPLE
        frame = to_frame(input_example, None).head(MAX_EXAMPLE_ROWS)
        text = frame.to_json(orient="split", date_format="iso", index=False)
        (model_dir / INPUT_EXAMPLE).write_text(text, encoding="utf-8")
    files = {name: model_dir / name for name in list_files(model_dir)}
    return Package(
        flavor=flavor_name,
        saved=saved,
        files={**files, **external},
        signature=sig,
        metadata=clean_metadata,
        input_example=example_file,
    )


def save(
    model_or_path: Any,
    model_dir: Path,
    *,
    signature: Signature | Mapping[str, Any] | None = None,
    input_example: Any = None,
    metadata: Mapping[str, Any] | None = None,
    trusted_digest: str | None = None,
) -> Manifest:
    """Package ``model_or_path`` into the empty directory ``model_dir`` as a complete model
    directory (every file copied in, manifest written); return its manifest.

    Raises as ``package`` does.
    """
    pkg = package(
        model_or_path,
        model_dir,
        signature=signature,
        input_example=input_example,
        metadata=metadata,
        trusted_digest=trusted_digest,
    )
    for name, path in pkg.files.items():
        target = model_dir / name
        if path != target:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    manifest, data = pkg.manifest(hash_tree(model_dir))
    (model_dir / MANIFEST_NAME).write_bytes(data)
    return manifest


def load(
    model_dir: Path, options: LoadOptions, *, stored: Mapping[str, FileEntry] | None = None
) -> tuple[Manifest, Any]:
    """Verify a packaged model directory and load it; ``DataCorruption`` on any mismatch.

    ``stored`` are the digests of files the caller has just written from verified bytes:
    the manifest is compared with them instead of hashing every file again. Otherwise
    every file is hashed before a flavor parses a byte, for every flavor: XGBoost's own
    parser crashes the process on a damaged file rather than raising.
    """
    manifest = Manifest.read(model_dir)
    flavor = _BY_NAME.get(manifest.flavor)
    if flavor is None:
        raise FailedPrecondition(
            f"unknown model flavor {manifest.flavor!r}: it needs a newer Shipyard "
            f"(this one knows {sorted(_BY_NAME)})"
        )
    if stored is not None:
        check_entries(manifest, stored)
    else:
        verify_tree(model_dir, manifest)
    return manifest, flavor.load(model_dir, manifest, options)


def read_input_example(model_dir: Path, manifest: Manifest) -> Any:
    import pandas as pd

    if manifest.input_example is None or manifest.input_example not in manifest.files:
        return None
    data = json.loads((model_dir / manifest.input_example).read_text(encoding="utf-8"))
    return pd.DataFrame(data["data"], columns=data["columns"])


def _signature(
    signature: Signature | Mapping[str, Any] | None, input_example: Any
) -> Signature | None:
    if isinstance(signature, Signature):
        return signature
    if signature is not None:
        return Signature.from_dict(signature)
    if input_example is not None:
        return infer_signature(input_example)
    return None


def _adopt_directory(source: Path, trusted: str | None) -> Package:
    """Register a directory packaged earlier (by the SDK, before an upload). Its files are
    compared with the manifest as they are stored (``Package.manifest``)."""
    try:
        data = (source / MANIFEST_NAME).read_bytes()
    except FileNotFoundError:
        raise InvalidArgument(
            f"{source} has no {MANIFEST_NAME}: pass a model file or object instead",
            field="model",
        ) from None
    manifest = Manifest.from_bytes(data)
    check_file_set(source, manifest)
    # Sizes now, digests as the files are stored: a mismatch caught here stores nothing.
    for name, entry in sorted(manifest.files.items()):
        if (source / name).stat().st_size != entry.size:
            raise DataCorruption(
                f"{name} is not the size its manifest records: the model files were changed "
                "after saving",
                file=name,
            )
    if manifest.flavor not in _BY_NAME:
        raise InvalidArgument(f"unknown model flavor {manifest.flavor!r}", field="model")
    if manifest.flavor == "pickle":
        from shipyard.registry.flavors.pickle import FILE, check_trust

        name = str(manifest.options.get("file", FILE))
        if name not in manifest.files:
            raise DataCorruption(f"the manifest names {name!r} but does not list it")
        check_trust(manifest.files[name].sha256, trusted, name)
    saved = Saved(manifest.framework, manifest.framework_version, (), manifest.options)
    return Package(
        flavor=manifest.flavor,
        saved=saved,
        files={name: source / name for name in manifest.files},
        adopted=(manifest, data),
    )


def _check_json(metadata: Mapping[str, Any]) -> None:
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"model metadata must be JSON (strings, numbers, lists, objects): {exc}",
            field="metadata",
        ) from None
