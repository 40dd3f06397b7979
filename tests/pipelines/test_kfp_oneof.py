"""``dsl.OneOf``: the output of whichever branch of an If/Elif/Else chain ran, as on KFP."""

from __future__ import annotations

import pytest

from shipyard import dsl
from shipyard.errors import InvalidArgument
from tests.pipelines.conftest import Env, run_in


@dsl.component
def flip(side: str) -> str:
    return side


@dsl.component
def say(text: str) -> str:
    return f"said {text}"


@dsl.component
def write(text: str, out: dsl.Output[dsl.Dataset]) -> None:
    with open(out.path, "w") as f:
        f.write(text)


@dsl.component
def read(data: dsl.Input[dsl.Dataset]) -> str:
    with open(data.path) as f:
        return f.read()


@dsl.pipeline(name="one-of")
def one_of(side: str) -> str:
    coin = flip(side=side)
    with dsl.If(coin.output == "heads"):
        heads = say(text="heads")
        heads_data = write(text="H")
    with dsl.Elif(coin.output == "tails"):
        tails = say(text="tails")
        tails_data = write(text="T")
    with dsl.Else():
        edge = say(text="edge")
        edge_data = write(text="E")
    read(data=dsl.OneOf(heads_data.outputs["out"], tails_data.outputs["out"],
                        edge_data.outputs["out"]))  # fmt: skip
    chosen = dsl.OneOf(heads.output, tails.output, edge.output)
    return say(text=chosen).output  # type: ignore[no-any-return]


@pytest.mark.parametrize(("side", "said", "read"),
                         [("heads", "said heads", "H"), ("tails", "said tails", "T"),
                          ("edge", "said edge", "E")])  # fmt: skip
def test_one_of_takes_the_branch_that_ran(
    env: Env, mode: str, side: str, said: str, read: str
) -> None:
    run = run_in(mode, env, one_of, {"side": side})
    assert run.tasks["say-4"].outputs["Output"] == f"said {said}"
    assert run.tasks["read"].outputs["Output"] == read
    ran = [n for n in ("say", "say-2", "say-3") if run.tasks[n].state == "SUCCEEDED"]
    assert len(ran) == 1


def test_one_of_is_refused_outside_branches_or_with_mixed_types() -> None:
    with pytest.raises(InvalidArgument, match=r"not inside a dsl\.If/Elif/Else branch"):

        @dsl.pipeline(name="plain")
        def plain() -> None:
            say(text=dsl.OneOf(flip(side="a").output, flip(side="b").output))

    with pytest.raises(InvalidArgument, match="must have one type"):

        @dsl.pipeline(name="mixed")
        def mixed() -> None:
            with dsl.If(flip(side="a").output == "a"):
                text = say(text="x")
            with dsl.Else():
                data = write(text="y")
            dsl.OneOf(text.output, data.outputs["out"])


@dsl.component
def double(num: int) -> int:
    return 2 * num


@dsl.component
def as_list(nums: list) -> list:
    return nums


@dsl.pipeline(name="nested-collected")
def nested_collected() -> None:
    with dsl.ParallelFor([1, 2, 3]), dsl.ParallelFor([10, 20]) as y:
        doubled = double(num=y)
    as_list(nums=dsl.Collected(doubled.output))
    with dsl.ParallelFor([1, 2]):
        with dsl.ParallelFor([5, 6]) as z:
            inner = double(num=z)
        as_list(nums=dsl.Collected(inner.output))


def test_collected_over_nested_loops_is_nested_as_on_kfp(env: Env) -> None:
    run = env.run(nested_collected)
    assert run.tasks["as-list"].outputs["Output"] == [[20, 40], [20, 40], [20, 40]]
    # Inside the outer loop only the inner loop is collected: one level.
    assert run.tasks["as-list-2[1]"].outputs["Output"] == [10, 12]
