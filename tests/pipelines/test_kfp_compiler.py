"""``from shipyard import compiler``: kfp's ``Compiler().compile`` over Shipyard's spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard import compiler, dsl
from shipyard.errors import InvalidArgument
from shipyard.pipelines import load_spec
from tests.pipelines.conftest import Env


@dsl.component
def scale(x: int, factor: float = 2.0) -> float:
    return x * factor


@dsl.pipeline(name="scaling")
def scaling(x: int = 1, factor: float = 2.0) -> float:
    return scale(x=x, factor=factor).output  # type: ignore[no-any-return]


def test_compile_with_parameters_and_name_then_run_the_file(env: Env, tmp_path: Path) -> None:
    path = tmp_path / "scaling.yaml"
    compiler.Compiler().compile(
        pipeline_func=scaling, package_path=str(path), pipeline_name="renamed",
        pipeline_parameters={"x": 5},
    )  # fmt: skip
    spec = load_spec(path)
    assert spec.name == "renamed"
    assert spec.inputs["x"].default == 5 and spec.inputs["factor"].default == 2.0
    assert scaling.spec.inputs["x"].default == 1  # the pipeline itself is unchanged
    run = env.run(str(path))
    assert run.pipeline_name == "renamed"
    assert run.tasks["scale"].outputs["Output"] == 10.0
    assert env.run(str(path), {"x": 2}).tasks["scale"].outputs["Output"] == 4.0


def test_json_package_and_a_single_component(env: Env, tmp_path: Path) -> None:
    path = tmp_path / "scale.json"
    compiler.Compiler().compile(scale, path, pipeline_parameters={"factor": 3.0})
    assert json.loads(path.read_text())["name"] == "scale"
    spec = load_spec(path)
    assert spec.inputs["x"].optional is False and spec.inputs["factor"].default == 3.0
    run = env.run(str(path), {"x": 2}, inline=True)
    assert run.tasks["scale"].outputs["Output"] == 6.0


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"pipeline_parameters": {"y": 1}}, "pipeline_parameters.y", "has no parameter 'y'"),
        ({"pipeline_parameters": {"x": "5"}}, "pipeline_parameters.x", "expects NUMBER_INTEGER"),
        ({"package_path": "p.txt"}, "package_path", "must end with .yaml, .yml or .json"),
        ({"pipeline_func": print}, "pipeline_func", "takes a @dsl.pipeline"),
    ],
)
def test_bad_input_names_the_field(
    tmp_path: Path, kwargs: dict[str, object], field: str, message: str
) -> None:
    args: dict[str, object] = {"pipeline_func": scaling, "package_path": tmp_path / "p.yaml"}
    args.update(kwargs)
    with pytest.raises(InvalidArgument, match=message) as caught:
        compiler.Compiler().compile(**args)  # type: ignore[arg-type]
    assert caught.value.field == field
