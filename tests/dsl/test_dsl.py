"""The DSL: component interfaces, artifacts, and errors at definition time."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import pytest

from shipyard import dsl
from shipyard.errors import InvalidArgument
from shipyard.pipelines import compile_pipeline, load_spec


@dsl.component(packages_to_install=["pandas"], base_image="python:3.11")
def make(rows: int, out: dsl.Output[dsl.Dataset], scale: float = 1.0, tags: list = []) -> None:  # noqa: B006
    pass


@dsl.component
def fit(data: dsl.Input[dsl.Dataset], model: dsl.Output[dsl.Model], depth: int = 6) -> NamedTuple(
    "Out", [("score", float), ("name", str)]
):  # type: ignore[misc]
    return (0.5, "m")


@dsl.component
def use_model(model: dsl.Input[dsl.Model]) -> float:
    return 1.0


def test_component_interface_and_recorded_options() -> None:
    spec = make.component_spec
    assert spec.name == "make" and spec.function == "make"
    assert spec.inputs["rows"].type == "NUMBER_INTEGER" and not spec.inputs["rows"].optional
    assert spec.inputs["scale"].optional and spec.inputs["scale"].default == 1.0
    assert spec.outputs["out"].kind == "artifact" and spec.outputs["out"].type == "system.Dataset"
    assert spec.options == {"packages_to_install": ["pandas"], "base_image": "python:3.11"}
    assert "def make(" in spec.source
    out = fit.component_spec
    assert out.returns == "namedtuple" and out.return_names == ["score", "name"]
    assert out.outputs["score"].type == "NUMBER_DOUBLE"
    assert fit.python_func.__name__ == "fit"


def test_artifact_path_works_as_file_or_folder(tmp_path: Path) -> None:
    as_file = dsl.Dataset(name="a")
    as_file.path = str(tmp_path / "file")
    with open(as_file.path, "w") as f:
        f.write("x")
    assert (tmp_path / "file").is_file()
    as_dir = dsl.Model(name="b")
    as_dir.path = str(tmp_path / "dir")
    with open(as_dir.path + "/model.pkl", "w") as f:
        f.write("x")
    with open(os.path.join(as_dir.path, "other.txt"), "w") as f:
        f.write("y")
    assert sorted(p.name for p in (tmp_path / "dir").iterdir()) == ["model.pkl", "other.txt"]


def test_metrics() -> None:
    metrics = dsl.Metrics()
    metrics.log_metric("rmse", 0.3)
    assert metrics.metadata == {"rmse": 0.3}
    cm = dsl.ClassificationMetrics()
    cm.log_confusion_matrix(["a", "b"], [[1, 2], [3, 4]])
    assert cm.metadata["confusionMatrix"]["rows"] == [[1, 2], [3, 4]]
    json.dumps(cm.metadata)
    with pytest.raises(ValueError, match="expected 2"):
        cm.log_confusion_matrix(["a", "b"], [[1, 2]])


def test_model_wired_into_dataset_input_names_task_and_argument() -> None:
    with pytest.raises(InvalidArgument, match=r"task 'fit-2' argument 'data'.*system.Dataset"):

        @dsl.pipeline
        def bad() -> None:
            first = fit(data=make(rows=1).outputs["out"])
            fit(data=first.outputs["model"])


def test_missing_and_unknown_arguments() -> None:
    with pytest.raises(InvalidArgument, match=r"task 'make' argument 'rows' is missing"):

        @dsl.pipeline
        def missing() -> None:
            make()

    with pytest.raises(InvalidArgument, match=r"task 'make': unknown argument 'row'"):

        @dsl.pipeline
        def unknown() -> None:
            make(rows=1, row=2)

    with pytest.raises(InvalidArgument, match=r"'rows' expects NUMBER_INTEGER"):

        @dsl.pipeline
        def mistyped() -> None:
            make(rows="many")

    with pytest.raises(InvalidArgument, match="keyword arguments only"):

        @dsl.pipeline
        def positional() -> None:
            make(1)

    with pytest.raises(InvalidArgument, match="artifact input"):

        @dsl.pipeline
        def constant_artifact() -> None:
            use_model(model="gs://bucket/model")


def test_cycle_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="dependency cycle"):

        @dsl.pipeline
        def cyclic() -> None:
            first = make(rows=1)
            second = fit(data=first.outputs["out"])
            first.after(second)


def test_loop_outputs_need_collected() -> None:
    with pytest.raises(InvalidArgument, match=r"dsl\.Collected"):

        @dsl.pipeline
        def leaky() -> None:
            with dsl.ParallelFor([1, 2]) as item:
                made = make(rows=item)
            fit(data=made.outputs["out"])


def test_component_outside_pipeline_and_unsupported_hints() -> None:
    with pytest.raises(InvalidArgument, match=r"inside a function decorated with @dsl\.pipeline"):
        make(rows=1)
    with pytest.raises(InvalidArgument, match="needs a type hint"):

        @dsl.component
        def untyped(x) -> None:  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(InvalidArgument, match="unsupported type"):

        @dsl.component
        def odd(x: set[int]) -> None:
            pass


@dsl.pipeline(name="documented", pipeline_root="gs://bucket/root")
def documented(rows: int = 10) -> None:
    made = make(rows=rows).set_display_name("Make data").set_cpu_limit("500m")
    result = (
        fit(data=made.outputs["out"]).set_memory_limit("1Gi").set_retry(3, backoff_duration="2s")
    )
    with dsl.If(result.outputs["score"] > 0.4):
        use_model(model=result.outputs["model"])


def test_compile_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    spec = compile_pipeline(documented, path)
    loaded = load_spec(path)
    assert loaded == spec
    assert loaded.pipeline_root == "gs://bucket/root"
    options = loaded.tasks["make"].options
    assert options.display_name == "Make data" and options.cpu_limit == 0.5
    assert loaded.tasks["fit"].options.memory_limit == 2**30
    assert loaded.tasks["fit"].options.num_retries == 3
    assert loaded.tasks["fit"].options.backoff_duration == 2.0
    assert loaded.tasks["use-model"].conditions[0].op == ">"
    text = path.read_text()
    assert "packages_to_install" in text and "pandas" in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("shipyard.dev/pipeline/v1", "shipyard.dev/pipeline/v9"))
    with pytest.raises(InvalidArgument, match="schemaVersion"):
        load_spec(bad)
