"""The access log: one line per request through ``logging``, with the request id (also
sent back as X-Request-ID and recorded in the request's audit rows), principal, route,
status and latency."""

from __future__ import annotations

import logging
import time

import httpx
import pytest
from sqlalchemy import select

from shipyard.store import Store
from shipyard.store.schema import audit_log
from tests.server.conftest import client
from tests.server.live import LiveServer

ACCESS = "shipyard.server.access"


def _line(caplog: pytest.LogCaptureFixture, request_id: str) -> logging.LogRecord:
    # The line is written once the response has been sent, so the client may see the
    # response a moment before the server's thread logs it.
    deadline = time.monotonic() + 5
    while True:
        found = [r for r in caplog.records
                 if r.name == ACCESS and getattr(r, "request_id", None) == request_id]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert len(found) == 1, [r.getMessage() for r in caplog.records if r.name == ACCESS]
    return found[0]


def test_each_request_is_logged_with_its_id_principal_route_status_and_latency(
    live: LiveServer, admin: httpx.Client, project: str, live_store: Store,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)  # for the whole test
    response = admin.post(f"/api/v1/projects/{project}/experiments",
                          json={"name": "logged"})
    assert response.status_code in (200, 201), response.text
    request_id = response.headers["x-request-id"]
    record = _line(caplog, request_id)
    assert record.levelno == logging.INFO
    assert record.principal == "admin"  # type: ignore[attr-defined]
    assert record.method == "POST"  # type: ignore[attr-defined]
    assert record.route == "/api/v1/projects/{project}/experiments"  # type: ignore[attr-defined]
    assert record.status == response.status_code  # type: ignore[attr-defined]
    assert 0 <= record.latency_ms < 30_000  # type: ignore[attr-defined]
    message = record.getMessage()
    assert f"request_id={request_id}" in message and "principal=admin" in message
    assert f"status={response.status_code}" in message and "latency_ms=" in message
    # The audit row of the change carries the same id.
    with live_store.read() as conn:
        actions = conn.execute(select(audit_log.c.action)
                               .where(audit_log.c.request_id == request_id)).scalars().all()
    assert actions == ["experiments.create"]


def test_refusals_and_unknown_routes_are_logged_without_secrets(
    live: LiveServer, anon: httpx.Client, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)  # for the whole test
    refused = anon.get("/api/v1/whoami")
    missing = anon.get("/no/such/route")
    link = anon.get("/login/secret-one-time-code")
    with client(live, "sy_000000000000_" + "x" * 43) as bad:
        denied = bad.get("/api/v1/whoami")
    assert (refused.status_code, missing.status_code, denied.status_code) == (401, 404, 401)
    line = _line(caplog, refused.headers["x-request-id"])
    assert (line.principal, line.route, line.status) == (  # type: ignore[attr-defined]
        "-", "/api/v1/whoami", 401)
    line = _line(caplog, missing.headers["x-request-id"])
    assert (line.route, line.status) == ("-", 404)  # type: ignore[attr-defined]
    line = _line(caplog, link.headers["x-request-id"])
    assert line.route == "/login/{code}"  # type: ignore[attr-defined]
    assert "secret-one-time-code" not in caplog.text
    line = _line(caplog, denied.headers["x-request-id"])
    assert line.principal == "-" and line.status == 401  # type: ignore[attr-defined]


def test_request_ids_are_the_servers_own(
    live: LiveServer, anon: httpx.Client, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)  # for the whole test
    first = anon.get("/api/v1/health", headers={"X-Request-ID": "chosen-by-caller"})
    second = anon.get("/api/v1/health")
    ids = {first.headers["x-request-id"], second.headers["x-request-id"]}
    assert len(ids) == 2 and "chosen-by-caller" not in ids
    assert _line(caplog, first.headers["x-request-id"]).principal == "anonymous"  # type: ignore[attr-defined]


def test_shipyard_server_sends_the_log_to_stderr_unless_logging_is_set_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from shipyard.server.run import log_to_stderr

    package = logging.getLogger("shipyard")
    monkeypatch.setattr(package, "handlers", [])
    monkeypatch.setattr(package, "level", logging.NOTSET)
    monkeypatch.setattr(logging.getLogger(), "handlers", [logging.NullHandler()])
    log_to_stderr()  # an application that configured logging keeps its own setup
    assert package.handlers == []
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    log_to_stderr()
    log_to_stderr()  # once only
    assert len(package.handlers) == 1 and package.level == logging.INFO
    logging.getLogger(ACCESS).info("request_id=%s status=%d", "abc", 200)
    assert "shipyard.server.access request_id=abc status=200" in capsys.readouterr().err


def test_a_public_route_s_audit_rows_carry_the_request_id(
    live: LiveServer, anon: httpx.Client, live_store: Store,
) -> None:
    from shipyard.server.api.identity import issue_login_link

    link = issue_login_link(live.app.state.shipyard, base_url=live.url)
    response = anon.get(link.removeprefix(live.url))
    assert response.status_code == 303
    request_id = response.headers["x-request-id"]
    with live_store.read() as conn:
        rows = conn.execute(select(audit_log.c.action, audit_log.c.actor)
                            .where(audit_log.c.request_id == request_id)).all()
    assert [tuple(r) for r in rows] == [("tokens.create", "admin")]
