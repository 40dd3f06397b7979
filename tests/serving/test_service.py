"""The control plane on each backend: endpoints, deployments, traffic splits, audit rows,
and the registry reporting deployed versions."""

from __future__ import annotations

import pytest

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from shipyard.registry import service as registry
from shipyard.serving import service
from shipyard.store import Store


def test_create_get_list_delete(store: Store, ctx: RequestContext) -> None:
    made = service.create_endpoint(store, ctx, "lead-ep", description="leads",
                                   labels={"team": "sales"})
    assert (made.name, made.project, made.labels, made.deployments) == (
        "lead-ep", "p1", {"team": "sales"}, [])
    assert service.get_endpoint(store, "p1", "lead-ep") == made
    service.create_endpoint(store, ctx, "another")
    assert [e.name for e in service.list_endpoints(store, "p1")] == ["another", "lead-ep"]
    assert service.list_endpoints(store, "elsewhere") == []
    with pytest.raises(AlreadyExists) as taken:
        service.create_endpoint(store, ctx, "lead-ep")
    assert taken.value.field == "name"
    service.delete_endpoint(store, ctx, "another")
    with pytest.raises(NotFound) as gone:
        service.get_endpoint(store, "p1", "another")
    assert gone.value.field == "name"
    actions = [row["action"] for row in audit.query(store, project="p1")]
    assert actions[:3] == ["endpoint.delete", "endpoint.create", "endpoint.create"]


@pytest.mark.parametrize(("name", "field"), [("", "name"), ("a/b", "name"), ("..", "name"),
                                             ("x" * 200, "name")])
def test_bad_names_are_refused(store: Store, ctx: RequestContext, name: str, field: str
                               ) -> None:
    with pytest.raises(InvalidArgument) as info:
        service.create_endpoint(store, ctx, name)
    assert info.value.field == field


def test_deploy_split_and_undeploy(store: Store, ctx: RequestContext,
                                   versions: list[int]) -> None:
    service.create_endpoint(store, ctx, "ep")
    first = service.deploy(store, ctx, "ep", "lead", version=1)
    assert first.traffic == {"lead:1": 100}
    # By alias: 'production' is version 2; 10% of the traffic, the rest stays with lead:1.
    second = service.deploy(store, ctx, "ep", "lead", alias="production",
                            traffic_percentage=10)
    assert second.traffic == {"lead:1": 90, "lead:2": 10}
    assert second.deployments[1].alias == "production"
    third = service.deploy(store, ctx, "ep", "lead", version=3, traffic_percentage=50)
    assert third.traffic == {"lead:1": 45, "lead:2": 5, "lead:3": 50}
    assert sum(third.traffic.values()) == 100
    moved = service.set_traffic(store, ctx, "ep", {"lead:2": 70, "lead:3": 30})
    assert moved.traffic == {"lead:1": 0, "lead:2": 70, "lead:3": 30}
    # Undeploying lead:3 gives its 30 to the others in proportion (all to lead:2 here).
    left = service.undeploy(store, ctx, "ep", "lead:3")
    assert left.traffic == {"lead:1": 0, "lead:2": 100}
    chosen = service.undeploy(store, ctx, "ep", "lead:2", traffic={"lead:1": 100})
    assert chosen.traffic == {"lead:1": 100}
    actions = [row["action"] for row in audit.query(store, project="p1", action="endpoint")]
    assert actions.count("endpoint.deploy") == 3
    assert actions.count("endpoint.undeploy") == 2
    assert actions.count("endpoint.set_traffic") == 1


