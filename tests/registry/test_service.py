"""Registering, reading, listing, aliases, rollback and status on a real store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sqlalchemy import select

from shipyard import audit
from shipyard.artifacts import ArtifactStore
from shipyard.context import RequestContext
from shipyard.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from shipyard.registry import (
    alias_history,
    delete_alias,
    get_model,
    get_model_version,
    list_models,
    list_versions,
    parse_ref,
    register_model,
    resolve_ref,
    rollback,
    set_alias,
    set_status,
)
from shipyard.registry.refs import ModelRef
from shipyard.runtime import Hooks
from shipyard.store import Store
from shipyard.store.schema import events, lineage_artifacts
from shipyard.tracking import service as tracking

X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
Y = np.array([0.0, 1.0, 2.0, 3.5])


def model() -> LinearRegression:
    return LinearRegression().fit(X, Y)


def register(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext, name: str = "lead", **kw: Any
) -> int:
    return register_model(store, artifacts, ctx, name, model(), input_example=X, **kw).version


def test_register_and_read_back(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext
) -> None:
    mv = register_model(
        store,
        artifacts,
        ctx,
        "lead",
        model(),
        input_example=X,
        semver="0.1.0",
        description="first",
        labels={"team": "sales"},
        metadata={"owner": "ml"},
        metrics={"rmse": 0.3},
        aliases=["staging"],
    )
    assert (mv.name, mv.version, mv.semver, mv.aliases) == ("lead", 1, "0.1.0", ["staging"])
    assert mv.uri == "models:/lead/1"
    assert mv.flavor == "sklearn"
    assert mv.status == "registered"
    assert mv.metrics == {"rmse": 0.3}
    assert mv.labels == {"team": "sales"}
    assert mv.metadata == {"owner": "ml"}
    assert mv.created_by == "alice"
    assert mv.signature is not None
    assert [c["name"] for c in mv.signature["columns"]] == ["a", "b"]
    assert artifacts.exists(mv.tree_digest)
    assert get_model_version(store, "p1", "lead", version=1) == mv
    assert get_model_version(store, "p1", "lead", alias="staging") == mv
    assert get_model_version(store, "p1", "lead") == mv
    assert get_model(store, "p1", "lead").aliases == {"staging": 1}
    actions = [r["action"] for r in audit.query(store, project="p1")]
    assert "model.register" in actions and "model.alias.set" in actions


def test_versions_count_up_and_semver_is_unique(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext
) -> None:
    assert [register(store, artifacts, ctx) for _ in range(3)] == [1, 2, 3]
    assert register(store, artifacts, ctx, "other") == 1
    register(store, artifacts, ctx, semver="1.0.0")
    with pytest.raises(AlreadyExists, match=r"1\.0\.0"):
        register(store, artifacts, ctx, semver="1.0.0")
    # The failed registration rolled back its allocation: the next version has no gap.
    assert register(store, artifacts, ctx) == 5
    with pytest.raises(InvalidArgument, match="semantic version"):
        register(store, artifacts, ctx, semver="v1")


def test_not_found_names_the_choices(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext
) -> None:
    register(store, artifacts, ctx, aliases=["staging"])
    with pytest.raises(NotFound, match="no model named 'nope'"):
        get_model_version(store, "p1", "nope")
    with pytest.raises(NotFound, match="versions 1 to 1") as info:
        get_model_version(store, "p1", "lead", version=7)
    assert info.value.field == "version"
    with pytest.raises(NotFound, match=r"aliases are \['staging'\]"):
        get_model_version(store, "p1", "lead", alias="production")
    with pytest.raises(NotFound):
        get_model_version(store, "other-project", "lead")


def test_references(store: Store, artifacts: ArtifactStore, ctx: RequestContext) -> None:
    register(store, artifacts, ctx)
    register(store, artifacts, ctx, aliases=["production"])
    register(store, artifacts, ctx)
    assert parse_ref("lead") == ModelRef("lead")
    assert parse_ref("lead:2") == ModelRef("lead", version=2)
    assert parse_ref("models:/lead/2") == ModelRef("lead", version=2)
    assert parse_ref("models:/lead@production") == ModelRef("lead", alias="production")
    assert parse_ref("lead@latest") == ModelRef("lead")
    for ref, version in [
        ("lead", 3),
        ("lead:1", 1),
        ("lead@production", 2),
        ("models:/lead@production", 2),
        ("models:/lead", 3),
    ]:
        assert resolve_ref(store, "p1", ref).version == version, ref
    assert get_model_version(store, "p1", "lead", alias="latest").version == 3
    for missing in ["lead@staging", "lead:4", "nope", "models:/nope@production"]:
        with pytest.raises(NotFound):
            resolve_ref(store, "p1", missing)
    for bad in ["", "lead:0", "lead:x", "lead@", "a/b", "models:/lead@prod@x", "../etc"]:
        with pytest.raises(InvalidArgument):
            parse_ref(bad)


def test_invalid_arguments_name_the_field(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"labels": {"team": 3}}, "labels.team"),
        ({"metrics": {"rmse": float("nan")}}, "metrics.rmse"),
        ({"metrics": {"rmse": "low"}}, "metrics.rmse"),
        ({"aliases": ["3"]}, "alias"),
        ({"aliases": ["latest"]}, "alias"),
        ({"metadata": {"when": object()}}, "metadata"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidArgument) as info:
            register(store, artifacts, ctx, **kwargs)
        assert info.value.field == field, kwargs
    with pytest.raises(InvalidArgument) as info:
        register_model(store, artifacts, ctx, "bad name!", model())
    assert info.value.field == "name"
    with pytest.raises(InvalidArgument, match="cannot register"):
        register_model(store, artifacts, ctx, "lead", object())
    with pytest.raises(NotFound):
        get_model(store, "p1", "lead")  # nothing was created by the failed calls


def test_list_models_and_versions_with_filters(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext
) -> None:
    register(store, artifacts, ctx, "lead", labels={"team": "sales"}, metrics={"rmse": 0.3})
    register(store, artifacts, ctx, "lead", labels={"team": "sales"}, metrics={"rmse": 0.15})
    register(store, artifacts, ctx, "churn", labels={"team": "care"}, metrics={"rmse": 0.1})
    register(store, artifacts, ctx, "price", metrics={"mae": 2.0})
    names = [m.name for m in list_models(store, "p1")]
    assert names == ["churn", "lead", "price"]
    found = list_models(store, "p1", "labels.team = 'sales' and metrics.rmse < 0.2")
    assert [m.name for m in found] == ["lead"]
    assert [m.name for m in list_models(store, "p1", "metrics.rmse <= 0.1")] == ["churn"]
    assert [m.name for m in list_models(store, "p1", "name LIKE 'c%'")] == ["churn"]
    assert [m.name for m in list_models(store, "p1", "labels.team IN ('care', 'x')")] == ["churn"]
    versions = list_versions(store, "p1", "lead", "metrics.rmse < 0.2")
    assert [v.version for v in versions] == [2]
    assert [v.version for v in list_versions(store, "p1", "lead")] == [2, 1]
    # A version's labels are its own: a label given to version 3 does not match 1 and 2.
    register(store, artifacts, ctx, "lead", labels={"alert": "a1"})
    assert [v.version for v in list_versions(store, "p1", "lead", "labels.alert = 'a1'")] \
        == [3]
    assert [v.version for v in list_versions(store, "p1", "lead", "labels.team = 'sales'")] \
        == [2, 1]
    assert [m.name for m in list_models(store, "p1", "labels.alert = 'a1'")] == ["lead"]
    for bad in ["labels.team ~ 'x'", "metrics.rmse < 'low'", "color = 'red'", "metrics.rmse <"]:
        with pytest.raises(InvalidArgument) as info:
            list_models(store, "p1", bad)
        assert info.value.field == "filter"


def test_list_models_reads_each_models_own_versions_and_aliases(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext
) -> None:
    # Versions and aliases of every model are read in one query each: each model must still
    # be matched against its own rows only, in any project.
    for name in ("a", "b", "c"):
        register(store, artifacts, ctx, name, metrics={"rmse": 0.5})
    register(store, artifacts, ctx, "b", metrics={"rmse": 0.1})
    set_alias(store, ctx, "b", "production", 2)
    set_alias(store, ctx, "c", "staging", 1)
    other = RequestContext(project="p2", actor="alice")
    register(store, artifacts, other, "a", metrics={"rmse": 0.01})
    set_alias(store, other, "a", "production", 1)
    assert [m.name for m in list_models(store, "p1", "metrics.rmse < 0.2")] == ["b"]
    assert [m.name for m in list_models(store, "p1", "alias = 'production'")] == ["b"]
    assert [m.name for m in list_models(store, "p1", "alias = 'staging'")] == ["c"]
    assert [m.name for m in list_models(store, "p2", "alias = 'production'")] == ["a"]
    listed = {m.name: m.aliases for m in list_models(store, "p1")}
    assert listed == {"a": {}, "b": {"production": 2}, "c": {"staging": 1}}
    filtered = list_models(store, "p1", "version = 1")
    assert {m.name: m.aliases for m in filtered} == listed
    assert get_model(store, "p1", "b").aliases == {"production": 2}
    assert [m.name for m in list_models(store, "p1", "name != 'b'", limit=1)] == ["a"]


def test_alias_moves_history_and_rollback(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext
) -> None:
    for _ in range(3):
        register(store, artifacts, ctx)
    bob = RequestContext(project="p1", actor="bob")
    set_alias(store, ctx, "lead", "production", 1, reason="launch")
    set_alias(store, bob, "lead", "production", 2, reason="better rmse")
    moved = set_alias(store, ctx, "lead", "production", 3)
    assert moved.aliases == ["production"]
    set_alias(store, ctx, "lead", "production", 3)  # no-op: not recorded
    history = alias_history(store, "p1", "lead", "production")
    assert [(h.from_version, h.to_version, h.actor) for h in history] == [
        (None, 1, "alice"),
        (1, 2, "bob"),
        (2, 3, "alice"),
    ]
    assert history[1].reason == "better rmse"
    assert get_model_version(store, "p1", "lead", version=2).aliases == []

    assert rollback(store, ctx, "lead", "production").version == 2
    assert rollback(store, ctx, "lead", "production", reason="still bad").version == 1
    with pytest.raises(FailedPrecondition, match="no earlier version"):
        rollback(store, ctx, "lead", "production")
    last = alias_history(store, "p1", "lead", "production")[-1]
    assert (last.from_version, last.to_version, last.reason) == (2, 1, "still bad")
    assert last.decision is not None and last.decision["action"] == "rollback"

    delete_alias(store, ctx, "lead", "production", reason="incident")
    with pytest.raises(NotFound):
        get_model_version(store, "p1", "lead", alias="production")
    # A deleted alias comes back with a rollback.
    assert rollback(store, ctx, "lead", "production").version == 1
    with pytest.raises(NotFound):
        delete_alias(store, ctx, "lead", "staging")
    with pytest.raises(NotFound):
        set_alias(store, ctx, "lead", "production", 9)


def test_status_retire_and_deployed_hook(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext
) -> None:
    register(store, artifacts, ctx, aliases=["production"])
    register(store, artifacts, ctx)
    assert set_status(store, ctx, "lead", 2, "staged").status == "staged"
    with pytest.raises(FailedPrecondition, match="holds alias"):
        set_status(store, ctx, "lead", 1, "retired")
    assert set_status(store, ctx, "lead", 2, "retired").status == "retired"
    with pytest.raises(FailedPrecondition, match="retired"):
        set_alias(store, ctx, "lead", "staging", 2)
    # The bare name skips retired versions.
    assert resolve_ref(store, "p1", "lead").version == 1
    with pytest.raises(InvalidArgument, match="deployed is derived"):
        set_status(store, ctx, "lead", 1, "deployed")
    # "deployed" comes from the serving capability's lookup, passed in from the runtime.
    serving = Hooks(deployment_lookups=(lambda conn, model_id: {1},)).deployments()
    assert get_model_version(store, "p1", "lead", version=1,
                             deployments=serving).status == "deployed"
    assert get_model_version(store, "p1", "lead", version=2,
                             deployments=serving).status == "retired"  # retired wins
    assert [v.version for v in list_versions(store, "p1", "lead", "status = 'deployed'",
                                             deployments=serving)] == [1]
    assert resolve_ref(store, "p1", "lead@production", deployments=serving).status == "deployed"
    assert get_model_version(store, "p1", "lead", version=1).status == "registered"
    # Moving an alias answers with the version as every read shows it.
    register(store, artifacts, ctx)
    assert set_alias(store, ctx, "lead", "canary", 1, deployments=serving).status == "deployed"
    assert set_alias(store, ctx, "lead", "canary", 3, deployments=serving).status == "registered"
    back = rollback(store, ctx, "lead", "canary", deployments=serving)
    assert (back.version, back.status) == (1, "deployed")


def test_lineage_links_the_model_to_its_run(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext
) -> None:
    run = tracking.create_run(store, ctx, "exp")
    mv = register_model(store, artifacts, ctx, "lead", model(), run_id=run.id)
    assert mv.run_id == run.id and mv.artifact_id is not None
    with store.read() as conn:
        artifact = conn.execute(
            select(lineage_artifacts).where(lineage_artifacts.c.id == mv.artifact_id)
        ).one()
        edge = conn.execute(select(events).where(events.c.artifact_id == mv.artifact_id)).one()
    assert artifact.uri == "models:/lead/1" and artifact.digest == mv.tree_digest
    assert (edge.execution_id, edge.kind) == (run.execution_id, "output")
    with pytest.raises(NotFound, match="no run"):
        register_model(store, artifacts, ctx, "lead", model(), run_id="0" * 32)


def test_register_from_packaged_directory(
    tmp_path: Path, store: Store, artifacts: ArtifactStore, ctx: RequestContext
) -> None:
    from shipyard.registry import flavors

    packaged = tmp_path / "pkg"
    packaged.mkdir()
    flavors.save(model(), packaged, input_example=X)
    mv = register_model(store, artifacts, ctx, "lead", packaged)
    assert mv.flavor == "sklearn" and mv.signature is not None
    # The same bytes give the same tree: the blob store deduplicates.
    again = register_model(store, artifacts, ctx, "lead", packaged)
    assert again.tree_digest == mv.tree_digest and again.version == 2
