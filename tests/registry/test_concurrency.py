"""Registrations from several processes get versions 1..N: no gap, no collision."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
from sklearn.linear_model import LinearRegression

from shipyard.artifacts import ArtifactStore
from shipyard.registry import flavors, list_versions
from shipyard.store import Store
from tests.registry import registry_workers

PROCESSES = 4
EACH = 3


def test_concurrent_registrations_from_processes(
    store_uri: str, store: Store, artifacts: ArtifactStore, tmp_path: Path
) -> None:
    packaged = tmp_path / "pkg"
    packaged.mkdir()
    model = LinearRegression().fit(np.arange(6.0).reshape(-1, 2), [0.0, 1.0, 2.0])
    flavors.save(model, packaged)
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(PROCESSES) as pool:
        results = pool.starmap(
            registry_workers.register_many,
            [(store_uri, artifacts.location, str(packaged), EACH)] * PROCESSES,
        )
    allocated = sorted(v for got in results for v in got)
    assert allocated == list(range(1, PROCESSES * EACH + 1))
    for got in results:
        assert got == sorted(got)  # each process sees its own versions increase
    stored = sorted(v.version for v in list_versions(store, "p1", "racer"))
    assert stored == allocated
