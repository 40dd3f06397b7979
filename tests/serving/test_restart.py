"""Endpoints survive a restart of ``shipyard server`` (a real process): the desired state is
in the store and the new server starts the replicas again; the old ones end with it."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from shipyard.config import Settings
from shipyard.security.credentials import read_credentials
from tests.server.processes import running_server, server_env
from tests.serving.test_replicas import P, register


def test_deployments_survive_a_server_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    uri = f"sqlite:///{tmp_path / 'shipyard.db'}"
    settings = Settings.resolve(home=home, uri=uri, artifacts=str(home / "artifacts"),
                                project="p", environ={})
    register(home, settings)
    env = server_env(home, uri)
    with running_server(env, "--no-worker") as server, httpx.Client(
            base_url=server.url, timeout=120,
            headers={"Authorization": f"Bearer {read_credentials(home)}"}) as http:
        http.post(f"{P}/endpoints", json={"name": "ep"}).raise_for_status()
        http.post(f"{P}/endpoints/ep/deployments",
                  json={"model": "lead", "version": 2}).raise_for_status()
        first = http.post(f"{P}/endpoints/ep:predict", json={"instances": [[4, 1.0]]})
        assert first.status_code == 200 and round(first.json()["predictions"][0], 6) == 8.0
        (old,) = http.get(f"{P}/endpoints/ep/replicas").json()
    # Stopped: its replica ended with it.
    deadline = time.monotonic() + 10
    while Path(f"/proc/{old['pid']}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{old['pid']}").exists()

    with running_server(env, "--no-worker") as server, httpx.Client(
            base_url=server.url, timeout=120,
            headers={"Authorization": f"Bearer {read_credentials(home)}"}) as http:
        started = time.monotonic()
        while True:
            answer = http.post(f"{P}/endpoints/ep:predict", json={"instances": [[4, 1.0]]})
            if answer.status_code == 200 or time.monotonic() - started > 120:
                break
            assert answer.status_code == 503, answer.text  # its replica is still loading
            time.sleep(0.1)
        assert answer.status_code == 200, answer.text
        assert answer.json()["deployedModelId"] == "lead:2"
        assert round(answer.json()["predictions"][0], 6) == 8.0
        (new,) = http.get(f"{P}/endpoints/ep/replicas").json()
        assert new["pid"] != old["pid"] and new["state"] == "ready"
