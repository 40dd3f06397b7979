"""Trusting a pickle is the loader's decision, never the registrant's (DESIGN.md 5 and 6).

The attack: an editor registers a pickle and vouches for it with ``trusted_digest=``; a
viewer's ``sy.load_model("models:/churn@production")`` used to run its payload because the
loader believed the digest the registrant wrote into the manifest. Here the payload only
creates a marker file, so whether it ran is a file that exists or not.

Every test runs in local mode and in remote mode (a real server in this process). This
module unpickles on purpose, in the loader, so it replaces the suite's module-wide tripwire:
everything the server does (the upload, alias moves, the download) runs under a tripwire
of its own, and the loader's refusal is checked to come before any unpickling too.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import shipyard as sy
from shipyard.config import Settings
from shipyard.errors import InvalidArgument, UnsafeModel
from shipyard.registry import flavors
from shipyard.registry.flavors import MANIFEST_NAME, LoadOptions
from shipyard.sdk import session
from shipyard.security.tripwire import Tripwire, deserialization_tripwire
from tests.server.conftest import make_user
from tests.server.live import live_server

PROJECT = "churn-team"


@pytest.fixture(scope="module", autouse=True)
def server_tripwire() -> Iterator[Tripwire | None]:
    """Overrides the suite's module-wide tripwire (see the module docstring)."""
    yield None


@contextmanager
def no_unpickling() -> Iterator[None]:
    """Fail if anything in this process (server or loader) unpickles inside the block."""
    with deserialization_tripwire() as wire:
        yield
    wire.assert_untripped()


class _Payload:
    """Unpickling this creates ``marker``: the code a malicious pickle would run, made
    harmless."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


@dataclass
class Team:
    """Two people on one project: ``editor()`` and ``viewer()`` switch the SDK to them.

    The viewer has a home (and model cache) of their own, as on another machine.
    """

    editor: Callable[[], None]
    viewer: Callable[[], None]


@pytest.fixture(params=["local", "remote"])
def team(request: pytest.FixtureRequest, store_uri: str, tmp_path: Path, home: Path
         ) -> Iterator[Team]:
    viewer_home = tmp_path / "viewer-home"
    if request.param == "local":
        blobs = str(tmp_path / "blobs")

        def local(where: Path) -> Callable[[], None]:
            return lambda: _init(home=where, uri=store_uri, artifacts=blobs, project=PROJECT)

        yield Team(editor=local(home), viewer=local(viewer_home))
    else:
        settings = Settings.resolve(home=home, uri=store_uri, artifacts=str(tmp_path / "blobs"),
                                    environ={})
        with live_server(settings) as server:
            with no_unpickling(), httpx.Client(
                base_url=server.url, timeout=30.0,
                headers={"Authorization": f"Bearer {server.token}"},
            ) as admin:
                editor = make_user(admin, "eve", project=PROJECT, role="editor")
                viewer = make_user(admin, "vic", project=PROJECT, role="viewer")

            def remote(where: Path, token: str) -> Callable[[], None]:
                return lambda: _init(home=where, uri=server.url, project=PROJECT, token=token)

            yield Team(editor=remote(home, editor), viewer=remote(viewer_home, viewer))
    session.reset()


def _init(**options: Any) -> None:
    session.reset()
    sy.init(**options)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _register_payload(team: Team, tmp_path: Path) -> tuple[Path, str]:
    """The editor registers the payload as churn@production, vouching for it; returns the
    marker the payload would create and the pickle's digest."""
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "churn.pkl"
    evil.write_bytes(pickle.dumps(_Payload(marker)))
    digest = _digest(evil)
    team.editor()
    with no_unpickling():
        mv = sy.register_model("churn", evil, trusted_digest=digest)
        sy.set_alias("churn", "production", mv.version)
    assert mv.flavor == "pickle"
    assert not marker.exists()
    return marker, digest


def _register_regressor(team: Team, tmp_path: Path) -> tuple[LinearRegression, str]:
    model = LinearRegression().fit(pd.DataFrame({"x": [0.0, 1.0, 2.0]}), [1.0, 3.0, 5.0])
    path = tmp_path / "legacy.joblib"
    joblib.dump(model, path)
    digest = _digest(path)
    team.editor()
    with no_unpickling():
        sy.register_model("legacy", path, trusted_digest=digest)
    return model, digest


def test_a_registrants_digest_does_not_make_the_viewer_run_the_pickle(
    team: Team, tmp_path: Path
) -> None:
    marker, digest = _register_payload(team, tmp_path)
    team.viewer()
    refused: UnsafeModel | None = None
    try:
        sy.load_model("models:/churn@production")
    except UnsafeModel as exc:
        refused = exc
    assert not marker.exists(), "the registrant's trusted_digest made the viewer unpickle"
    assert refused is not None
    # The message says exactly how this loader can trust the file, if it chooses to.
    assert refused.details["digest"] == digest
    assert f'trusted_digests=["{digest}"]' in str(refused)
    assert f"SHIPYARD_TRUSTED_DIGESTS={digest}" in str(refused)
    # Refused before anything is unpickled, now from the viewer's cache as well.
    with no_unpickling(), pytest.raises(UnsafeModel, match=digest):
        sy.load_model("churn@production")
    assert not marker.exists()


