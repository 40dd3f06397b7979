"""YAML written by the real kfp compiler (``tests/pipelines/kfp/*.yaml``, from
``kfp_samples.py`` by ``make_fixtures.py``) runs on Shipyard without the Python source,
and its tasks end as the same pipeline's do when run from Python with only the import line
changed (``from kfp import dsl`` to ``from shipyard import dsl``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from shipyard import components, dsl
from shipyard.errors import InvalidArgument
from shipyard.pipelines import PipelineRun, load_spec
from shipyard.pipelines.models import ArtifactOutput
from tests.pipelines.conftest import Env
from tests.pipelines.test_kfp_containers import runtime  # noqa: F401 - a fixture

KFP = Path(__file__).parent / "kfp"


def swapped(tmp_path: Path, replacements: dict[str, str]) -> ModuleType:
    """``kfp_samples.py`` with its imports swapped for Shipyard's, imported from a file."""
    text = (KFP / "kfp_samples.py").read_text()
    text = text.replace("from kfp import dsl", "from shipyard import dsl")
    text = text.replace("from kfp.dsl import", "from shipyard.dsl import")
    for old, new in replacements.items():
        text = text.replace(old, new)
    path = tmp_path / "shipyard_samples.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("shipyard_samples", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["shipyard_samples"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["shipyard_samples"]
    return module


def fixture(name: str, tmp_path: Path, replacements: dict[str, str]) -> Path:
    text = (KFP / f"{name}.yaml").read_text()
    for old, new in replacements.items():
        text = text.replace(old, new)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def summary(run: PipelineRun) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, ArtifactOutput):
            return (value.type, value.digest, value.metadata)
        return value

    return {name: (task.state, {k: plain(v) for k, v in task.outputs.items()})
            for name, task in run.tasks.items()}  # fmt: skip


@pytest.mark.parametrize(
    "name",
    ["params", "artifacts", "control", "exit", "nested", "containers", "branches", "helpers",
     "loop_artifacts", "exit_nested"])
def test_kfp_yaml_runs_as_the_python_pipeline_does(
    env: Env, tmp_path: Path, name: str, runtime: Path  # noqa: F811 - the fixture
) -> None:
    data = tmp_path / "import.csv"
    data.write_text("1\n2\n3\n")
    replacements = {"{{IMPORT_URI}}": str(data)}
    from_yaml = env.run(str(fixture(name, tmp_path, replacements)), enable_caching=False,
                        raise_on_error=False)  # fmt: skip
    module = swapped(tmp_path, replacements)
    from_python = env.run(module.PIPELINES[name], enable_caching=False, raise_on_error=False)
    assert summary(from_yaml) == summary(from_python)
    assert from_yaml.state == from_python.state


def test_kfp_semantics_of_the_yaml_runs(env: Env, tmp_path: Path) -> None:
    outputs = {n: t.outputs for n, t in env.run(str(KFP / "params.yaml")).tasks.items()}
    assert outputs["add"]["Output"] == 11 and outputs["add-2"]["Output"] == 16
    assert outputs["concat"]["Output"] == "hi!"
    assert outputs["concat-2[0]"]["Output"] == "110"  # ints into str inputs: their text
    assert outputs["concat-2[1]"]["Output"] == "2.5true"
    assert outputs["stats"] == {"total": 12, "mean": 3.0}
    assert outputs["add-3"]["Output"] == 22
    control = env.run(str(KFP / "control.yaml"), {"seed": 2, "items": [5, 6]})
    assert control.tasks["concat-3"].state == "SUCCEEDED"  # seed 2: "edge", the Else
    assert control.tasks["concat"].state == control.tasks["concat-2"].state == "SKIPPED"
    assert control.tasks["concat-4"].outputs["Output"] == "E!?"
    assert control.tasks["stats"].outputs == {"total": 211, "mean": 105.5}
    exit_run = env.run(str(KFP / "exit.yaml"), raise_on_error=False)
    tasks = exit_run.tasks
    assert tasks["fail-if"].state == "FAILED" and tasks["fail-if"].attempts == 2  # one retry
    assert tasks["concat"].state == "SKIPPED"
    assert tasks["concat-2"].outputs["Output"] == "after."  # ignore_upstream_failure
    assert tasks["final"].outputs["Output"] == "bye:FAILED"  # the exit handler ran
    branches = {n: t.outputs.get("Output") for n, t in
                env.run(str(KFP / "branches.yaml"), {"seed": 1}).tasks.items()}  # fmt: skip
    assert branches["describe"] == "chosen: 7 rows"  # the Else branch's artifact (OneOf)
    assert branches["kfp-describe.describe"] == "inner: 7 rows"
    assert branches["kfp-describe-2.describe"] == "inner: no data"  # optional input left out
    spec = load_spec(KFP / "artifacts.yaml")
    assert spec.tasks["train"].options.enable_caching is False
    assert spec.components["stats" if "stats" in spec.components else "make-data"].source


def test_kubernetes_platform_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k8s.yaml"
    path.write_text((KFP / "params.yaml").read_text() + "---\nplatforms:\n  kubernetes: {}\n")
    with pytest.raises(InvalidArgument, match="platform configuration") as caught:
        load_spec(path)
    assert caught.value.field == "platforms"


def test_a_component_compiled_by_kfp_loads_as_a_component(env: Env, tmp_path: Path) -> None:
    train = components.load_component_from_file(KFP / "component_train.yaml")
    assert train.component_spec.inputs["depth"].default == 3
    assert train.component_spec.outputs["model"].type == "system.Model"
    module = swapped(tmp_path, {})

    def pipeline(component: object) -> dsl.Pipeline:
        @dsl.pipeline(name="use-component")
        def use(rows: int = 5) -> None:
            made = module.make_data(rows=rows)
            component(data=made.outputs["data"], depth=4)  # type: ignore[operator]

        return use

    from_yaml = env.run(pipeline(train), enable_caching=False)
    from_python = env.run(pipeline(module.train), enable_caching=False)
    assert summary(from_yaml) == summary(from_python)
    assert from_yaml.tasks["train"].outputs["Output"] == 2.0  # 5 rows * depth 4 / 10


def test_google_cloud_pipeline_components_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "gcpc.yaml"
    text = (KFP / "containers.yaml").read_text()
    path.write_text(text.replace(
        "image: alpine:3", "image: gcr.io/ml-pipeline/google-cloud-pipeline-components:2.14.0"))
    with pytest.raises(InvalidArgument, match="a Google Cloud pipeline component") as caught:
        load_spec(path)
    assert caught.value.field == "components.shout"
