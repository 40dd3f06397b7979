"""Lineage queries on every store: graphs to any depth, executions of a context, artifacts
of a type, and unknown ids."""

from __future__ import annotations

import pytest

from shipyard.errors import InvalidArgument, NotFound
from shipyard.ids import new_id
from shipyard.lineage import queries, records
from shipyard.store import Store

CHAIN = 200


def _chain(store: Store, project: str = "p") -> tuple[list[str], list[str]]:
    """a0 -> e1 -> a1 -> e2 -> ... -> a200: each execution reads one artifact, writes one."""
    artifacts: list[str] = []
    executions: list[str] = []
    with store.write() as conn:
        artifacts.append(records.create_artifact(conn, project, "Dataset", "a0", "sha256:0"))
        for i in range(1, CHAIN + 1):
            execution = records.create_execution(conn, project, "step", f"e{i}")
            records.add_event(conn, execution, artifacts[-1], "input", "in")
            out = records.create_artifact(conn, project, "Dataset", f"a{i}", f"sha256:{i}")
            records.add_event(conn, execution, out, "output", "out")
            executions.append(execution)
            artifacts.append(out)
    return artifacts, executions


def test_upstream_and_downstream_to_any_depth_on_a_long_chain(store: Store) -> None:
    artifacts, executions = _chain(store)
    up = queries.graph(store, "p", artifacts[-1], direction="upstream")
    assert {a.id for a in up.artifacts} == set(artifacts)
    assert [e.id for e in up.executions] == executions  # oldest first
    assert len(up.events) == 2 * CHAIN
    down = queries.graph(store, "p", artifacts[0], direction="downstream")
    assert {a.id for a in down.artifacts} == set(artifacts)
    assert {e.id for e in down.executions} == set(executions)
    middle = artifacts[CHAIN // 2]
    both = queries.graph(store, "p", middle, direction="both")
    assert {a.id for a in both.artifacts} == set(artifacts)
    near = queries.graph(store, "p", middle, direction="upstream", depth=3)
    assert [e.id for e in near.executions] == executions[CHAIN // 2 - 3 : CHAIN // 2]
    assert {a.id for a in near.artifacts} == set(artifacts[CHAIN // 2 - 3 : CHAIN // 2 + 1])
    assert queries.graph(store, "p", artifacts[0], direction="upstream").executions == []


def test_a_diamond_is_walked_once(store: Store) -> None:
    with store.write() as conn:
        src = records.create_artifact(conn, "p", "Dataset", "src", "sha256:s")
        left = records.create_execution(conn, "p", "step", "left")
        right = records.create_execution(conn, "p", "step", "right")
        join = records.create_execution(conn, "p", "step", "join")
        mids = []
        for execution in (left, right):
            records.add_event(conn, execution, src, "input", "in")
            mid = records.create_artifact(conn, "p", "Dataset", "mid", "sha256:m")
            records.add_event(conn, execution, mid, "output", "out")
            records.add_event(conn, join, mid, "input", "in")
            mids.append(mid)
        model = records.create_artifact(conn, "p", "Model", "model", "sha256:x")
        records.add_event(conn, join, model, "output", "model")
    up = queries.graph(store, "p", model)
    assert {e.id for e in up.executions} == {left, right, join}
    assert {a.id for a in up.artifacts} == {src, model, *mids}
    assert len(up.events) == 7


def test_all_executions_of_a_context(store: Store) -> None:
    with store.write() as conn:
        mine = records.get_or_create_context(conn, "p", "pipeline_run", "run-1")
        other = records.get_or_create_context(conn, "p", "pipeline_run", "run-2")
        assert records.get_or_create_context(conn, "p", "pipeline_run", "run-1") == mine
        expected = []
        for i in range(130):  # more than one page of the default limit
            execution = records.create_execution(conn, "p", "step", f"s{i}")
            records.associate(conn, mine, execution)
            records.associate(conn, mine, execution)  # idempotent
            expected.append(execution)
        stray = records.create_execution(conn, "p", "step", "stray")
        records.associate(conn, other, stray)
    found = queries.list_executions(store, "p", context_id=mine, limit=1000)
    assert sorted(e.id for e in found) == sorted(expected)
    assert [e.id for e in queries.list_executions(store, "p", context_id=other)] == [stray]
    with pytest.raises(NotFound):  # another project's context does not exist there
        queries.list_executions(store, "elsewhere", context_id=mine)
    assert {c.id for c in queries.list_contexts(store, "p", type="pipeline_run")} == {mine, other}


def test_every_artifact_of_a_type(store: Store) -> None:
    with store.write() as conn:
        models = {records.create_artifact(conn, "p", "Model", f"m{i}", f"sha256:m{i}")
                  for i in range(150)}
        for i in range(5):
            records.create_artifact(conn, "p", "Dataset", f"d{i}", f"sha256:d{i}")
        records.create_artifact(conn, "other", "Model", "theirs", "sha256:t")
    found = queries.list_artifacts(store, "p", type="Model", limit=1000)
    assert {a.id for a in found} == models
    assert len(queries.list_artifacts(store, "p", type="Dataset")) == 5
    assert queries.list_artifacts(store, "p", type="Metrics") == []
    with pytest.raises(InvalidArgument) as caught:
        queries.list_artifacts(store, "p", type="../etc")
    assert caught.value.field == "type"


def test_unknown_or_malformed_ids(store: Store) -> None:
    artifacts, _ = _chain(store)
    for bad in ("../../etc/passwd", "", "x" * 32, "%2e%2e%2f"):
        with pytest.raises(InvalidArgument) as caught:
            queries.graph(store, "p", bad)
        assert caught.value.field == "artifact_id"
    with pytest.raises(NotFound):
        queries.graph(store, "p", new_id())
    with pytest.raises(NotFound):  # ids do not leak across projects
        queries.graph(store, "other", artifacts[0])
    with pytest.raises(NotFound):
        queries.get_execution(store, "p", new_id())
    with pytest.raises(InvalidArgument) as caught:
        queries.graph(store, "p", artifacts[0], depth=0)
    assert caught.value.field == "depth"
    with pytest.raises(InvalidArgument) as caught:
        queries.graph(store, "p", artifacts[0], direction="sideways")  # type: ignore[arg-type]
    assert caught.value.field == "direction"


def test_not_found_names_the_field(store: Store) -> None:
    with pytest.raises(NotFound) as artifact:
        queries.get_artifact(store, "p", new_id())
    with pytest.raises(NotFound) as execution:
        queries.get_execution(store, "p", new_id())
    assert (artifact.value.field, execution.value.field) == ("artifact_id", "execution_id")


def test_an_unknown_context_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound) as caught:
        queries.list_executions(store, "p", context_id=new_id())
    assert caught.value.field == "context_id"
