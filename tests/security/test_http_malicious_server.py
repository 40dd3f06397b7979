"""The SDK against a hostile server: nothing it sends can write outside the destination,
and deeply nested JSON sent to a real server is a 4xx, never a crash."""

from __future__ import annotations

import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipyard.client import HttpSession
from shipyard.config import Settings
from shipyard.errors import InvalidArgument
from tests.server.live import live_server

RUN_ID = "0" * 32


def _evil_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in ("ok.txt", "../../escaped.txt"):
            data = b"pwned"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def evil_server() -> Iterator[str]:
    payload = _evil_tar()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("X-Artifact-Kind", "tree")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_cve_2023_6909_sdk_refuses_a_tree_that_escapes_the_destination(
    evil_server: str, tmp_path: Path
) -> None:
    settings = Settings.resolve(home=tmp_path / "home", uri=evil_server, token="sy_x",
                                environ={})
    session = HttpSession(settings)
    dest = tmp_path / "a" / "b" / "out"
    dest.parent.mkdir(parents=True)
    with pytest.raises(InvalidArgument):
        session.tracking.download_artifact(RUN_ID, "model", dest)
    assert not (tmp_path / "a" / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()
    assert not dest.exists()
    session.close()


def test_deeply_nested_json_is_a_client_error(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path / "home", uri=f"sqlite:///{tmp_path / 's.db'}",
                                artifacts=str(tmp_path / "blobs"), environ={})
    with live_server(settings, worker=False) as server:
        headers = {"Authorization": f"Bearer {server.token}",
                   "Content-Type": "application/json"}
        deep = "[" * 200_000 + "]" * 200_000
        nested_tags = '{"experiment": "e", "tags": ' + '{"a":' * 5000 + "1" + "}" * 5001
        with httpx.Client(base_url=server.url, headers=headers) as http_client:
            for body in (deep, nested_tags):
                response = http_client.post("/api/v1/projects/p/runs", content=body)
                assert response.status_code == 400, response.text
                assert response.headers["content-type"] == "application/problem+json"
