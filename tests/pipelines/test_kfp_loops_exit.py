"""Two things KFP v2 does that Shipyard now does too (issue 17): a ``dsl.ParallelFor`` over
a list of artifacts (its item is one artifact), and a nested pipeline as a
``dsl.ExitHandler``'s exit task (all its tasks run once the guarded ones ended, whatever
their outcome). In every runner mode; kfp-compiled YAML of both runs in test_kfp_yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from shipyard import dsl
from shipyard.errors import InvalidArgument
from shipyard.store.schema import events
from tests.pipelines.conftest import Env, run_in


@dsl.component
def write_text(text: str, out: dsl.Output[dsl.Dataset]) -> None:
    with open(out.path, "w") as f:
        f.write(text)


@dsl.component
def read_text(data: dsl.Input[dsl.Dataset]) -> str:
    with open(data.path) as f:
        return f.read().upper()


@dsl.component
def joined(texts: list) -> str:  # type: ignore[type-arg]
    return ",".join(texts)


@dsl.component
def sizes(data: dsl.Input[list[dsl.Dataset]]) -> int:
    import os

    return sum(os.path.getsize(d.path) for d in data)


@dsl.pipeline(name="read-each")
def read_each(datasets: dsl.Input[list[dsl.Dataset]]) -> None:
    with dsl.ParallelFor(datasets) as each:
        read_text(data=each)


@dsl.pipeline(name="loop-artifacts")
def loop_artifacts(words: list = ["ab", "c", "def"]) -> None:  # type: ignore[type-arg]  # noqa: B006
    with dsl.ParallelFor(words) as word:
        made = write_text(text=word)
    with dsl.ParallelFor(dsl.Collected(made.outputs["out"]), parallelism=2) as each:
        read = read_text(data=each)
    joined(texts=dsl.Collected(read.output))
    sizes(data=dsl.Collected(made.outputs["out"]))
    read_each(datasets=dsl.Collected(made.outputs["out"]))


def test_a_loop_over_artifacts_gives_each_iteration_one_artifact(env: Env, mode: str) -> None:
    run = run_in(mode, env, loop_artifacts, {"words": ["ab", "c", "def"]})
    assert run.state == "SUCCEEDED"
    # One iteration per artifact, in the order they were collected.
    assert [run.tasks[f"read-text[{i}]"].outputs["Output"] for i in range(3)] == [
        "AB", "C", "DEF"]
    assert run.tasks["joined"].outputs["Output"] == "AB,C,DEF"
    assert run.tasks["sizes"].outputs["Output"] == 6
    # A nested pipeline's loop over its Input[List[Dataset]] input.
    nested = sorted(v.outputs["Output"] for k, v in run.tasks.items()
                    if k.startswith("read-each.read-text["))
    assert nested == ["AB", "C", "DEF"]
    # Each iteration's input is the producer's artifact, recorded as such.
    made = run.tasks["write-text[1]"].outputs["out"]
    with env.store.read() as conn:
        inputs = conn.execute(
            select(events.c.name, events.c.artifact_id).where(
                events.c.execution_id == run.tasks["read-text[1]"].execution_id,
                events.c.kind == "input")).all()
    assert [tuple(row) for row in inputs] == [("data", made.artifact_id)]


@dsl.component
def model_in(m: dsl.Input[dsl.Model]) -> str:
    return m.path


@dsl.component
def text_in(text: str) -> str:
    return text


def test_a_loop_item_must_fit_the_input_it_feeds() -> None:
    with pytest.raises(InvalidArgument) as wrong_type:

        @dsl.pipeline(name="bad")
        def bad_type(words: list = ["a"]) -> None:  # type: ignore[type-arg]  # noqa: B006
            with dsl.ParallelFor(words) as word:
                made = write_text(text=word)
            with dsl.ParallelFor(dsl.Collected(made.outputs["out"])) as each:
                model_in(m=each)

    assert wrong_type.value.message == (
        "task 'model-in' argument 'm' expects artifact system.Model but got a loop item of "
        "type system.Dataset")

    with pytest.raises(InvalidArgument, match="expects a parameter STRING but got a loop item"):

        @dsl.pipeline(name="bad")
        def artifact_into_text(words: list = ["a"]) -> None:  # type: ignore[type-arg]  # noqa: B006
            with dsl.ParallelFor(words) as word:
                made = write_text(text=word)
            with dsl.ParallelFor(dsl.Collected(made.outputs["out"])) as each:
                text_in(text=each)

    with pytest.raises(InvalidArgument, match="a loop item over values cannot feed it"):

        @dsl.pipeline(name="bad")
        def value_into_artifact(words: list = ["a"]) -> None:  # type: ignore[type-arg]  # noqa: B006
            with dsl.ParallelFor(words) as word:
                read_text(data=word)

    with pytest.raises(InvalidArgument, match="is one artifact, not a list of them"):

        @dsl.pipeline(name="bad")
        def one_artifact() -> None:
            made = write_text(text="x")
            with dsl.ParallelFor(made.outputs["out"]) as each:
                read_text(data=each)


# -- a nested pipeline as the exit task --------------------------------------------------------


@dsl.component
def note(ledger: str, text: str) -> str:
    with open(ledger, "a") as f:
        f.write(text + "\n")
    return text


@dsl.component
def fail_if(flag: bool) -> str:
    if flag:
        raise RuntimeError("asked to fail")
    return "ok"


@dsl.pipeline(name="cleanup")
def cleanup(ledger: str) -> str:
    first = note(ledger=ledger, text="cleanup-1")
    return note(ledger=ledger, text="cleanup-2").after(first).output


@dsl.pipeline(name="exit-nested")
def exit_nested(ledger: str, fail: bool = True) -> None:
    done = cleanup(ledger=ledger)
    with dsl.ExitHandler(done):
        guarded = fail_if(flag=fail)
        note(ledger=ledger, text="guarded").after(guarded)


@pytest.mark.parametrize("fail", [True, False])
def test_a_nested_pipeline_runs_on_exit_whatever_the_outcome(
    env: Env, mode: str, fail: bool, tmp_path: Path
) -> None:
    ledger = tmp_path / f"ledger-{mode}-{fail}"
    run = run_in(mode, env, exit_nested, {"ledger": str(ledger), "fail": fail},
                 raise_on_error=False)
    assert run.state == ("FAILED" if fail else "SUCCEEDED")
    assert run.tasks["fail-if"].state == ("FAILED" if fail else "SUCCEEDED")
    assert run.tasks["note"].state == ("SKIPPED" if fail else "SUCCEEDED")
    # Both of the exit pipeline's tasks ran, after everything guarded, in their order.
    assert run.tasks["cleanup.note"].state == "SUCCEEDED"
    assert run.tasks["cleanup.note-2"].outputs["Output"] == "cleanup-2"
    lines = ledger.read_text().split()
    assert lines[-2:] == ["cleanup-1", "cleanup-2"]
    assert lines[:-2] == ([] if fail else ["guarded"])