def test_traffic_must_add_up_and_name_deployed_models(store: Store, ctx: RequestContext,
                                                      versions: list[int]) -> None:
    service.create_endpoint(store, ctx, "ep")
    with pytest.raises(FailedPrecondition):
        service.set_traffic(store, ctx, "ep", {"lead:1": 100})
    with pytest.raises(InvalidArgument) as first:
        service.deploy(store, ctx, "ep", "lead", version=1, traffic_percentage=40)
    assert first.value.field == "traffic_percentage"
    service.deploy(store, ctx, "ep", "lead", version=1)
    service.deploy(store, ctx, "ep", "lead", version=2)  # 0% by default after the first
    cases: list[tuple[dict[str, object], str]] = [
        ({"lead:1": 60, "lead:2": 30}, "traffic"),
        ({"lead:1": 60, "lead:2": 50}, "traffic"),
        ({"lead:9": 100}, "traffic.lead:9"),
        ({"other:1": 50, "lead:1": 50}, "traffic.other:1"),
        ({"lead:1": 101}, "traffic.lead:1"),
        ({"lead:1": -1, "lead:2": 101}, "traffic.lead:1"),
        ({"lead:1": 50.5, "lead:2": 49.5}, "traffic.lead:1"),
        ({"lead:1": True, "lead:2": 99}, "traffic.lead:1"),
        ({"lead:1": "100"}, "traffic.lead:1"),
    ]
    for split, field in cases:
        with pytest.raises(InvalidArgument) as info:
            service.set_traffic(store, ctx, "ep", split)  # type: ignore[arg-type]
        assert info.value.field == field, split
    with pytest.raises(InvalidArgument) as bad:
        service.undeploy(store, ctx, "ep", "lead:1", traffic={"lead:1": 100})
    assert bad.value.field == "traffic.lead:1"
    assert service.get_endpoint(store, "p1", "ep").traffic == {"lead:1": 100, "lead:2": 0}


def test_deploy_refusals_name_the_field(store: Store, ctx: RequestContext,
                                        versions: list[int]) -> None:
    service.create_endpoint(store, ctx, "ep")
    service.deploy(store, ctx, "ep", "lead", version=1)
    refusals: list[tuple[dict[str, object], type[Exception], str]] = [
        ({"version": 1}, AlreadyExists, "version"),
        ({"version": 9}, NotFound, "version"),
        ({"alias": "nope"}, NotFound, "alias"),
        ({"version": 2, "alias": "production"}, InvalidArgument, "alias"),
        ({"version": 2, "traffic_percentage": 101}, InvalidArgument, "traffic_percentage"),
        ({"version": 2, "min_replicas": 0}, InvalidArgument, "min_replicas"),
        ({"version": 2, "min_replicas": 3, "max_replicas": 2}, InvalidArgument,
         "max_replicas"),
    ]
    for options, kind, field in refusals:
        with pytest.raises(kind) as info:
            service.deploy(store, ctx, "ep", "lead", **options)  # type: ignore[arg-type]
        assert info.value.field == field, options  # type: ignore[attr-defined]
    with pytest.raises(NotFound) as model:
        service.deploy(store, ctx, "ep", "unknown", version=1)
    assert model.value.field == "name"
    with pytest.raises(NotFound) as endpoint:
        service.deploy(store, ctx, "nope", "lead", version=2)
    assert endpoint.value.field == "name"
    with pytest.raises(NotFound) as undeployed:
        service.undeploy(store, ctx, "ep", "lead:2")
    assert undeployed.value.field == "deployed_model_id"
    with pytest.raises(FailedPrecondition) as busy:
        service.delete_endpoint(store, ctx, "ep")
    assert "lead:1" in busy.value.message
    assert service.get_endpoint(store, "p1", "ep").traffic == {"lead:1": 100}


def test_the_registry_reports_deployed_versions(store: Store, ctx: RequestContext,
                                                versions: list[int]) -> None:
    lookup = service.deployed_versions
    service.create_endpoint(store, ctx, "ep")
    service.deploy(store, ctx, "ep", "lead", version=3)
    statuses = {v.version: v.status for v in registry.list_versions(store, "p1", "lead",
                                                                    deployments=lookup)}
    assert statuses == {1: "registered", 2: "registered", 3: "deployed"}
    assert registry.get_model_version(store, "p1", "lead", 3).status == "registered"
    service.undeploy(store, ctx, "ep", "lead:3")
    assert registry.get_model_version(store, "p1", "lead", 3,
                                      deployments=lookup).status == "registered"
    assert [d.deployment.id for d in service.deployed_models(store)] == []