def test_the_editors_own_load_needs_trust_too(team: Team, tmp_path: Path) -> None:
    # Registering with trusted_digest= only says "I know this is a pickle"; it trusts
    # nothing at load time, not even in the registrant's own process.
    marker, _ = _register_payload(team, tmp_path)
    with no_unpickling(), pytest.raises(UnsafeModel):
        sy.load_model("churn:1")
    assert not marker.exists()


def test_the_loader_trusts_a_digest_by_argument(team: Team, tmp_path: Path) -> None:
    model, digest = _register_regressor(team, tmp_path)
    team.viewer()
    with no_unpickling(), pytest.raises(UnsafeModel):
        sy.load_model("legacy:1", trusted_digests=["0" * 64])  # another file's digest
    loaded = sy.load_model("legacy:1", trusted_digests=[digest])
    frame = pd.DataFrame({"x": [3.0, 4.0]})
    np.testing.assert_allclose(loaded.predict(frame), model.predict(frame))
    # Trust is per load: the next load without it is refused again.
    with no_unpickling(), pytest.raises(UnsafeModel):
        sy.load_model("legacy:1")


def test_trusting_the_payload_runs_it_because_the_loader_chose_to(
    team: Team, tmp_path: Path
) -> None:
    marker, digest = _register_payload(team, tmp_path)
    team.viewer()
    sy.load_model("models:/churn@production", trusted_digests=(d for d in [digest]))
    assert marker.exists()


def test_the_loader_trusts_a_digest_from_its_configuration(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, digest = _register_regressor(team, tmp_path)
    monkeypatch.setenv("SHIPYARD_TRUSTED_DIGESTS", f"{'1' * 64}, {digest.upper()}")
    team.viewer()
    assert digest in Settings.resolve().trusted_digests
    loaded = sy.load_model("legacy:1")
    frame = pd.DataFrame({"x": [3.0]})
    np.testing.assert_allclose(loaded.predict(frame), model.predict(frame))
    # Configuration and argument add up.
    assert sy.load_model("legacy:1", trusted_digests=["2" * 64]).flavor == "pickle"


# Each is given after the genuine digest, so one bad entry spoils the whole list.
INVALID: dict[str, Any] = {
    "uppercase": ["A" * 64],
    "short": ["ab" * 31],
    "not hex": ["z" * 64],
    "empty": [""],
    "newline": ["0" * 64 + "\n"],
    "not a string": [64],
}


def test_invalid_trusted_digests_are_refused(team: Team, tmp_path: Path) -> None:
    marker, digest = _register_payload(team, tmp_path)
    team.viewer()
    for case, bad in INVALID.items():
        with no_unpickling(), pytest.raises(InvalidArgument) as info:
            sy.load_model("churn:1", trusted_digests=[digest, *bad])
        assert info.value.field == "trusted_digests", case
    # One string is not a list of them (it would be 64 one-character digests).
    with no_unpickling(), pytest.raises(InvalidArgument, match="not one string") as info:
        sy.load_model("churn:1", trusted_digests=digest)
    assert info.value.field == "trusted_digests"
    assert not marker.exists()


def test_an_invalid_configured_digest_is_refused(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker, _ = _register_payload(team, tmp_path)
    monkeypatch.setenv("SHIPYARD_TRUSTED_DIGESTS", "not-a-digest")
    team.viewer()
    with no_unpickling(), pytest.raises(InvalidArgument, match="SHIPYARD_TRUSTED_DIGESTS") as info:
        sy.load_model("churn:1")
    assert info.value.field == "trusted_digests"
    assert not marker.exists()


def test_a_manifest_that_vouches_for_its_pickle_is_not_trusted(
    team: Team, tmp_path: Path
) -> None:
    # Older versions recorded the registrant's digest in the manifest and trusted it on
    # load; such a version (or a directory forged to look like one) is refused all the same.
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "churn.pkl"
    evil.write_bytes(pickle.dumps(_Payload(marker)))
    digest = _digest(evil)
    packaged = tmp_path / "packaged"
    packaged.mkdir()
    flavors.save(evil, packaged, trusted_digest=digest)
    manifest = json.loads((packaged / MANIFEST_NAME).read_text())
    manifest["options"]["trusted_digest"] = digest
    (packaged / MANIFEST_NAME).write_text(json.dumps(manifest))
    team.editor()
    with no_unpickling():
        sy.register_model("churn", packaged, trusted_digest=digest)
    team.viewer()
    with pytest.raises(UnsafeModel, match=digest):
        sy.load_model("churn:1")
    assert not marker.exists()


def test_only_load_model_may_unpickle_even_a_trusted_digest(tmp_path: Path) -> None:
    # Evaluation inside Shipyard, which may run in the server, never unpickles.
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "churn.pkl"
    evil.write_bytes(pickle.dumps(_Payload(marker)))
    digest = _digest(evil)
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    manifest = flavors.save(evil, model_dir, trusted_digest=digest)
    assert "trusted_digest" not in manifest.options
    with no_unpickling():
        with pytest.raises(UnsafeModel, match="only load_model"):
            flavors.load(model_dir, LoadOptions(trusted_digests=frozenset({digest})))
        with pytest.raises(UnsafeModel, match=digest):
            flavors.load(model_dir, LoadOptions(allow_pickle=True))
    assert not marker.exists()
    flavors.load(model_dir, LoadOptions(allow_pickle=True, trusted_digests=frozenset({digest})))
    assert marker.exists()
