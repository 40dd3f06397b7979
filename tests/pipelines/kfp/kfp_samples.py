"""Pipelines written against kfp (``from kfp import dsl``), compiled by the real kfp compiler
into the YAML files beside this one (``make_fixtures.py``), and run by the tests both from
that YAML and from this source with the import swapped for ``from shipyard import dsl``."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, InputPath, Model, Output, OutputPath

BASE = "python:3.11"


@dsl.component(base_image=BASE)
def add(a: int, b: int = 10) -> int:
    return a + b


@dsl.component(base_image=BASE)
def concat(x: str, y: str = "!") -> str:
    return x + y


@dsl.component(base_image=BASE, packages_to_install=["six"])
def stats(values: list) -> NamedTuple("Outputs", [("total", int), ("mean", float)]):
    from collections import namedtuple

    out = namedtuple("Outputs", ["total", "mean"])
    return out(sum(values), sum(values) / len(values))


@dsl.component(base_image=BASE)
def make_data(rows: int, data: Output[Dataset], note: OutputPath(str)) -> str:
    with open(data.path, "w") as f:
        f.write("\n".join(str(i) for i in range(rows)))
    data.metadata["rows"] = rows
    with open(note, "w") as f:
        f.write(f"made {rows}")
    return "ok"


@dsl.component(base_image=BASE)
def train(data: Input[Dataset], model: Output[Model], depth: int = 3) -> float:
    with open(data.path) as f:
        count = len(f.read().split())
    with open(model.path, "w") as f:
        f.write(f"depth={depth} rows={count}")
    return count * depth / 10


@dsl.component(base_image=BASE)
def read_path(model: InputPath("Model")) -> str:
    with open(model) as f:
        return f.read()


@dsl.component(base_image=BASE)
def flip(seed: int) -> str:
    return ["heads", "tails", "edge"][seed % 3]


@dsl.component(base_image=BASE)
def fail_if(flag: bool) -> str:
    if flag:
        raise RuntimeError("asked to fail")
    return "fine"


@dsl.component(base_image=BASE)
def final(status: dsl.PipelineTaskFinalStatus, label: str = "done") -> str:
    return f"{label}:{status.state}"


@dsl.pipeline(name="kfp-params")
def params_pipeline(a: int = 1, word: str = "hi",
                    pairs: list = [{"x": 1, "y": 10}, {"x": 2.5, "y": True}]):  # noqa: B006
    first = add(a=a)
    add(a=first.output, b=5)
    concat(x=word)
    with dsl.ParallelFor(pairs, parallelism=1) as item:
        concat(x=item.x, y=item.y)
    summed = stats(values=[1, 2, 3, 6])
    add(a=summed.outputs["total"])


@dsl.pipeline(name="kfp-artifacts")
def artifacts_pipeline(rows: int = 4):
    made = make_data(rows=rows)
    trained = train(data=made.outputs["data"], depth=2).set_caching_options(False)
    read_path(model=trained.outputs["model"])
    concat(x=made.outputs["note"], y=made.outputs["Output"])


@dsl.pipeline(name="kfp-control")
def control_pipeline(seed: int = 1, items: list = [1, 2, 3]):  # noqa: B006
    coin = flip(seed=seed)
    with dsl.If(coin.output == "heads"):
        heads = concat(x="H")
    with dsl.Elif(coin.output == "tails"):
        tails = concat(x="T")
    with dsl.Else():
        edge = concat(x="E")
    concat(x=dsl.OneOf(heads.output, tails.output, edge.output), y="?")
    with dsl.ParallelFor(items) as item:
        added = add(a=item, b=100)
    stats(values=dsl.Collected(added.output))


@dsl.pipeline(name="kfp-exit")
def exit_pipeline(fail: bool = True):
    last = final(label="bye")
    with dsl.ExitHandler(last):
        failed = fail_if(flag=fail).set_retry(num_retries=1, backoff_duration="0s")
        concat(x=failed.output)
        concat(x="after", y=".").after(failed).ignore_upstream_failure()


@dsl.pipeline(name="kfp-inner")
def inner(n: int = 2) -> int:
    return add(a=n, b=n).output


@dsl.pipeline(name="kfp-nested")
def nested_pipeline(n: int = 3):
    twice = inner(n=n)
    add(a=twice.output, b=1)
    imported = dsl.importer(
        artifact_uri="{{IMPORT_URI}}", artifact_class=Dataset, reimport=True,
        metadata={"source": "fixture"},
    )
    train(data=imported.output)


@dsl.container_component
def shout(text: str, out: OutputPath(str)):
    return dsl.ContainerSpec(
        image="alpine:3",
        command=["sh", "-c", 'printf "%s!" "$0" > "$1"'],
        args=[text, out],
    )


@dsl.pipeline(name="kfp-containers")
def containers_pipeline(text: str = "hey"):
    said = shout(text=text)
    concat(x=said.outputs["out"], y="?")


@dsl.component(base_image=BASE)
def describe(data: Input[Dataset] = None, label: str = "none") -> str:
    if data is None:
        return f"{label}: no data"
    with open(data.path) as f:
        return f"{label}: {len(f.read().split())} rows"


@dsl.pipeline(name="kfp-describe")
def describe_inner(data: Input[Dataset] = None, label: str = "inner") -> str:
    return describe(data=data, label=label).output


@dsl.pipeline(name="kfp-branches")
def branches_pipeline(seed: int = 0):
    coin = flip(seed=seed)
    with dsl.If(coin.output == "heads"):
        small = make_data(rows=2)
    with dsl.Else():
        large = make_data(rows=7)
    chosen = dsl.OneOf(small.outputs["data"], large.outputs["data"])
    describe(data=chosen, label="chosen")
    describe_inner(data=chosen)
    describe_inner()


def shout_text(text: str) -> str:
    return text.upper()


@dsl.component(base_image=BASE, additional_funcs=[shout_text])
def loud(text: str) -> str:
    return shout_text(text) + "!"


@dsl.pipeline(name="kfp-helpers")
def helpers_pipeline(text: str = "hey"):
    loud(text=text)


@dsl.component(base_image=BASE)
def write_text(text: str, out: Output[Dataset]):
    with open(out.path, "w") as f:
        f.write(text)


@dsl.component(base_image=BASE)
def read_text(data: Input[Dataset]) -> str:
    with open(data.path) as f:
        return f.read().upper()


@dsl.pipeline(name="kfp-read-each")
def read_each(datasets: Input[list[Dataset]]):
    with dsl.ParallelFor(datasets) as each:
        read_text(data=each)


@dsl.pipeline(name="kfp-loop-artifacts")
def loop_artifacts_pipeline(words: list = ["a", "b", "c"]):  # noqa: B006
    with dsl.ParallelFor(words) as word:
        made = write_text(text=word)
    read_each(datasets=dsl.Collected(made.outputs["out"]))


@dsl.pipeline(name="kfp-cleanup")
def cleanup(label: str = "c") -> str:
    return concat(x=label, y="-cleaned").output


@dsl.pipeline(name="kfp-exit-nested")
def exit_nested_pipeline(fail: bool = True):
    done = cleanup(label="bye")
    with dsl.ExitHandler(done):
        fail_if(flag=fail)
        add(a=1, b=2)


PIPELINES = {
    "params": params_pipeline,
    "artifacts": artifacts_pipeline,
    "control": control_pipeline,
    "exit": exit_pipeline,
    "nested": nested_pipeline,
    "containers": containers_pipeline,
    "branches": branches_pipeline,
    "helpers": helpers_pipeline,
    "loop_artifacts": loop_artifacts_pipeline,
    "exit_nested": exit_nested_pipeline,
}
# Components compiled on their own (``Compiler().compile(component, ...)``).
COMPONENTS = {"component_train": train}
