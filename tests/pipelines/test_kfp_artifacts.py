"""Components that return artifacts, as on Kubeflow: ``-> Dataset`` and NamedTuple fields
of artifact types, returning an artifact object (often at ``dsl.get_uri()``) or data that
kfp's executor writes to the artifact's file as text."""

from __future__ import annotations

from typing import NamedTuple, Optional

import pytest

from shipyard import dsl
from shipyard.dsl import Artifact, Dataset, Input, Model
from shipyard.errors import InvalidArgument
from tests.pipelines.conftest import Env, run_in


@dsl.component
def make_dataset(text: str) -> Dataset:
    dataset = Dataset(uri=dsl.get_uri(), metadata={"rows": 2})
    with open(dataset.path, "w") as f:
        f.write(text)
    return dataset


@dsl.component
def make_several(text: str) -> NamedTuple(  # type: ignore[valid-type]
    "Outputs", [("model", Model), ("note", str), ("raw", Artifact), ("copied", Dataset)]
):
    import os
    import tempfile
    from collections import namedtuple

    model = Model(uri=dsl.get_uri("model"))
    os.makedirs(model.path)
    with open(os.path.join(model.path, "weights.txt"), "w") as f:
        f.write(text.upper())
    model.metadata["framework"] = "none"
    elsewhere = Dataset(uri=os.path.join(tempfile.mkdtemp(), "data.csv"))
    with open(elsewhere.path, "w") as f:
        f.write("a,b\n")
    outputs = namedtuple("Outputs", ["model", "note", "raw", "copied"])
    return outputs(model, "n", {"a": 1}, elsewhere)


@dsl.component
def read_all(data: Input[Dataset], model: Input[Model], raw: Input[Artifact],
             copied: Input[Dataset], note: str) -> str:  # fmt: skip
    with open(data.path) as d, open(model.path + "/weights.txt") as m:
        text = f"{d.read()}|{data.metadata['rows']}|{m.read()}|{model.metadata['framework']}"
    with open(raw.path) as r, open(copied.path) as c:
        return f"{text}|{r.read()}|{c.read().strip()}|{note}"


@dsl.pipeline(name="returned-artifacts")
def returned_artifacts() -> None:
    data = make_dataset(text="abc")
    several = make_several(text="w")
    read_all(data=data.output, model=several.outputs["model"], raw=several.outputs["raw"],
             copied=several.outputs["copied"], note=several.outputs["note"])  # fmt: skip


def test_returned_artifacts_are_stored_and_passed_on(env: Env, mode: str) -> None:
    spec = make_several.component_spec
    assert spec.outputs["model"].kind == "artifact" and spec.outputs["model"].type == "system.Model"
    assert spec.outputs["note"].kind == "parameter"
    run = run_in(mode, env, returned_artifacts)
    made = run.tasks["make-dataset"].outputs["Output"]
    assert made.type == "system.Dataset" and made.metadata == {"rows": 2}
    assert run.tasks["read-all"].outputs["Output"] == "abc|2|W|none|{'a': 1}|a,b|n"


def test_get_uri_outside_a_step_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="only be called inside a running pipeline step"):
        dsl.get_uri()


def test_a_list_of_artifacts_cannot_be_returned() -> None:
    with pytest.raises(InvalidArgument, match="cannot return a list of artifacts"):

        @dsl.component
        def many() -> list[Dataset]:
            return []


@dsl.component
def count_all(datasets: Input[list[Dataset]], extra: Optional[Input[Dataset]] = None) -> int:  # noqa: UP045 - as kfp code spells it
    total = 0
    for data in datasets:
        with open(data.path) as f:
            total += len(f.read())
    return total if extra is None else -total


@dsl.pipeline(name="artifact-list-input")
def artifact_list_input(datasets: Input[list[Dataset]]) -> None:
    count_all(datasets=datasets)


def test_a_pipeline_input_may_be_a_list_of_artifacts(env: Env) -> None:
    assert count_all.component_spec.inputs["extra"].optional
    first = env.run(returned_artifacts)
    made = [first.tasks["make-dataset"].outputs["Output"],
            first.tasks["make-several"].outputs["copied"]]  # fmt: skip
    refs = [m.model_dump(mode="json") for m in made]
    run = env.run(artifact_list_input, {"datasets": refs})
    assert run.tasks["count-all"].outputs["Output"] == len("abc") + len("a,b\n")
