"""Kubeflow Pipelines v2 semantics of parameters, in every way a step runs: defaults, the
type rules of KFP's driver (inputs) and executor (returns), and InputPath/OutputPath.

Expected values are KFP's: its driver turns a value reaching a ``str`` input into text
(``PbValueToText``), refuses a value of another kind for the other types, and its executor
refuses a return value that is not an instance of the declared type."""

from __future__ import annotations

from typing import NamedTuple, Optional

import pytest

from shipyard import dsl
from shipyard.errors import InvalidArgument
from shipyard.pipelines import _values
from tests.pipelines.conftest import Env, run_in


@dsl.component
def train(rows: int, max_depth: int = 6, label: str = "d", *, scale: float = 1.5) -> str:
    return f"{label}:{rows * max_depth * scale}"


@dsl.pipeline(name="defaults")
def defaults_pipeline(rows: int = 2) -> None:
    train(rows=rows)
    train(rows=rows, max_depth=3, label="e", scale=2.0)


def test_component_defaults_apply_in_every_mode(env: Env, mode: str) -> None:
    run = run_in(mode, env, defaults_pipeline)
    assert run.tasks["train"].outputs["Output"] == "d:18.0"
    assert run.tasks["train-2"].outputs["Output"] == "e:12.0"


@dsl.component
def join(a: str, b: str) -> str:
    return a + b


@dsl.component
def pair() -> dict:
    return {"n": 7, "ratio": 0.5, "flag": True, "items": [1, 2.0], "none": None}


@dsl.pipeline(name="to-str")
def to_str_pipeline() -> None:
    with dsl.ParallelFor([{"a": 1, "b": 10}, {"a": 2.0, "b": True}]) as item:
        join(a=item.a, b=item.b)
    got = pair()
    join(a=got.output["n"], b=got.output["ratio"])
    join(a=got.output["items"], b=got.output["flag"])
    join(a=got.output["none"], b="x")


def test_values_reaching_a_str_input_arrive_as_their_text(env: Env, mode: str) -> None:
    run = run_in(mode, env, to_str_pipeline)
    outputs = {name: t.outputs.get("Output") for name, t in run.tasks.items()}
    assert outputs["join[0]"] == "110"  # not 11: KFP passes "1" and "10"
    assert outputs["join[1]"] == "2true"  # a double 2.0 is written "2"
    assert outputs["join-2"] == "70.5"
    assert outputs["join-3"] == "[1,2]true"
    assert outputs["join-4"] == "x"  # null becomes ""


@dsl.component
def count(n: int, ok: bool = False) -> int:
    return n + 1


@dsl.pipeline(name="mistyped-item")
def mistyped_item(items: list) -> None:
    with dsl.ParallelFor(items) as item:
        count(n=item)


def test_a_value_of_another_kind_fails_the_task_naming_the_input(env: Env, mode: str) -> None:
    run = run_in(mode, env, mistyped_item, {"items": [3, 4.0, "5", True]},
                 raise_on_error=False)  # fmt: skip
    assert run.tasks["count[0]"].outputs["Output"] == 4
    assert run.tasks["count[1]"].outputs["Output"] == 5  # an integral double is an int
    for name, got in (("count[2]", "string '5'"), ("count[3]", "bool True")):
        task = run.tasks[name]
        assert task.state == "FAILED"
        assert task.error == f"input parameter 'n': expected int, got {got}"
    assert run.state == "FAILED"


class Scores(NamedTuple):
    best: float
    name: str


@dsl.component
def returns(kind: str) -> str:
    values = {"int": 5, "str": "five", "none": None}
    return values[kind]  # type: ignore[return-value]


@dsl.component
def returns_float() -> float:
    return 3


@dsl.component
def returns_list(as_tuple: bool) -> list:
    return (1, 2) if as_tuple else [1, 2]  # type: ignore[return-value]


@dsl.component
def returns_optional() -> Optional[str]:  # noqa: UP045 - as KFP code spells it
    return None


@dsl.component
def returns_scores(label: str) -> Scores:
    return (1, label if label else 3)  # type: ignore[return-value]


