"""Two servers of one database with different artifact stores (issue 23).

A server started without the team's ``SHIPYARD_ARTIFACTS`` would write blobs where nobody
else looks. Real ``shipyard server`` processes on one PostgreSQL: the first records its
store; one with another store refuses to start, naming both; one with the same store (from
another home) starts; and a deliberate move is recorded with the documented variable.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from shipyard.server.readiness import recorded_identity
from tests.conftest import _pg_database, require_postgres
from tests.server.processes import running_server, server_env, start_server


@pytest.fixture
def shared_uri() -> Iterator[str]:
    require_postgres()
    yield from _pg_database()


def _refused(env: dict[str, str]) -> str:
    server = start_server(env, "--no-worker", wait=False)
    out = server.proc.communicate(timeout=120)[0]
    assert server.proc.returncode == 1, out
    [line] = [ln for ln in out.splitlines() if ln.startswith("error:")]
    assert "Traceback" not in out
    return line


def test_a_server_with_another_artifact_store_refuses_to_start(
    shared_uri: str, tmp_path: Path
) -> None:
    team, stray = tmp_path / "team-blobs", tmp_path / "stray-blobs"
    first = server_env(tmp_path / "a", shared_uri, SHIPYARD_ARTIFACTS=str(team))
    with running_server(first, "--no-worker") as a:
        assert httpx.get(f"{a.url}/api/v1/ready", timeout=30).status_code == 200

        line = _refused(server_env(tmp_path / "b", shared_uri, SHIPYARD_ARTIFACTS=str(stray)))
        assert f"this server's artifact store {stray} is not the one" in line
        assert f"the shared database records ({team})" in line
        assert f"SHIPYARD_ARTIFACTS={team}" in line and "SHIPYARD_ARTIFACT_STORE_MOVED" in line
    # (Two servers on one store start: tests/team/test_team_doc.py.)

    # A deliberate move is recorded: the server starts, and its store is the one now.
    moved = server_env(tmp_path / "b", shared_uri, SHIPYARD_ARTIFACTS=str(stray),
                       SHIPYARD_ARTIFACT_STORE_MOVED="1")
    with running_server(moved, "--no-worker") as b:
        assert httpx.get(f"{b.url}/api/v1/ready", timeout=30).status_code == 200
    engine = create_engine(shared_uri)
    try:
        with engine.connect() as conn:
            recorded = recorded_identity(conn)
    finally:
        engine.dispose()
    assert recorded is not None and recorded.location == str(stray)
