"""Fixtures: every artifact store test runs on a local directory and on S3 (moto's server).

The S3 variant talks HTTP to a real ``ThreadedMotoServer`` on 127.0.0.1, through s3fs and
aiobotocore exactly as production does; only the server is a stand-in. One server and one
bucket serve the whole session; each test gets its own prefix, so tests stay independent.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shipyard.artifacts import ArtifactStore, open_artifact_store
from shipyard.artifacts.paths import blob_key

BUCKET = "shipyard-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server with one bucket; the AWS variables point every client at it."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
        }.items():
            patch.setenv(name, value)
        # A config or credentials file on the machine must not redirect the tests.
        patch.setenv("AWS_CONFIG_FILE", os.devnull)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        patch.delenv("AWS_PROFILE", raising=False)
        # moto keeps its state per process, so a second server in this process (another
        # suite importing this fixture) already sees the bucket.
        fs = s3_filesystem()
        if not fs.exists(BUCKET):
            fs.mkdir(BUCKET)
        try:
            yield endpoint
        finally:
            server.stop()


def s3_filesystem() -> Any:
    import fsspec

    # A fresh instance each time: it must read the endpoint of the server now running.
    return fsspec.filesystem("s3", use_listings_cache=False, skip_instance_cache=True)


@dataclass
class StoreCase:
    """A store under test and raw access to its bytes, to damage them behind its back."""

    kind: str
    store: ArtifactStore
    read_raw: Callable[[str], bytes]
    write_raw: Callable[[str, bytes], None]
    list_raw: Callable[[], list[str]]

    def corrupt(self, digest: str, *, flip_at: int = 0) -> None:
        data = bytearray(self.read_raw(blob_key(digest)))
        data[flip_at] ^= 0x01
        self.write_raw(blob_key(digest), bytes(data))


def _local_case(root: Path) -> StoreCase:
    def path(key: str) -> Path:
        return root.joinpath(*key.split("/"))

    def list_raw() -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    def write_raw(key: str, data: bytes) -> None:
        path(key).parent.mkdir(parents=True, exist_ok=True)
        path(key).write_bytes(data)

    return StoreCase(
        kind="local",
        store=open_artifact_store(str(root), cached=False),
        read_raw=lambda key: path(key).read_bytes(),
        write_raw=write_raw,
        list_raw=list_raw,
    )


def _s3_case(prefix: str) -> StoreCase:
    fs = s3_filesystem()
    base = f"{BUCKET}/{prefix}"

    def list_raw() -> list[str]:
        return sorted(found[len(base) + 1 :] for found in fs.find(base))

    return StoreCase(
        kind="s3",
        store=open_artifact_store(f"s3://{base}", cached=False),
        read_raw=lambda key: bytes(fs.cat_file(f"{base}/{key}")),
        write_raw=lambda key, data: fs.pipe_file(f"{base}/{key}", data),
        list_raw=list_raw,
    )


@pytest.fixture(params=["local", "s3"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> StoreCase:
    """A fresh, empty store on each backend."""
    if request.param == "local":
        return _local_case(tmp_path / "artifacts")
    request.getfixturevalue("s3_endpoint")
    return _s3_case(f"t-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def artifact_store(case: StoreCase) -> ArtifactStore:
    return case.store
