"""A pipeline cannot read another project's artifacts (security review, item 4): an artifact
reference written into a spec as a constant, or passed in a loop's items, is checked against
the run's project, and the lineage graph never walks into another project."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from shipyard import dsl
from shipyard.errors import InvalidArgument
from shipyard.lineage import queries, records
from shipyard.pipelines import list_pipeline_runs, run_pipeline
from shipyard.pipelines.compiler import to_spec
from shipyard.pipelines.spec import PipelineSpec
from tests.pipelines.conftest import Env, env

__all__ = ["env"]  # the pipelines suite's fixture: a real store and artifact store


@dsl.component
def make_secret(out: dsl.Output[dsl.Dataset]) -> None:
    with open(out.path, "w") as f:
        f.write("TOP SECRET")


@dsl.component
def leak(data: dsl.Input[dsl.Dataset]) -> str:
    with open(data.path) as f:
        return f.read()


@dsl.pipeline(name="secret")
def secret_pipeline() -> None:
    make_secret()


@dsl.pipeline(name="leak")
def leak_pipeline() -> None:
    leak(data=make_secret().outputs["out"])


def _secret_reference(env: Env) -> dict[str, Any]:
    """Project "secret" makes an artifact; its reference, as a run's outputs show it."""
    ctx = replace(env.ctx, project="secret")
    run = run_pipeline(env.store, env.artifacts, ctx, secret_pipeline, {},
                       settings=env.settings.with_project("secret"))
    reference: dict[str, Any] = run.tasks["make-secret"].outputs["out"].model_dump(mode="json")
    assert reference["artifact_id"]
    return reference


def _with_constant(reference: dict[str, Any]) -> PipelineSpec:
    raw = to_spec(leak_pipeline)[0].model_dump(mode="json", by_alias=True)
    raw["tasks"]["leak"]["inputs"]["data"] = {"kind": "constant", "value": reference}
    return PipelineSpec.model_validate(raw)


def test_a_constant_naming_another_projects_artifact_is_refused_at_submission(env: Env) -> None:
    reference = _secret_reference(env)
    with pytest.raises(InvalidArgument, match="not an artifact of project 'default'") as info:
        env.run(_with_constant(reference))
    assert info.value.field == "tasks.leak.inputs.data"
    assert list_pipeline_runs(env.store, "default") == []  # nothing recorded


def test_a_digest_alone_is_not_a_reference(env: Env) -> None:
    reference = _secret_reference(env)
    reference.pop("artifact_id")
    with pytest.raises(InvalidArgument, match="a digest alone is not accepted"):
        env.run(_with_constant(reference))


def test_a_reference_in_a_loop_item_fails_the_task_before_it_runs(env: Env) -> None:
    reference = _secret_reference(env)
    raw = to_spec(leak_pipeline)[0].model_dump(mode="json", by_alias=True)
    # The items of a loop reach the task as they are: only the engine can check them.
    raw["tasks"]["leak"]["inputs"]["data"] = {"kind": "param", "param": "smuggled"}
    raw["inputs"]["smuggled"] = {"kind": "parameter", "type": "STRUCT", "optional": False}
    spec = PipelineSpec.model_validate(raw)
    run = env.run(spec, {"smuggled": reference}, raise_on_error=False)
    task = run.tasks["leak"]
    assert task.state == "FAILED"
    assert "not an artifact of project 'default'" in (task.error or "")
    assert task.outputs == {}


def test_an_own_artifact_reference_still_works(env: Env) -> None:
    produced = env.run(secret_pipeline)
    reference = produced.tasks["make-secret"].outputs["out"].model_dump(mode="json")
    run = env.run(_with_constant(reference))
    assert run.tasks["leak"].outputs["Output"] == "TOP SECRET"


def test_the_lineage_graph_does_not_walk_into_another_project(env: Env) -> None:
    # An edge from a default-project execution to a secret-project artifact, as the review
    # recorded through the old hole, is not followed.
    reference = _secret_reference(env)
    produced = env.run(secret_pipeline)
    own = produced.tasks["make-secret"].outputs["out"]
    assert own.artifact_id is not None
    with env.store.write() as conn:
        (execution,) = [e.id for e in queries.list_executions(env.store, "default")][:1]
        records.add_event(conn, execution, reference["artifact_id"], "input", "smuggled")
    graph = queries.graph(env.store, "default", own.artifact_id, direction="upstream")
    assert reference["artifact_id"] not in {a.id for a in graph.artifacts}
    assert all(e.artifact_id != reference["artifact_id"] for e in graph.events)
