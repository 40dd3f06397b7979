"""Against a server on the same machine, the SDK finds the admin token by itself."""

from __future__ import annotations

from pathlib import Path

import pytest

import shipyard as sy
from shipyard.config import Settings
from shipyard.errors import PermissionDenied, Unauthenticated
from shipyard.sdk import session
from tests.server.live import live_server


def test_sdk_uses_the_credentials_file_of_a_local_server(home: Path, tmp_path: Path) -> None:
    settings = Settings.resolve(home=home, uri=f"sqlite:///{tmp_path / 's.db'}",
                                artifacts=str(tmp_path / "blobs"))
    with live_server(settings) as server:
        try:
            sy.init(home=home, uri=server.url, project="p")  # no token given
            with sy.start_run(experiment="e") as run:
                run.log_metric("x", 1.0)
            assert sy.get_run(run.id).metrics == {"x": 1.0}
            events = sy.list_audit_events(action="runs.")
            assert {e.action for e in events} >= {"runs.create", "runs.update"}
            assert all(e.actor == "admin" for e in events)
            sy.init(home=tmp_path / "elsewhere", uri=server.url, project="p")
            with pytest.raises(Unauthenticated):
                sy.get_run(run.id)
        finally:
            session.reset()


def test_sdk_uses_a_token_saved_by_login(home: Path, tmp_path: Path) -> None:
    from shipyard.sdk import identity

    settings = Settings.resolve(home=home, uri=f"sqlite:///{tmp_path / 's.db'}",
                                artifacts=str(tmp_path / "blobs"))
    with live_server(settings) as server:
        try:
            sy.init(home=home, uri=server.url, project="p")
            identity.create_user("carol", password="a long enough password")
            identity.grant("carol", "viewer", project="p")
            other_home = tmp_path / "carol-home"
            identity.login(server.url, "carol", "a long enough password", home=other_home)
            sy.init(home=other_home, uri=server.url, project="p")
            assert sy.search_runs().empty  # carol's saved token, viewer role
            with pytest.raises(PermissionDenied):
                sy.start_run(experiment="e")
        finally:
            session.reset()