@dsl.pipeline(name="returns")
def returns_pipeline() -> None:
    returns(kind="str")
    returns(kind="int")
    returns(kind="none")
    returns_float()
    returns_list(as_tuple=False)
    returns_list(as_tuple=True)
    returns_optional()
    returns_scores(label="a")
    returns_scores(label="")


def test_returned_values_are_checked_against_the_declared_type(env: Env, mode: str) -> None:
    run = run_in(mode, env, returns_pipeline, raise_on_error=False)
    tasks = run.tasks
    assert tasks["returns"].outputs["Output"] == "five"
    assert tasks["returns-2"].state == "FAILED"
    assert "component 'returns' returned int 5, want str" in (tasks["returns-2"].error or "")
    assert "component 'returns' returned None, want str" in (tasks["returns-3"].error or "")
    assert tasks["returns-float"].outputs["Output"] == 3  # an int is a float
    assert tasks["returns-list"].outputs["Output"] == [1, 2]
    assert "returned tuple (1, 2), want list" in (tasks["returns-list-2"].error or "")
    assert tasks["returns-optional"].state == "SUCCEEDED"
    assert tasks["returns-optional"].outputs["Output"] is None
    assert tasks["returns-scores"].outputs == {"best": 1, "name": "a"}
    assert "returned int 3, want str for output 'name'" in (
        tasks["returns-scores-2"].error or "")


@dsl.component
def write_outputs(
    text: str,
    data: dsl.OutputPath("Dataset"),
    length: dsl.OutputPath(int),
    flags: dsl.OutputPath("JsonObject"),
) -> None:
    with open(data, "w") as f:
        f.write(text * 2)
    with open(length, "w") as f:
        f.write(f" {len(text) * 2}\n")
    with open(flags, "w") as f:
        f.write('{"upper": false}')


@dsl.component
def read_inputs(data: dsl.InputPath("Dataset"), note: dsl.InputPath(str), n: int) -> str:
    with open(data) as f, open(note) as g:
        return f"{f.read()}|{g.read()}|{n}"


@dsl.pipeline(name="paths")
def paths_pipeline() -> None:
    made = write_outputs(text="ab")
    read_inputs(data=made.outputs["data"], note="hi", n=made.outputs["length"])


def test_input_and_output_paths(env: Env, mode: str) -> None:
    spec = write_outputs.component_spec
    assert spec.outputs["data"].kind == "artifact" and spec.outputs["data"].type == "system.Dataset"
    assert spec.outputs["length"].kind == "parameter"
    assert spec.outputs["length"].type == "NUMBER_INTEGER"
    assert spec.outputs["flags"].type == "STRUCT"
    assert read_inputs.component_spec.inputs["note"].type == "STRING"
    run = run_in(mode, env, paths_pipeline)
    made = run.tasks["write-outputs"].outputs
    assert made["length"] == 4 and made["flags"] == {"upper": False}
    assert made["data"].type == "system.Dataset"
    assert run.tasks["read-inputs"].outputs["Output"] == "abab|hi|4"


@dsl.component
def writes_bad_number(length: dsl.OutputPath(int)) -> None:
    with open(length, "w") as f:
        f.write("four")


@dsl.component
def writes_no_file(length: dsl.OutputPath(float)) -> None:
    pass


@dsl.pipeline(name="bad-paths")
def bad_paths() -> None:
    writes_bad_number()
    writes_no_file()


def test_an_output_path_parameter_must_hold_its_type(env: Env, mode: str) -> None:
    run = run_in(mode, env, bad_paths, raise_on_error=False)
    assert "output parameter 'length': wrote 'four', which is not int" in (
        run.tasks["writes-bad-number"].error or "")
    assert "wrote nothing to its output parameter 'length'" in (
        run.tasks["writes-no-file"].error or "")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1, "1"), (1.0, "1"), (1.5, "1.5"), (-0.0, "0"), (1e21, "1000000000000000000000"),
        (1e-7, "0.0000001"), (True, "true"), (False, "false"), ("x", "x"), (None, ""),
        ([1, "a", None], '[1,"a",null]'), ({"b": 1.0, "a": [2.5]}, '{"a":[2.5],"b":1}'),
    ],
)  # fmt: skip
def test_text_of_a_value_as_kfp_writes_it(value: object, text: str) -> None:
    assert _values.as_text(value) == text


