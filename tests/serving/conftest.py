"""Serving fixtures: models registered in a fresh store (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from shipyard.artifacts import ArtifactStore, open_artifact_store
from shipyard.context import RequestContext
from shipyard.registry import service as registry
from shipyard.store import Store

FEATURES = ["visits", "time_on_site"]


def frame(rows: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"visits": rng.integers(0, 50, rows).astype("int64"),
                         "time_on_site": rng.normal(120.0, 30.0, rows)})


def linear(slope: float) -> LinearRegression:
    """A model whose prediction is ``slope * visits`` (so answers tell versions apart)."""
    data = frame(50)
    return LinearRegression().fit(data, slope * data["visits"])


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return open_artifact_store(str(tmp_path / "artifacts"), cached=False)


@pytest.fixture
def ctx() -> RequestContext:
    return RequestContext(project="p1", actor="alice")


@pytest.fixture
def versions(store: Store, artifacts: ArtifactStore, ctx: RequestContext) -> list[int]:
    """Model 'lead' with versions 1-3 (slopes 1, 2, 3); 'production' on version 2."""
    out = []
    for slope in (1.0, 2.0, 3.0):
        mv = registry.register_model(store, artifacts, ctx, "lead", linear(slope),
                                     input_example=frame(5))
        out.append(mv.version)
    from shipyard.registry import aliases

    aliases.set_alias(store, ctx, "lead", "production", 2)
    return out
