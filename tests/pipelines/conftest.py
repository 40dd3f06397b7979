"""Fixtures for running pipelines against a real store and artifact store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shipyard.artifacts import ArtifactStore, open_artifact_store
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.pipelines import PipelineRun, run_pipeline
from shipyard.store import Store


@dataclass
class Env:
    store: Store
    artifacts: ArtifactStore
    ctx: RequestContext
    settings: Settings
    tmp: Path

    def run(self, pipeline: Any, arguments: dict[str, Any] | None = None, **kw: Any) -> PipelineRun:
        return run_pipeline(
            self.store, self.artifacts, self.ctx, pipeline, arguments or {},
            settings=self.settings, **kw,
        )  # fmt: skip


@pytest.fixture
def env(store: Store, home: Path, tmp_path: Path) -> Env:
    arts = tmp_path / "artifacts"
    artifacts = open_artifact_store(str(arts), cached=False)
    uri = store.engine.url.render_as_string(hide_password=False)
    settings = Settings.resolve(home=home, uri=uri, artifacts=str(arts), project="default")
    return Env(
        store, artifacts, RequestContext(project="default", actor="tester"), settings, tmp_path
    )


def count_lines(path: Path) -> Callable[[], int]:
    def count() -> int:
        return len(path.read_text().splitlines()) if path.exists() else 0

    return count
