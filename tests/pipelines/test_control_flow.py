"""If/Elif/Else, ParallelFor with Collected, ExitHandler and pipelines inside pipelines."""

from __future__ import annotations

from shipyard import dsl
from tests.pipelines import steps
from tests.pipelines.conftest import Env


@dsl.pipeline(name="branching")
def branching(x: int) -> None:
    value = steps.add(a=x, b=0)
    with dsl.If(value.output > 10):
        steps.echo(value="big")
    with dsl.Elif(value.output > 5):
        steps.echo(value="medium")
    with dsl.Else():
        steps.echo(value="small")
    with dsl.Condition(value.output == 7):
        steps.echo(value="seven")


def test_if_elif_else(env: Env) -> None:
    def taken(x: int) -> list[str]:
        run = env.run(branching, {"x": x}, inline=True)
        return [
            t.outputs["Output"]
            for n, t in run.tasks.items()
            if n.startswith("echo") and t.state == "SUCCEEDED"
        ]

    assert taken(20) == ["big"]
    assert sorted(taken(7)) == ["medium", "seven"]
    assert taken(1) == ["small"]


@dsl.pipeline(name="fan-out")
def fan_out(items: list) -> int:
    with dsl.ParallelFor(items, parallelism=2) as item:
        doubled = steps.add(a=item, b=item)
    with dsl.ParallelFor([10, 20]) as tens:
        steps.add(a=tens, b=1)
    summed = steps.total(values=dsl.Collected(doubled.output))
    return summed.output


def test_parallel_for_and_collected(env: Env) -> None:
    run = env.run(fan_out, {"items": [1, 2, 3]}, parallelism=3)
    assert [run.tasks[f"add[{i}]"].outputs["Output"] for i in range(3)] == [2, 4, 6]
    assert run.tasks["add-2[1]"].outputs["Output"] == 21
    assert run.tasks["total"].outputs["Output"] == 12


@dsl.component
def pairs() -> list:
    return [{"a": 1, "b": 2}, {"a": 3, "b": 4}]


@dsl.pipeline(name="loop-over-output")
def loop_over_output() -> None:
    listing = pairs()
    with dsl.ParallelFor(listing.output) as pair:
        steps.add(a=pair.a, b=pair.b)


def test_parallel_for_over_task_output_with_fields(env: Env) -> None:
    run = env.run(loop_over_output, inline=True)
    assert run.tasks["add[0]"].outputs["Output"] == 3
    assert run.tasks["add[1]"].outputs["Output"] == 7


@dsl.component
def report(status: dsl.PipelineTaskFinalStatus, ledger: str) -> str:
    with open(ledger, "w") as f:
        f.write(status.state)
    return status.state


@dsl.pipeline(name="with-exit")
def with_exit(flag: str, ledger: str, step_ledger: str) -> None:
    cleanup = report(ledger=ledger)
    with dsl.ExitHandler(cleanup):
        steps.fail_unless(flag=flag, ledger=step_ledger)


def test_exit_handler_runs_after_failure(env: Env) -> None:
    ledger = env.tmp / "exit"
    args = {
        "flag": str(env.tmp / "missing"),
        "ledger": str(ledger),
        "step_ledger": str(ledger) + "s",
    }
    run = env.run(with_exit, args, inline=True, raise_on_error=False)
    assert run.state == "FAILED"
    assert run.tasks["report"].state == "SUCCEEDED"
    assert ledger.read_text() == "FAILED"
    (env.tmp / "missing").write_text("")
    ok = env.run(with_exit, args, inline=True)
    assert ok.tasks["report"].outputs["Output"] == "SUCCEEDED"


@dsl.pipeline(name="inner")
def inner(x: int, y: int = 1) -> int:
    return steps.add(a=x, b=y).output


@dsl.pipeline(name="outer")
def outer(x: int) -> None:
    first = inner(x=x)
    second = inner(x=first.output, y=10)
    steps.echo(value="after").after(second)


def test_pipeline_as_component(env: Env) -> None:
    run = env.run(outer, {"x": 5}, inline=True)
    assert run.tasks["inner.add"].outputs["Output"] == 6
    assert run.tasks["inner-2.add"].outputs["Output"] == 16
    assert outer.spec.tasks["echo"].depends_on == ["inner-2.add"]


@dsl.component
def write(text: str, out: dsl.Output[dsl.Dataset]) -> None:
    with open(out.path, "w") as f:
        f.write(text)


@dsl.component
def join(parts: dsl.Input[list[dsl.Dataset]]) -> str:
    texts = []
    for part in parts:
        with open(part.path) as f:
            texts.append(f.read())
    return "+".join(texts)


@dsl.pipeline(name="artifact-fan-in")
def artifact_fan_in() -> str:
    with dsl.ParallelFor(["a", "b", "c"]) as letter:
        written = write(text=letter)
    return join(parts=dsl.Collected(written.outputs["out"])).output


def test_collected_artifacts(env: Env) -> None:
    run = env.run(artifact_fan_in, inline=True)
    assert run.tasks["join"].outputs["Output"] == "a+b+c"
