"""Small components shared by the pipeline tests. Each appends a line to ``ledger`` when
it executes, so a test can count real executions (cache hits append nothing)."""

from __future__ import annotations

from shipyard import dsl


@dsl.component
def produce(ledger: str, text: str, out: dsl.Output[dsl.Dataset]) -> int:
    with open(ledger, "a") as f:
        f.write("produce\n")
    with open(out.path, "w") as f:
        f.write(text)
    return len(text)


@dsl.component
def transform(ledger: str, data: dsl.Input[dsl.Dataset], out: dsl.Output[dsl.Dataset]) -> None:
    with open(ledger, "a") as f:
        f.write("transform\n")
    with open(data.path) as src, open(out.path, "w") as dst:
        dst.write(src.read().upper())


@dsl.component
def transform_v2(ledger: str, data: dsl.Input[dsl.Dataset], out: dsl.Output[dsl.Dataset]) -> None:
    # Different code, byte-identical output: consumers stay cached.
    with open(ledger, "a") as f:
        f.write("transform\n")
    with open(data.path) as src:
        text = src.read()
    with open(out.path, "w") as dst:
        dst.write("".join(c.upper() for c in text))


@dsl.component
def transform_v3(ledger: str, data: dsl.Input[dsl.Dataset], out: dsl.Output[dsl.Dataset]) -> None:
    # Different output: consumers re-execute.
    with open(ledger, "a") as f:
        f.write("transform\n")
    with open(data.path) as src, open(out.path, "w") as dst:
        dst.write(src.read().lower())


@dsl.component
def consume(ledger: str, data: dsl.Input[dsl.Dataset]) -> str:
    with open(ledger, "a") as f:
        f.write("consume\n")
    with open(data.path) as f:
        return f.read()


@dsl.component
def sleep(seconds: float, tag: str) -> float:
    import time

    start = time.time()
    time.sleep(seconds)
    return start


@dsl.component
def fail_unless(flag: str, ledger: str) -> str:
    import os

    with open(ledger, "a") as f:
        f.write("fail_unless\n")
    if not os.path.exists(flag):
        raise RuntimeError(f"flag file {flag} is missing")
    return "ok"


@dsl.component
def add(a: int, b: int) -> int:
    return a + b


@dsl.component
def total(values: list) -> int:
    return sum(values)


@dsl.component
def echo(value: str) -> str:
    print(f"echo {value}")
    return value


@dsl.component
def environment() -> dict:
    import os

    keys = ("SHIPYARD_PROJECT", "SHIPYARD_URI", "SHIPYARD_HOME", "SHIPYARD_PIPELINE_RUN_ID",
            "SHIPYARD_EXECUTION_ID")  # fmt: skip
    return {k: os.environ.get(k, "") for k in keys} | {"pid": str(os.getpid())}
