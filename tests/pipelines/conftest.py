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
from shipyard.pipelines import PipelineRun, _forkserver, run_pipeline
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


# Every way a step runs: in this process with the pipeline's own function, in this process
# from the recorded source (a pipeline read from YAML), forked from a warm launcher, and in
# a fresh interpreter.
MODES = ["inline", "inline-source", "forked", "cold"]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name: str = request.param
    if name == "forked" and not _forkserver.AVAILABLE:
        pytest.skip("no fork server here")
    if name in ("forked", "cold"):
        monkeypatch.setattr(_forkserver, "AVAILABLE", name == "forked")
    return name


def run_in(
    mode: str, env: Env, pipeline: Any, arguments: dict[str, Any] | None = None, **kw: Any
) -> PipelineRun:
    """Run ``pipeline`` the way ``mode`` names (see ``MODES``)."""
    if mode == "inline-source":
        return env.run(pipeline.spec, arguments, inline=True, **kw)
    return env.run(pipeline, arguments, inline=mode == "inline", **kw)


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
