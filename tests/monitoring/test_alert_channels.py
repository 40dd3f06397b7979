"""Alert channels, against real servers on 127.0.0.1: a webhook (an HTTP server; the SSRF
guard allows 127.0.0.1 only because the settings list it), email (aiosmtpd's SMTP server),
the log, and the event topic. Each alert is sent once per channel."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from shipyard.config import Settings
from shipyard.monitoring import channels
from shipyard.monitoring import monitors as service
from shipyard.serving import service as serving
from shipyard.store import Store, open_store
from tests.monitoring.test_monitors import CTX, HOUR, T0, log_window, make


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"body": json.loads(body),
                                    "alert": self.headers["X-Shipyard-Alert"]})
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def hook() -> Iterator[str]:
    Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def local(tmp_path: Path) -> tuple[Store, Path]:
    store = open_store(f"sqlite:///{tmp_path}/shipyard.db", cached=False)
    serving.create_endpoint(store, CTX, "leads")
    return store, tmp_path / "artifacts"


def test_webhook_email_and_log_each_get_an_alert_once(
        local: Any, hook: str, smtp: Any, caplog: pytest.LogCaptureFixture) -> None:
    store, root = local
    inbox, port = smtp
    settings = Settings(home=root.parent, uri="sqlite://", artifacts=str(root),
                        extra={"outbound_allowlist": "127.0.0.1", "smtp_host": "127.0.0.1",
                               "smtp_port": str(port), "smtp_from": "shipyard@example.com"})
    make(store, alert=["log", f"webhook:{hook}", "email:ops@example.com"],
         start_at=T0 + HOUR)
    log_window(root, T0 + HOUR, seed=2, shift=0.5)
    log_window(root, T0 + 2 * HOUR, seed=3, shift=0.5)
    with caplog.at_level(logging.WARNING, logger="shipyard.monitoring.alerts"):
        first = service.run_monitor(store, settings, "default", "leads-monitor",
                                    now=T0 + 2 * HOUR)
    assert first.result["breaches"] == ["skew"] and len(first.alerts) == 1
    alert = service.list_alerts(store, "default")[0]
    assert [(d["type"], d["state"], d["attempts"]) for d in alert.deliveries] == \
        [("log", "sent", 1), ("webhook", "sent", 1), ("email", "sent", 1)]
    assert [r["alert"] for r in Hook.received] == [alert.id]
    body = Hook.received[0]["body"]
    assert (body["kind"], body["endpoint"], body["monitor"]) == ("skew", "leads",
                                                                   "leads-monitor")
    assert body["features"][0]["name"] == "age" and body["model_version"] == 1
    assert len(inbox.messages) == 1
    mail = message_from_bytes(inbox.messages[0])
    assert mail["To"] == "ops@example.com" and "skew on endpoint leads" in mail["Subject"]
    assert any(alert.id in record.getMessage() for record in caplog.records)

    # The next window still breaches: the alert is open, nothing is sent again.
    second = service.run_monitor(store, settings, "default", "leads-monitor",
                                 now=T0 + 3 * HOUR)
    assert "skew" in second.result["breaches"] and "skew" not in \
        [a.kind for a in service.list_alerts(store, "default") if a.run_id == second.id]
    assert channels.deliver_pending(store, settings) == 0
    assert len(Hook.received) == 1 and len(inbox.messages) == 1


def test_a_refused_webhook_fails_once_and_an_unreachable_server_is_retried(
        local: Any, hook: str) -> None:
    store, root = local
    closed = _free_port()  # nothing listens there
    settings = Settings(home=root.parent, uri="sqlite://", artifacts=str(root),
                        extra={"smtp_host": "127.0.0.1", "smtp_port": str(closed)})
    make(store, alert=[f"webhook:{hook}", "email:ops@example.com"], start_at=T0 + HOUR)
    log_window(root, T0 + HOUR, seed=2, shift=0.5)
    service.run_monitor(store, settings, "default", "leads-monitor", now=T0 + 2 * HOUR)
    webhook, email = service.list_alerts(store, "default")[0].deliveries
    # No outbound allowlist: the SSRF guard refuses 127.0.0.1, and says what to configure.
    assert (webhook["state"], webhook["attempts"]) == ("failed", 1)
    assert "allowlist" in webhook["error"] and Hook.received == []
    assert (email["state"], email["attempts"]) == ("pending", 1)
    while channels.deliver_pending(store, settings):
        pass
    webhook, email = service.list_alerts(store, "default")[0].deliveries
    assert (webhook["attempts"], email["state"], email["attempts"]) == \
        (1, "failed", channels.MAX_ATTEMPTS)
