"""Pickle and joblib files: stored when the registrant names their digest, loaded only when
the loader trusts it.

Registering a pickle file takes ``trusted_digest=`` with its sha256: the registrant's
acknowledgement that they are storing a pickle, which decides nothing later. The registry
never unpickles. ``load`` does so only with ``LoadOptions.allow_pickle``, which ``load_model``
sets in the user's own process, and only when the sha256 of the very bytes it unpickles is
in ``LoadOptions.trusted_digests``: the loader's own ``trusted_digests=`` argument and
``SHIPYARD_TRUSTED_DIGESTS``. Nothing in the manifest counts as trust, since whoever could
register the version wrote it.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shipyard.artifacts.paths import is_digest
from shipyard.errors import DataCorruption, InvalidArgument, UnsafeModel
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
            f"trusted_digest={digest!r} (each loader then decides for itself whether to trust "
            "it)",
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
    # The registrant's digest is not recorded as trust: loading never reads it (see above).
    return Saved("pickle", "", (), {"file": FILE})


def trust_list(configured: Iterable[str], given: Iterable[str] | None) -> frozenset[str]:
    """The loader's trusted pickle digests: ``given`` (a ``load_model`` argument) and
    ``configured`` (``Settings.trusted_digests``, from ``SHIPYARD_TRUSTED_DIGESTS``).

    Raises ``InvalidArgument`` (field ``trusted_digests``) unless every one is a sha256 in
    64 lowercase hex characters.
    """
    return _checked(configured, "SHIPYARD_TRUSTED_DIGESTS") | _checked(given, "trusted_digests")


def _checked(digests: Iterable[str] | None, source: str) -> frozenset[str]:
    if digests is None:
        return frozenset()
    if isinstance(digests, str | bytes):
        # A lone string would be taken apart into 64 one-character "digests".
        raise InvalidArgument(
            f"{source} takes a list of sha256 digests, not one string: "
            f"trusted_digests=[{digests!r}]",
            field="trusted_digests",
        )
    checked = list(digests)
    for digest in checked:
        if not isinstance(digest, str) or not is_digest(digest):
            raise InvalidArgument(
                f"{source} holds {digest!r:.80}, which is not a sha256 digest: one is 64 "
                "lowercase hex characters, as the UnsafeModel error for the file shows it",
                field="trusted_digests",
            )
    return frozenset(checked)


class PickleFlavor:
    name = "pickle"

    def matches(self, obj: object) -> bool:
        return False  # objects are never pickled; only files named by their digest are stored

    def save(self, obj: Any, model_dir: Path) -> Saved:
        raise UnsafeModel("the registry never pickles a model object")

    def load(self, model_dir: Path, manifest: Manifest, options: LoadOptions) -> Any:
        path = model_file(model_dir, manifest, FILE)
        if not options.allow_pickle:
            raise UnsafeModel(
                "this model is a pickle; only load_model in your own process may load it"
            )
        # Hashed and unpickled from the same bytes, so the file cannot change in between.
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        name = path.relative_to(model_dir).as_posix()
        if digest != manifest.files[name].sha256:
            raise DataCorruption(f"{name} does not match its manifest entry", file=name)
        if digest not in options.trusted_digests:
            raise UnsafeModel(
                f"this model is a pickle with sha256 {digest}, and unpickling runs whatever "
                "code it contains; you have not trusted it (whoever registered it cannot trust "
                "it for you). If you trust this exact file, load it with "
                f'load_model(..., trusted_digests=["{digest}"]) or set '
                f"SHIPYARD_TRUSTED_DIGESTS={digest}; better, register it in a safe format",
                digest=digest,
            )
        import joblib

        # joblib reads plain pickles as well as its own (possibly compressed) format.
        return joblib.load(io.BytesIO(data))
