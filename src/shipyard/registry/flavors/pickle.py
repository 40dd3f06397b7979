"""Pickle and joblib files: stored only when the user trusts that exact file's sha256.

The registry never unpickles. ``load`` does so only with ``LoadOptions.allow_pickle``, which
``load_model`` sets in the user's own process, and only after the file's digest is checked
again against the digest the user trusted at registration.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path
from typing import Any

from shipyard.errors import DataCorruption, UnsafeModel
from shipyard.registry.flavors._base import LoadOptions, Saved, model_file
from shipyard.registry.flavors._manifest import Manifest, hash_file

FILE = "model.pkl"
SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav", ".pck")


def looks_like_pickle(path: Path) -> bool:
    if path.suffix.lower() in SUFFIXES:
        return True
    with path.open("rb") as f:
        head = f.read(2)
    # Protocol 2+ pickles start with PROTO (0x80) then the protocol number.
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def check_trust(digest: str, trusted_digest: str | None, name: str) -> None:
    if trusted_digest is None:
        raise UnsafeModel(
            f"{name} is a pickle, and loading a pickle runs whatever code it contains. Save "
            "the model in a safe format, or, if you trust this exact file, register it with "
            f"trusted_digest={digest!r}",
            digest=digest,
        )
    if trusted_digest.lower() != digest:
        raise UnsafeModel(
            f"{name} has sha256 {digest}, not the trusted digest {trusted_digest}",
            digest=digest,
        )


def save_trusted(source: Path, model_dir: Path, trusted_digest: str | None) -> Saved:
    digest = hash_file(source).sha256
    check_trust(digest, trusted_digest, source.name)
    shutil.copyfile(source, model_dir / FILE)
    return Saved("pickle", "", (), {"file": FILE, "trusted_digest": digest})


class PickleFlavor:
    name = "pickle"

    def matches(self, obj: object) -> bool:
        return False  # objects are never pickled; only files the user trusted are stored

    def save(self, obj: Any, model_dir: Path) -> Saved:
        raise UnsafeModel("the registry never pickles a model object")

    def load(self, model_dir: Path, manifest: Manifest, options: LoadOptions) -> Any:
        path = model_file(model_dir, manifest, FILE)
        if not options.allow_pickle:
            raise UnsafeModel(
                "this model is a pickle; only load_model in your own process may load it"
            )
        trusted = str(manifest.options.get("trusted_digest", ""))
        # Hashed and unpickled from the same bytes, so the file cannot change in between.
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != trusted:
            raise DataCorruption(f"{path.name} does not match its trusted digest {trusted}")
        import joblib

        # joblib reads plain pickles as well as its own (possibly compressed) format.
        return joblib.load(io.BytesIO(data))