def test_values_read_back_from_an_output_file() -> None:
    assert _values.from_text(" 12\n", "NUMBER_INTEGER") == 12
    assert _values.from_text("2.5", "NUMBER_DOUBLE") == 2.5
    assert [_values.from_text(t, "BOOLEAN") for t in ("T", "false", " 1 ")] == [True, False, True]
    assert _values.from_text("[1, 2]", "LIST") == [1, 2]
    for text, type_ in (("1_000", "NUMBER_INTEGER"), ("yes", "BOOLEAN"), ("{}", "LIST")):
        with pytest.raises(_values.ParameterTypeError):
            _values.from_text(text, type_)


@dsl.component
def exits(code: int) -> None:
    import sys

    print("exiting")
    sys.exit(code)


@dsl.pipeline(name="exits")
def exits_pipeline() -> None:
    exits(code=0)
    exits(code=3)


def test_sys_exit_ends_a_step_as_its_process_would(env: Env, mode: str) -> None:
    run = run_in(mode, env, exits_pipeline, raise_on_error=False)
    assert run.tasks["exits"].state == "SUCCEEDED"  # exit code 0: success, as on KFP
    assert run.tasks["exits-2"].state == "FAILED"
    assert "SystemExit: 3" in (run.tasks["exits-2"].error or "")


@dsl.component
def gpus() -> str:
    return "1"


@dsl.pipeline(name="runtime-resources")
def runtime_resources() -> None:
    wanted = gpus()
    train(rows=1).set_accelerator_limit(wanted.output).set_accelerator_type("NVIDIA_L4")


def test_scheduling_hints_may_come_from_pipeline_values_limits_may_not(env: Env) -> None:
    task = runtime_resources.spec.tasks["train"]
    assert task.options.hints["accelerator_limit"] == {
        "from": {"kind": "task", "task": "gpus", "output": "Output"}}
    assert task.depends_on == ["gpus"]  # it waits for the value, as on KFP
    assert env.run(runtime_resources).tasks["train"].outputs["Output"] == "d:9.0"
    with pytest.raises(InvalidArgument, match="set_cpu_limit takes a constant") as caught:

        @dsl.pipeline(name="runtime-limit")
        def runtime_limit() -> None:
            train(rows=1).set_cpu_limit(gpus().output)

    assert caught.value.field == "train.set_cpu_limit"


def shout(text: str) -> str:
    return text.upper()


@dsl.component(additional_funcs=[shout])
def uses_helper(text: str) -> str:
    return shout(text) + "!"


@dsl.pipeline(name="helpers")
def helpers_pipeline() -> None:
    uses_helper(text="hey")


def test_additional_funcs_are_defined_beside_the_component(env: Env, mode: str) -> None:
    assert uses_helper.component_spec.options == {"additional_funcs": ["shout"]}
    run = run_in(mode, env, helpers_pipeline)
    assert run.tasks["uses-helper"].outputs["Output"] == "HEY!"


@dsl.pipeline(name="arguments")
def arguments_pipeline(word: str = "w", times: int = 1, ratio: float = 0.5) -> None:
    join(a=word, b=word)
    count(n=times)


def test_pipeline_arguments_are_typed_as_kfp_types_them(env: Env) -> None:
    run = env.run(arguments_pipeline, {"word": 5, "times": 2.0, "ratio": 1})
    assert run.arguments == {"word": "5", "times": 2, "ratio": 1}
    assert run.tasks["join"].outputs["Output"] == "55"
    assert run.tasks["count"].outputs["Output"] == 3
    for bad in ({"times": 2.5}, {"times": True}, {"ratio": "x"}):
        with pytest.raises(InvalidArgument, match="expects") as caught:
            env.run(arguments_pipeline, bad)
        assert caught.value.field == f"arguments.{next(iter(bad))}"
