"""The contract suite runs every test in local mode and in remote mode (real HTTP server).

It runs under the server suite's deserialization tripwire too: the server never unpickles,
and neither does the SDK when it loads the safe formats these tests register.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import shipyard
from shipyard.config import Settings
from shipyard.sdk import session
from tests.server.conftest import no_unpickling, server_tripwire
from tests.server.live import live_server

__all__ = ["no_unpickling", "server_tripwire", "sy"]


@pytest.fixture(params=["local", "remote"])
def sy(request: pytest.FixtureRequest, store_uri: str, tmp_path: Path, home: Path
       ) -> Iterator[ModuleType]:
    settings = Settings.resolve(home=home, uri=store_uri, artifacts=str(tmp_path / "blobs"),
                                project="contract")
    if request.param == "local":
        shipyard.init(home=home, uri=store_uri, artifacts=settings.artifacts,
                      project="contract")
        yield shipyard
    else:
        with live_server(settings) as server:
            shipyard.init(home=home, uri=server.url, project="contract", token=server.token)
            yield shipyard
    session.reset()
