"""A model version registered from a run carries where the run's code came from (issue 16,
seeds 003 and 004): the run's ``git.*`` and ``source.*`` tags, as ``metadata["source"]``."""

from __future__ import annotations

from sklearn.linear_model import LinearRegression

from shipyard.artifacts import ArtifactStore
from shipyard.context import RequestContext
from shipyard.registry import register_model
from shipyard.store import Store
from shipyard.tracking import service as tracking


def model() -> LinearRegression:
    return LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0])


SOURCE = {
    "git.commit": "0123456789abcdef0123456789abcdef01234567",
    "git.branch": "main",
    "git.dirty": "false",
    "git.remote": "https://example.com/team/repo.git",
    "source.name": "train.py",
    "source.python": "3.11.2",
}


def test_a_version_from_a_run_keeps_the_runs_source(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext
) -> None:
    run = tracking.create_run(store, ctx, "train",
                              tags={**SOURCE, "team": "growth", "gitx": "no"})
    version = register_model(store, artifacts, ctx, "doubler", model(), run_id=run.id)
    assert version.metadata["source"] == SOURCE  # only git.* and source.*, all of them
    assert version.run_id == run.id


def test_the_registrants_own_source_metadata_wins(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext
) -> None:
    run = tracking.create_run(store, ctx, "train", tags=SOURCE)
    mine = {"source": {"dataset": "s3://bucket/leads.parquet"}}
    version = register_model(store, artifacts, ctx, "doubler", model(), run_id=run.id,
                             metadata=mine)
    assert version.metadata["source"] == mine["source"]


def test_no_run_or_no_source_tags_adds_nothing(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext
) -> None:
    plain = register_model(store, artifacts, ctx, "doubler", model())
    assert "source" not in plain.metadata
    run = tracking.create_run(store, ctx, "train", tags={"team": "growth"})
    untagged = register_model(store, artifacts, ctx, "doubler", model(), run_id=run.id)
    assert "source" not in untagged.metadata
