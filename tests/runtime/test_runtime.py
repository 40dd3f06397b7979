"""``open_runtime``: one place that opens the store, the artifact store and the hooks, used
by the server, the SDK's local mode, the worker and the quick start."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection

from shipyard.config import Settings
from shipyard.errors import InvalidArgument
from shipyard.runtime import Hooks, open_runtime
from shipyard.store import open_store
from shipyard.store.migrate import current_revision, head_revision


def _settings(tmp_path: Path, uri: str | None = None) -> Settings:
    home = tmp_path / "home"
    return Settings.resolve(home=home, uri=uri, artifacts=str(tmp_path / "blobs"), environ={})


def test_opens_a_migrated_store_and_the_artifact_store(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with open_runtime(settings, cached=False) as runtime:
        assert runtime.settings is settings
        assert current_revision(runtime.store) == head_revision()
        blob = runtime.artifacts.put_bytes(b"hello")
        assert runtime.artifacts.get_bytes(blob.digest) == b"hello"
        assert (tmp_path / "home").is_dir()  # the SQLite file's home is made (0700)
        assert runtime.owns_store


def test_a_cached_runtime_shares_the_process_store_and_close_leaves_it(tmp_path: Path
                                                                       ) -> None:
    settings = _settings(tmp_path)
    runtime = open_runtime(settings)
    assert runtime.store is open_store(settings.uri)
    assert open_runtime(settings).store is runtime.store
    runtime.close()
    with runtime.store.read() as conn:  # still usable by the process's other users
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1


def test_an_own_store_is_released_on_close(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    runtime = open_runtime(settings, cached=False)
    assert runtime.store is not open_store(settings.uri)
    with runtime.store.read():
        pass
    assert runtime.store.engine.pool.checkedin() == 1
    runtime.close()
    assert runtime.store.engine.pool.checkedin() == 0


def test_a_server_url_is_refused_naming_the_uri(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as caught:
        open_runtime(_settings(tmp_path, uri="http://127.0.0.1:8080"))
    assert caught.value.field == "uri"


def test_hooks_combine_the_deployment_lookups() -> None:
    assert Hooks().deployments() is None

    def one(conn: Connection, model_id: str) -> set[int]:
        return {1}

    def two(conn: Connection, model_id: str) -> set[int]:
        return {2, 3}

    assert Hooks((one,)).deployments() is one
    both = Hooks((one, two)).deployments()
    assert both is not None and both(None, "m") == {1, 2, 3}  # type: ignore[arg-type]


def test_the_server_and_the_sdk_stand_on_a_runtime(tmp_path: Path) -> None:
    from shipyard.sdk.local import LocalSession
    from shipyard.server.app import create_app

    settings = _settings(tmp_path)
    runtime = open_runtime(settings, deployment_lookups=[lambda conn, model_id: {7}])
    app = create_app(settings, runtime=runtime, worker=False)
    assert app.state.shipyard.runtime is runtime
    assert app.state.shipyard.store is runtime.store
    assert app.state.shipyard.deployments is runtime.hooks.deployments()
    session = LocalSession(settings)
    assert session.runtime.store is runtime.store  # one store per URI in the process
    assert session.runtime.artifacts is runtime.artifacts
