"""Push subscriptions against a real HTTP server on 127.0.0.1: Pub/Sub's push body, its
success codes acknowledge, anything else (or a timeout) is retried after the backoff and
dead-lettered after max_attempts, and nothing leaves without the outbound allowlist."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.errors import InvalidArgument, NotFound
from shipyard.events import bus, push
from shipyard.runtime import Runtime
from shipyard.security.ssrf import OutboundPolicy
from shipyard.store import Store
from shipyard.worker.event_sources import PushDeliveries

CTX = RequestContext(project="default", actor="tester")
LOCAL = OutboundPolicy.from_allowlist(["127.0.0.1/32"])


class Hook:
    """A webhook that answers each request with the next status of ``statuses`` (the last
    one repeats), sleeping ``delay`` seconds first, and keeps what it received."""

    def __init__(self) -> None:
        self.statuses: list[int] = [204]
        self.delay = 0.0
        self.received: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(json.loads(body))
                time.sleep(hook.delay)
                status = hook.statuses.pop(0) if len(hook.statuses) > 1 else hook.statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/push"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.server.shutdown()
    h.server.server_close()


def data_of(body: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(body["message"]["data"]))


def test_a_pushed_message_has_pubsubs_shape_and_a_2xx_acknowledges_it(
        store: Store, hook: Hook) -> None:
    bus.create_subscription(store, CTX, "hook", "leads")
    push.set_push_endpoint(store, CTX, "hook", hook.url)
    assert push.get_push_endpoint(store, "default", "hook") == hook.url
    message_id = bus.publish(store, CTX, "leads", {"rows": 3}, attributes={"by": "etl"},
                             ordering_key="batch-1")
    assert push.deliver_pushes(store, LOCAL) == 1
    (body,) = hook.received
    assert data_of(body) == {"rows": 3}
    message = body["message"]
    assert message["messageId"] == message["message_id"] == message_id
    assert message["attributes"] == {"by": "etl"} and message["orderingKey"] == "batch-1"
    assert message["publishTime"].endswith("Z") and message["publishTime"] == (
        message["publish_time"])
    datetime.fromisoformat(message["publishTime"].replace("Z", "+00:00"))
    assert body["subscription"] == "projects/default/subscriptions/hook"
    assert body["deliveryAttempt"] == 1
    assert push.deliver_pushes(store, LOCAL) == 0  # acknowledged: never again
    assert bus.dead_letters(store, "default", "hook") == []


def test_each_success_code_acknowledges(store: Store, hook: Hook) -> None:
    bus.create_subscription(store, CTX, "hook", "t")
    push.set_push_endpoint(store, CTX, "hook", hook.url)
    for n, status in enumerate((200, 201, 202, 204), start=1):
        hook.statuses = [status]
        bus.publish(store, CTX, "t", n)
        assert push.deliver_pushes(store, LOCAL) == 1
        assert push.deliver_pushes(store, LOCAL) == 0, status  # acknowledged
        assert len(hook.received) == n


def test_other_answers_are_retried_after_the_backoff_then_dead_lettered(
        store: Store, hook: Hook) -> None:
    hook.statuses = [500, 404, 429]
    bus.create_subscription(store, CTX, "hook", "t", max_attempts=3, min_backoff_seconds=0,
                            max_backoff_seconds=0)
    push.set_push_endpoint(store, CTX, "hook", hook.url)
    bus.publish(store, CTX, "t", {"job": 1})
    for _ in range(3):
        assert push.deliver_pushes(store, LOCAL) == 1
    assert push.deliver_pushes(store, LOCAL) == 0
    assert [b["deliveryAttempt"] for b in hook.received] == [1, 2, 3]
    (dead,) = bus.dead_letters(store, "default", "hook")
    assert [h["outcome"] for h in dead.history] == [
        "nack: push: HTTP 500", "nack: push: HTTP 404", "nack: push: HTTP 429"]


def test_a_failed_push_waits_for_the_subscriptions_backoff(store: Store, hook: Hook) -> None:
    hook.statuses = [503, 200]
    bus.create_subscription(store, CTX, "hook", "t", min_backoff_seconds=1,
                            max_backoff_seconds=1)
    push.set_push_endpoint(store, CTX, "hook", hook.url)
    bus.publish(store, CTX, "t", "x")
    assert push.deliver_pushes(store, LOCAL) == 1
    assert push.deliver_pushes(store, LOCAL) == 0  # backing off
    time.sleep(1.2)
    assert push.deliver_pushes(store, LOCAL) == 1
    assert [b["deliveryAttempt"] for b in hook.received] == [1, 2]
    assert bus.dead_letters(store, "default", "hook") == []


def test_a_timeout_is_a_failed_attempt(store: Store, hook: Hook) -> None:
    hook.delay = 1.6
    bus.create_subscription(store, CTX, "hook", "t", max_attempts=1)
    push.set_push_endpoint(store, CTX, "hook", hook.url, timeout_seconds=1)
    bus.publish(store, CTX, "t", "slow")
    assert push.deliver_pushes(store, LOCAL) == 1
    (dead,) = bus.dead_letters(store, "default", "hook")
    assert "did not answer within" in dead.history[0]["outcome"]


def test_without_the_allowlist_nothing_is_sent(store: Store, hook: Hook) -> None:
    bus.create_subscription(store, CTX, "hook", "t", max_attempts=1)
    push.set_push_endpoint(store, CTX, "hook", hook.url)
    for policy in (OutboundPolicy(), OutboundPolicy.from_allowlist(["example.com"])):
        bus.publish(store, CTX, "t", "secret")
        assert push.deliver_pushes(store, policy) >= 1
    assert hook.received == []
    dead = bus.dead_letters(store, "default", "hook")
    assert len(dead) == 2 and all("push:" in d.history[0]["outcome"] for d in dead)


def test_the_worker_source_delivers_with_the_settings_allowlist(
        store: Store, hook: Hook, tmp_path: Path) -> None:
    from shipyard.artifacts import open_artifact_store

    bus.create_subscription(store, CTX, "hook", "t")
    push.set_push_endpoint(store, CTX, "hook", hook.url)
    bus.publish(store, CTX, "t", "via the worker")
    settings = Settings(home=tmp_path, uri="sqlite:///unused", artifacts=str(tmp_path / "a"),
                        extra={"outbound_allowlist": "127.0.0.1/32"})
    runtime = Runtime(settings=settings, store=store,
                      artifacts=open_artifact_store(str(tmp_path / "a"), cached=False))
    source = PushDeliveries()
    assert source.claim_and_run(runtime, "w") is True
    assert source.claim_and_run(runtime, "w") is False
    assert [data_of(b) for b in hook.received] == ["via the worker"]


def test_bad_push_endpoints_are_refused_naming_the_field(store: Store) -> None:
    bus.create_subscription(store, CTX, "hook", "t")
    for bad in ("ftp://example.com/x", "not a url", "", "http://", "https://" + "a" * 2100):
        with pytest.raises(InvalidArgument) as caught:
            push.set_push_endpoint(store, CTX, "hook", bad)
        assert caught.value.field == "push_endpoint"
    with pytest.raises(InvalidArgument):
        push.set_push_endpoint(store, CTX, "hook", "http://example.com/", timeout_seconds=0)
    with pytest.raises(NotFound):
        push.set_push_endpoint(store, CTX, "missing", "http://example.com/")
    push.set_push_endpoint(store, CTX, "hook", "https://example.com/hook")
    push.set_push_endpoint(store, CTX, "hook", None)  # back to pull
    assert push.get_push_endpoint(store, "default", "hook") is None
    push.set_push_endpoint(store, CTX, "hook", "https://example.com/hook")
    bus.delete_subscription(store, CTX, "hook")  # its push endpoint goes with it
    bus.create_subscription(store, CTX, "hook", "t")
    assert push.get_push_endpoint(store, "default", "hook") is None
