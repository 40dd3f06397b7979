"""Registry fixtures: an artifact store, a request context and settings per test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.artifacts import ArtifactStore, open_artifact_store
from shipyard.config import Settings
from shipyard.context import RequestContext


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return open_artifact_store(str(tmp_path / "artifacts"), cached=False)


@pytest.fixture
def ctx() -> RequestContext:
    return RequestContext(project="p1", actor="alice")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home", uri="sqlite:///unused", artifacts=str(tmp_path / "artifacts")
    )


@pytest.fixture
def leads() -> tuple[pd.DataFrame, np.ndarray]:
    """Seed 002's shape: numeric and categorical lead features, a score to regress."""
    rng = np.random.default_rng(7)
    n = 200
    frame = pd.DataFrame(
        {
            "visits": rng.integers(0, 50, n),
            "time_on_site": rng.normal(120.0, 30.0, n),
            "source": rng.choice(["ads", "organic", "referral"], n),
            "industry": rng.choice(["retail", "finance", "tech", "health"], n),
        }
    )
    frame.loc[::17, "time_on_site"] = np.nan
    score = (
        0.02 * frame["visits"]
        + 0.001 * frame["time_on_site"].fillna(100.0)
        + (frame["source"] == "referral") * 0.3
        + rng.normal(0, 0.05, n)
    ).to_numpy()
    return frame, score
