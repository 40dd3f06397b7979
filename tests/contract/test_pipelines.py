"""Pipelines through the public SDK: locally in the caller, remotely on the server's worker."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from shipyard import dsl
from shipyard.pipelines import PipelineRunFailed


@dsl.component
def make_numbers(count: int, out: dsl.Output[dsl.Dataset]) -> None:
    with open(out.path, "w") as f:
        f.write("\n".join(str(i) for i in range(count)))


@dsl.component
def total(numbers: dsl.Input[dsl.Dataset]) -> int:
    with open(numbers.path) as f:
        return sum(int(line) for line in f if line.strip())


@dsl.component
def explode(value: int) -> int:
    if value > 0:
        raise ValueError(f"refusing {value}")
    return value


@dsl.pipeline(name="sum-numbers")
def sum_numbers(count: int = 10) -> None:
    numbers = make_numbers(count=count)
    total(numbers=numbers.outputs["out"])


@dsl.pipeline(name="explodes")
def explodes(value: int = 1) -> None:
    explode(value=value)


def test_run_then_cached_rerun(sy: ModuleType, tmp_path: Path) -> None:
    run = sy.run_pipeline(sum_numbers, {"count": 5})
    assert run.state == "SUCCEEDED"
    assert run.tasks["total"].outputs["Output"] == 10
    again = sy.run_pipeline(sum_numbers, {"count": 5})
    assert all(t.cached for t in again.tasks.values())
    spec = tmp_path / "p.yaml"
    sy.compile_pipeline(sum_numbers, spec)
    from_file = sy.run_pipeline(str(spec), {"count": 6})
    assert from_file.tasks["total"].outputs["Output"] == 15
    listed = sy.list_pipeline_runs(pipeline_name="sum-numbers")
    assert {r.id for r in listed} >= {run.id, again.id, from_file.id}


def test_failure_carries_the_step_and_traceback(sy: ModuleType) -> None:
    with pytest.raises(PipelineRunFailed) as info:
        sy.run_pipeline(explodes, {"value": 3})
    failed = info.value.run
    assert failed.tasks["explode"].state == "FAILED"
    assert "refusing 3" in (failed.tasks["explode"].error or "")
    assert "refusing 3" in sy.get_task_log(failed.id, "explode")
    quiet = sy.run_pipeline(explodes, {"value": 2}, raise_on_error=False)
    assert quiet.state == "FAILED"


@dsl.component
def make_table(out: dsl.Output[dsl.Dataset]) -> None:
    import pandas as pd

    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [2.0, 4.0, 6.0, 8.0]}).to_csv(
        out.path, index=False)


@dsl.component
def fit_and_register(table: dsl.Input[dsl.Dataset]) -> int:
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    import shipyard as sy

    frame = pd.read_csv(table.path)
    model = LinearRegression().fit(frame[["x"]], frame["y"])
    return int(sy.register_model("line", model, input_example=frame[["x"]]).version)


@dsl.pipeline(name="fit-line")
def fit_line() -> None:
    table = make_table()
    fit_and_register(table=table.outputs["out"])


def test_model_registered_in_a_step_has_lineage_to_its_data(sy: ModuleType) -> None:
    run = sy.run_pipeline(fit_line)
    version = sy.get_model_version("line", version=run.tasks["fit-and-register"].outputs["Output"])
    graph = sy.get_lineage(version.artifact_id)
    steps = {e.name.rpartition("/")[2] for e in graph.executions}
    assert steps >= {"make-table", "fit-and-register"}
    assert "system.Dataset" in {a.type for a in graph.artifacts}


def test_a_run_records_where_its_code_came_from(sy: ModuleType) -> None:
    import platform

    from shipyard.tracking import source

    run = sy.run_pipeline(sum_numbers, {"count": 3})
    assert run.source["source.python"] == platform.python_version()
    # The same tags a tracking run started here records (tracking.source), in both modes.
    for key, value in source.source_tags().items():
        assert run.source[key] == value
    assert sy.get_pipeline_run(run.id).source == run.source
