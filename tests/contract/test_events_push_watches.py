"""Push subscriptions and data watches through the public SDK, in local mode and through a
real server: the same settings, listings and errors (each naming its field)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from shipyard.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from shipyard.events.models import PushEndpoint
from shipyard.sdk import session


def test_push_endpoints_and_watches(sy: ModuleType, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    sy.subscribe("retrain-requests", name="hooked")
    assert sy.get_push_endpoint("hooked") == PushEndpoint(subscription="hooked", endpoint=None,
                                                          timeout_seconds=None)
    pushed = sy.set_push_endpoint("hooked", "https://hooks.example.com/x", timeout_seconds=5)
    assert pushed == PushEndpoint(subscription="hooked", endpoint="https://hooks.example.com/x",
                                  timeout_seconds=5)
    assert sy.get_push_endpoint("hooked") == pushed
    assert sy.set_push_endpoint("hooked", None).endpoint is None  # pulled again
    with pytest.raises(InvalidArgument) as bad_url:
        sy.set_push_endpoint("hooked", "ftp://hooks.example.com/x")
    assert bad_url.value.field == "push_endpoint"
    with pytest.raises(InvalidArgument) as bad_timeout:
        sy.set_push_endpoint("hooked", "https://hooks.example.com/x", timeout_seconds=0)
    assert bad_timeout.value.field == "timeout_seconds"
    with pytest.raises(NotFound):
        sy.set_push_endpoint("nobody", "https://hooks.example.com/x")

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    monkeypatch.setenv("SHIPYARD_WATCH_ROOTS", str(tmp_path))
    watch = sy.create_watch("incoming", str(incoming), interval_seconds=30)
    assert (watch.name, watch.uri, watch.interval_seconds) == ("incoming", str(incoming), 30)
    assert [w.name for w in sy.list_watches()] == ["incoming"]
    with pytest.raises(AlreadyExists):
        sy.create_watch("incoming", str(incoming))
    with pytest.raises(InvalidArgument) as bad_uri:
        sy.create_watch("other", "ftp://bucket/prefix")
    assert bad_uri.value.field == "uri"
    with pytest.raises(InvalidArgument) as bad_interval:
        sy.create_watch("other", str(incoming), interval_seconds=0)
    assert bad_interval.value.field == "interval_seconds"
    sy.delete_watch("incoming")
    assert sy.list_watches() == []
    with pytest.raises(NotFound):
        sy.delete_watch("incoming")

    # Through the server (a token), a local directory must be inside SHIPYARD_WATCH_ROOTS;
    # in local mode the caller owns the machine.
    monkeypatch.setenv("SHIPYARD_WATCH_ROOTS", str(incoming))
    if session.settings().remote:
        with pytest.raises(FailedPrecondition) as outside:
            sy.create_watch("elsewhere", str(tmp_path))
        assert outside.value.field == "uri" and "SHIPYARD_WATCH_ROOTS" in outside.value.message
    else:
        assert sy.create_watch("elsewhere", str(tmp_path)).name == "elsewhere"
