"""``X-Forwarded-For`` is ignored unless trusted proxies are configured (security item 8).

uvicorn trusts the header from 127.0.0.1 by default, so a client on the server's machine could
rotate it to dodge the login throttle (per client and name) and write any address it liked
into the audit log. ``shipyard server`` turns proxy headers off unless
``--forwarded-allow-ips`` names the proxies that may set them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app as cli_app
from shipyard.config import Settings
from shipyard.server import run
from shipyard.store import open_store
from tests.security._served import Served, served
from tests.security._support import audit_rows
from tests.server.conftest import client

PASSWORD = "a long passphrase"


def _settings(home: Path) -> Settings:
    settings = Settings.resolve(home=home, uri=f"sqlite:///{home / 'db.sqlite'}",
                                artifacts=str(home / "blobs"), environ={})
    return dataclasses.replace(settings, extra={})


def _user(live: Served, name: str) -> None:
    with client(live, live.token) as admin:
        response = admin.post("/api/v1/users", json={"name": name, "password": PASSWORD})
        assert response.status_code == 201, response.text


def _login(http: httpx.Client, name: str, forwarded_for: str) -> int:
    response = http.post("/api/v1/login", json={"name": name, "password": "wrong, wrong, wrong"},
                         headers={"X-Forwarded-For": forwarded_for})
    return response.status_code


def _login_clients(live: Served) -> list[str]:
    store = open_store(live.settings.uri, cached=False)
    try:
        return [row["client"] for row in audit_rows(store, "auth.login")]
    finally:
        store.dispose()


def test_a_rotating_forwarded_for_is_still_rate_limited(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with served(_settings(tmp_path), monkeypatch) as live:
        _user(live, "alice")
        with client(live, None) as http:
            statuses = [_login(http, "alice", f"203.0.113.{i}") for i in range(1, 8)]
        # Five attempts a minute per client and name; the forged addresses change nothing.
        assert statuses == [401] * 5 + [429] * 2
        assert _login_clients(live) == ["127.0.0.1"] * 5
        assert live.options["proxy_headers"] is False


def test_configured_proxies_are_believed(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with served(_settings(tmp_path), monkeypatch,
                forwarded_allow_ips=("127.0.0.1",)) as live:
        assert live.options["proxy_headers"] is True
        assert live.options["forwarded_allow_ips"] == ["127.0.0.1"]
        _user(live, "bob")
        with client(live, None) as http:
            assert _login(http, "bob", "203.0.113.9") == 401
        assert _login_clients(live) == ["203.0.113.9"]


def test_a_proxy_elsewhere_is_not_believed_from_here(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with served(_settings(tmp_path), monkeypatch, forwarded_allow_ips=("10.0.0.0/8",)) as live:
        _user(live, "carol")
        with client(live, None) as http:
            assert _login(http, "carol", "203.0.113.9") == 401
        assert _login_clients(live) == ["127.0.0.1"]


def test_the_command_line_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(run, "serve", lambda settings, **options: calls.append(options))
    runner = CliRunner()
    base = ["--home", str(tmp_path), "server"]
    assert runner.invoke(cli_app, base).exit_code == 0
    assert calls[-1]["forwarded_allow_ips"] == ()
    result = runner.invoke(cli_app, [*base, "--forwarded-allow-ips", "10.0.0.1, 192.168.0.0/16"])
    assert result.exit_code == 0, result.output
    assert calls[-1]["forwarded_allow_ips"] == ("10.0.0.1", "192.168.0.0/16")
    bad = runner.invoke(cli_app, [*base, "--forwarded-allow-ips", "proxy.example.com"])
    assert bad.exit_code == 2
    assert "--forwarded-allow-ips" in bad.output and "proxy.example.com" in bad.output
    assert len(calls) == 2
