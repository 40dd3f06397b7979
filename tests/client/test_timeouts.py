"""A hung server fails remote calls within the session's timeout instead of blocking them
forever (issue 23, item 5): plain requests, uploads (log_artifact) and downloads alike."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.client import HttpSession
from shipyard.config import Settings
from shipyard.errors import InvalidArgument, Unavailable

RUN_ID = "a" * 32


@pytest.fixture
def hung_server() -> Iterator[str]:
    """Accepts connections and reads whatever comes, but never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


def _session(url: str, tmp_path: Path) -> HttpSession:
    settings = Settings.resolve(home=tmp_path / "home", uri=url, token="sy_x",
                                environ={"SHIPYARD_HTTP_TIMEOUT": "0.5"})
    assert settings.http_timeout == 0.5
    return HttpSession(settings)


def test_requests_uploads_and_downloads_fail_fast_on_a_hung_server(
    hung_server: str, tmp_path: Path
) -> None:
    session = _session(hung_server, tmp_path)
    payload = tmp_path / "weights.bin"
    payload.write_bytes(b"x" * 100_000)  # fits the socket buffers: the wait is the answer
    calls = {
        "get_run": lambda: session.tracking.get_run(RUN_ID),
        "log_artifact": lambda: session.tracking.log_artifact(RUN_ID, payload),
        "download_artifact": lambda: session.tracking.download_artifact(
            RUN_ID, "weights.bin", tmp_path / "out"),
    }
    try:
        for name, call in calls.items():
            started = time.monotonic()
            with pytest.raises(Unavailable) as info:
                call()
            elapsed = time.monotonic() - started
            assert elapsed < 5, f"{name} waited {elapsed:.1f} s"
            assert info.value.retry_after == 1
    finally:
        session.close()
    assert not (tmp_path / "out").exists()  # nothing half-written


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "1e9"])
def test_a_bad_timeout_setting_names_the_variable(value: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        Settings.resolve(home=tmp_path, environ={"SHIPYARD_HTTP_TIMEOUT": value})
    assert info.value.field == "SHIPYARD_HTTP_TIMEOUT"


def test_the_default_is_a_minute(tmp_path: Path) -> None:
    assert Settings.resolve(home=tmp_path, environ={}).http_timeout == 60.0
