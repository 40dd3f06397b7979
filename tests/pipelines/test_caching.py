"""Caching: nothing changed runs nothing; changed code reruns only where inputs changed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shipyard import dsl
from shipyard.artifacts.paths import blob_key
from shipyard.pipelines.models import ArtifactOutput
from tests.pipelines import steps
from tests.pipelines.conftest import Env, count_lines


def chain(middle: Any) -> dsl.Pipeline:
    @dsl.pipeline(name="chain")
    def pipe(ledger: str, text: str = "hello") -> None:
        first = steps.produce(ledger=ledger, text=text)
        second = middle(ledger=ledger, data=first.outputs["out"])
        steps.consume(ledger=ledger, data=second.outputs["out"])

    return pipe


def ledger(env: Env) -> tuple[str, Callable[[], int]]:
    path = env.tmp / "ledger.txt"
    return str(path), count_lines(path)


def test_rerun_with_nothing_changed_executes_nothing(env: Env) -> None:
    path, executed = ledger(env)
    first = env.run(chain(steps.transform), {"ledger": path}, inline=True)
    assert executed() == 3 and not any(t.cached for t in first.tasks.values())
    again = env.run(chain(steps.transform), {"ledger": path}, inline=True)
    assert executed() == 3
    assert all(t.cached for t in again.tasks.values())
    assert again.tasks["consume"].outputs["Output"] == "HELLO"
    # A changed parameter re-executes everything downstream of it.
    env.run(chain(steps.transform), {"ledger": path, "text": "bye"}, inline=True)
    assert executed() == 6


def test_changed_code_reruns_only_where_inputs_changed(env: Env) -> None:
    path, executed = ledger(env)
    env.run(chain(steps.transform), {"ledger": path}, inline=True)
    assert executed() == 3
    same_bytes = env.run(chain(steps.transform_v2), {"ledger": path}, inline=True)
    assert executed() == 4  # only the changed step
    assert [n for n, t in same_bytes.tasks.items() if not t.cached] == ["transform-v2"]
    different = env.run(chain(steps.transform_v3), {"ledger": path}, inline=True)
    assert executed() == 6  # the changed step and its consumer
    assert different.tasks["produce"].cached
    assert different.tasks["consume"].outputs["Output"] == "hello"


def test_caching_disabled_per_run_and_per_task(env: Env) -> None:
    path, executed = ledger(env)
    env.run(chain(steps.transform), {"ledger": path}, inline=True)
    env.run(chain(steps.transform), {"ledger": path}, inline=True, enable_caching=False)
    assert executed() == 6

    @dsl.pipeline(name="per-task")
    def pipe(ledger: str) -> None:
        first = steps.produce(ledger=ledger, text="hello")
        first.set_caching_options(enable_caching=False)
        steps.consume(ledger=ledger, data=first.outputs["out"])

    env.run(pipe, {"ledger": path}, inline=True)
    assert executed() == 8
    run = env.run(pipe, {"ledger": path}, inline=True)
    assert not run.tasks["produce"].cached and run.tasks["consume"].cached
    assert executed() == 9


def test_max_cache_age(env: Env) -> None:
    path, executed = ledger(env)
    env.run(chain(steps.transform), {"ledger": path}, inline=True)
    time.sleep(0.05)
    env.run(chain(steps.transform), {"ledger": path}, inline=True, max_cache_age=0.01)
    assert executed() == 6
    env.run(chain(steps.transform), {"ledger": path}, inline=True, max_cache_age=3600)
    assert executed() == 6


def test_a_deleted_output_blob_makes_its_step_run_again(env: Env) -> None:
    path, executed = ledger(env)
    first = env.run(chain(steps.transform), {"ledger": path}, inline=True)
    assert executed() == 3
    out = first.tasks["transform"].outputs["out"]
    assert isinstance(out, ArtifactOutput) and out.layout == "file"
    blob = env.tmp / "artifacts" / blob_key(out.digest)
    assert blob.read_text() == "HELLO"
    blob.unlink()

    again = env.run(chain(steps.transform), {"ledger": path}, inline=True)
    # Only the step whose output is gone runs; its bytes come out the same, so its consumer
    # stays cached, and the blob is back for the next reader.
    assert executed() == 4
    assert {n: t.cached for n, t in again.tasks.items()} == {
        "produce": True, "transform": False, "consume": True}  # fmt: skip
    assert again.tasks["transform"].outputs["out"].digest == out.digest
    assert blob.read_text() == "HELLO"
    assert again.tasks["consume"].outputs["Output"] == "HELLO"
