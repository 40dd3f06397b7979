"""executor="ray": steps run as Ray tasks on a local Ray cluster, artifacts through the store."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

import shipyard
from shipyard import dsl
from shipyard.sdk import session
from tests.ray.heads import Head


@dsl.component
def write_numbers(count: int, out: dsl.Output[dsl.Dataset]) -> str:
    import os

    with open(out.path, "w") as f:
        f.write(",".join(str(i) for i in range(count)))
    # Ray sets this in its worker processes; a process-pool step would not have it.
    return (os.environ.get("RAY_RAYLET_PID", "") and "ray") or "not-ray"


@dsl.component
def worker_secret() -> str:
    import os

    return os.environ.get("SHIPYARD_WORKER_ONLY", "unset")


@dsl.component
def add_up(numbers: dsl.Input[dsl.Dataset]) -> int:
    with open(numbers.path) as f:
        return sum(int(x) for x in f.read().split(","))


@dsl.component
def where(numbers: dsl.Input[dsl.Dataset], copy: dsl.Output[dsl.Dataset]) -> str:
    import shutil

    shutil.copy(numbers.path, copy.path)
    return numbers.path


@dsl.pipeline(name="ray-sum")
def ray_sum(count: int = 10) -> None:
    numbers = write_numbers(count=count)
    add_up(numbers=numbers.outputs["out"])
    copied = where(numbers=numbers.outputs["out"])
    add_up(numbers=copied.outputs["copy"])
    worker_secret()


def test_steps_run_as_ray_tasks(ray_head: Head, home: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    # A setting of the process that starts the steps, which its Ray workers (children of
    # the local cluster it starts) must not inherit.
    monkeypatch.setenv("SHIPYARD_WORKER_ONLY", "secret")
    sy: ModuleType = shipyard
    sy.init(home=home, project="ray")
    try:
        run = sy.run_pipeline(ray_sum, {"count": 10}, executor="ray", enable_caching=False)
        assert run.state == "SUCCEEDED"
        assert run.tasks["write-numbers"].outputs["Output"] == "ray"
        assert run.tasks["add-up"].outputs["Output"] == 45
        # The step ran in a scratch folder of the Ray node, its input shipped there and
        # its output shipped back (no disk shared with the runner's step folders).
        seen = run.tasks["where"].outputs["Output"]
        assert "/shipyard-ray-" in seen and "/shipyard-run-" not in seen
        assert run.tasks["add-up-2"].outputs["Output"] == 45
        assert run.tasks["worker-secret"].outputs["Output"] == "unset"
    finally:
        session.reset()
