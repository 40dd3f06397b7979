"""``task.ignore_upstream_failure()`` as on Kubeflow: the task runs once its upstream tasks
have ended, and an input whose producer failed gets the input's default."""

from __future__ import annotations

import pytest

from shipyard import dsl
from shipyard.errors import InvalidArgument
from tests.pipelines.conftest import Env, run_in


@dsl.component
def fail_op(message: str) -> str:
    raise RuntimeError(message)


@dsl.component
def ok_op(message: str) -> str:
    return message


@dsl.component
def print_op(message: str = "no message", count: int = 1) -> str:
    return f"{message} x{count}"


@dsl.pipeline(name="ignore-upstream")
def ignore_upstream(text: str = "boom") -> None:
    failed = fail_op(message=text)
    print_op(message=failed.output).ignore_upstream_failure()
    print_op(message=failed.output, count=2)  # without it: skipped
    fine = ok_op(message="hello")
    print_op(message=fine.output, count=3).after(failed).ignore_upstream_failure()


def test_a_task_ignoring_upstream_failure_runs_with_the_default(env: Env, mode: str) -> None:
    run = run_in(mode, env, ignore_upstream, raise_on_error=False)
    assert run.state == "FAILED"  # the failed task still fails the run, as on KFP
    assert run.tasks["fail-op"].state == "FAILED"
    assert run.tasks["print-op"].state == "SUCCEEDED"
    assert run.tasks["print-op"].outputs["Output"] == "no message x1"
    assert run.tasks["print-op-2"].state == "SKIPPED"
    assert run.tasks["print-op-3"].outputs["Output"] == "hello x3"


@dsl.component
def needs_message(message: str) -> str:
    return message


def test_an_input_from_upstream_without_a_default_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="input 'message' reads task 'ok-op'") as caught:

        @dsl.pipeline(name="no-default")
        def no_default() -> None:
            needs_message(message=ok_op(message="x").output).ignore_upstream_failure()

    assert caught.value.field == "needs-message.message"
