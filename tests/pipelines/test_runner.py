"""The runner: processes and concurrency, inline mode, failures, retries, timeouts, YAML."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from shipyard import dsl
from shipyard.errors import FailedPrecondition, InvalidArgument, MissingDependency
from shipyard.pipelines import (
    PipelineRunFailed,
    compile_pipeline,
    get_task_log,
    list_pipeline_runs,
    retry_pipeline_run,
)
from tests.pipelines import steps
from tests.pipelines.conftest import Env, count_lines


@dsl.pipeline(name="two-sleeps")
def two_sleeps(seconds: float = 1.5) -> None:
    steps.sleep(seconds=seconds, tag="a")
    steps.sleep(seconds=seconds, tag="b")


def test_independent_steps_run_concurrently_in_separate_processes(env: Env) -> None:
    run = env.run(two_sleeps, parallelism=2)
    assert run.state == "SUCCEEDED"
    starts = [run.tasks[n].outputs["Output"] for n in ("sleep", "sleep-2")]
    # Each sleeps 1.5 s, so starts less than 1 s apart mean both were sleeping at once.
    # (The run's wall time would say the same but also counts interpreter start-up, which
    # a loaded machine can stretch past any fixed bound.)
    assert abs(starts[0] - starts[1]) < 1.0


@dsl.pipeline(name="env-check")
def env_check() -> None:
    steps.environment()


def test_step_gets_run_settings_and_ids(env: Env) -> None:
    run = env.run(env_check)
    seen = run.tasks["environment"].outputs["Output"]
    assert seen["SHIPYARD_PROJECT"] == "default"
    assert seen["SHIPYARD_URI"] == env.settings.uri
    assert seen["SHIPYARD_PIPELINE_RUN_ID"] == run.id
    assert seen["SHIPYARD_EXECUTION_ID"] == run.tasks["environment"].execution_id
    assert seen["pid"] != str(os.getpid())


def test_inline_mode_runs_in_this_process(env: Env) -> None:
    run = env.run(env_check, inline=True)
    seen = run.tasks["environment"].outputs["Output"]
    assert seen["pid"] == str(os.getpid())
    assert seen["SHIPYARD_PIPELINE_RUN_ID"] == run.id
    assert "SHIPYARD_PIPELINE_RUN_ID" not in os.environ  # restored afterwards


@dsl.component
def pathlib_folder(data: dsl.Output[dsl.Dataset]) -> bool:
    from pathlib import Path

    folder = Path(data.path)
    parent_existed = folder.parent.is_dir()
    folder.mkdir()  # as on kfp: the folder holding .path exists, .path is the step's to make
    (folder / "part-0.csv").write_text("x\n1\n")
    return parent_existed


@dsl.pipeline(name="pathlib-folder")
def pathlib_folder_pipeline() -> None:
    pathlib_folder()


@pytest.mark.parametrize("inline", [False, True], ids=["process", "inline"])
def test_the_folder_of_an_output_path_exists_when_the_step_starts(env: Env, inline: bool) -> None:
    run = env.run(pathlib_folder_pipeline, inline=inline)
    task = run.tasks["pathlib-folder"]
    assert task.outputs["Output"] is True
    assert task.outputs["data"].layout == "tree"


def test_the_executor_makes_the_folder_of_an_output_path(tmp_path: Path) -> None:
    from shipyard.pipelines import _executor
    from shipyard.pipelines._messages import StepArtifact, StepRequest

    path = tmp_path / "not" / "made" / "data"
    spec = pathlib_folder.component_spec
    request = StepRequest(
        task="pathlib-folder",
        component_key="pathlib-folder",
        component=spec.model_dump(mode="json"),
        params={},
        inputs={},
        outputs={"data": StepArtifact("system.Dataset", "data", str(path), str(path))},
        folder=str(tmp_path),
        log=str(tmp_path / "log.txt"),
        result=str(tmp_path / "result.json"),
    )
    assert _executor.execute(spec, request).outputs == {"Output": True}
    assert (path / "part-0.csv").read_text() == "x\n1\n"


@dsl.pipeline(name="branches")
def branches(flag: str, ledger: str) -> None:
    guarded = steps.fail_unless(flag=flag, ledger=ledger)
    steps.echo(value=guarded.output)
    steps.echo(value="independent")


@pytest.mark.parametrize("inline", [False, True], ids=["process", "inline"])
def test_failure_has_traceback_other_branch_finishes_and_retry(env: Env, inline: bool) -> None:
    flag, ledger = env.tmp / "flag", env.tmp / "ledger"
    args = {"flag": str(flag), "ledger": str(ledger)}
    with pytest.raises(PipelineRunFailed) as caught:
        env.run(branches, args, inline=inline)
    run = caught.value.run
    assert isinstance(caught.value, FailedPrecondition)
    assert run.state == "FAILED"
    assert "fail-unless" in str(caught.value) and "flag file" in str(caught.value)
    failed = run.tasks["fail-unless"]
    assert failed.state == "FAILED"
    assert "Traceback" in (failed.error or "") and "steps.py" in (failed.error or "")
    assert run.tasks["echo"].state == "SKIPPED"
    assert run.tasks["echo-2"].state == "SUCCEEDED"
    log = get_task_log(env.store, env.artifacts, "default", run.id, "fail-unless")
    assert "RuntimeError" in log

    flag.write_text("")
    retried = retry_pipeline_run(env.store, env.artifacts, env.ctx, run.id, settings=env.settings)
    assert retried.id == run.id and retried.state == "SUCCEEDED"
    assert retried.tasks["echo"].outputs["Output"] == "ok"
    assert retried.tasks["echo-2"].execution_id == run.tasks["echo-2"].execution_id
    assert count_lines(ledger)() == 2
    with pytest.raises(FailedPrecondition):
        retry_pipeline_run(env.store, env.artifacts, env.ctx, run.id, settings=env.settings)


def test_raise_on_error_false_returns_failed_run(env: Env) -> None:
    args = {"flag": str(env.tmp / "missing"), "ledger": str(env.tmp / "ledger")}
    run = env.run(branches, args, inline=True, raise_on_error=False)
    assert run.state == "FAILED" and "fail-unless" in (run.error or "")
    assert [r.id for r in list_pipeline_runs(env.store, "default")] == [run.id]


@dsl.component
def flaky(counter: str, fail_times: int) -> int:
    with open(counter, "a") as f:
        f.write("x\n")
    with open(counter) as f:
        attempts = len(f.read().splitlines())
    if attempts <= fail_times:
        raise RuntimeError(f"attempt {attempts} fails")
    return attempts


@dsl.pipeline(name="flaky")
def flaky_pipeline(counter: str, fail_times: int) -> None:
    flaky(counter=counter, fail_times=fail_times).set_retry(
        num_retries=2, backoff_duration="0s"
    ).set_caching_options(enable_caching=False)


def test_set_retry_retries_failed_attempts(env: Env) -> None:
    counter = env.tmp / "counter"
    run = env.run(flaky_pipeline, {"counter": str(counter), "fail_times": 2}, inline=True)
    assert run.tasks["flaky"].outputs["Output"] == 3
    assert run.tasks["flaky"].attempts == 3
    counter.unlink()
    failed = env.run(
        flaky_pipeline, {"counter": str(counter), "fail_times": 5}, inline=True,
        raise_on_error=False,
    )  # fmt: skip
    assert failed.tasks["flaky"].state == "FAILED" and failed.tasks["flaky"].attempts == 3


@dsl.pipeline(name="slow")
def slow() -> None:
    steps.sleep(seconds=30.0, tag="slow").set_timeout("1s")


def test_timeout_kills_the_step(env: Env) -> None:
    started = time.monotonic()
    run = env.run(slow, raise_on_error=False)
    assert time.monotonic() - started < 10
    assert run.tasks["sleep"].state == "FAILED"
    assert "timed out" in (run.tasks["sleep"].error or "")


def test_compile_to_yaml_and_run_from_file(env: Env, tmp_path: Path) -> None:
    path = tmp_path / "branches.yaml"
    spec = compile_pipeline(branches, path)
    text = path.read_text()
    assert text.startswith("# Shipyard pipeline spec")
    assert "schemaVersion: shipyard.dev/pipeline/v1" in text
    assert spec.components["fail-unless"].hash in text
    assert "def fail_unless(flag: str, ledger: str) -> str:" in text
    (env.tmp / "flag").write_text("")
    args = {"flag": str(env.tmp / "flag"), "ledger": str(env.tmp / "ledger")}
    run = env.run(str(path), args)
    assert run.state == "SUCCEEDED" and run.tasks["echo"].outputs["Output"] == "ok"
    # The file and the function share cache keys: same source, same spec.
    again = env.run(branches, args, inline=True)
    assert all(t.cached for t in again.tasks.values())


def test_bad_arguments_are_refused_before_running(env: Env) -> None:
    with pytest.raises(InvalidArgument, match="no parameter 'nope'"):
        env.run(branches, {"flag": "x", "ledger": "y", "nope": 1})
    with pytest.raises(InvalidArgument, match="needs argument 'ledger'"):
        env.run(branches, {"flag": "x"})
    with pytest.raises(InvalidArgument, match="expects NUMBER_DOUBLE"):
        env.run(two_sleeps, {"seconds": "long"})


def test_ray_backend_needs_the_extra(env: Env) -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependency, match=r"shipyard\[ray\]"):
            env.run(env_check, backend="ray")
    else:  # pragma: no cover - only where ray is installed
        run = env.run(env_check, backend="ray")
        assert run.state == "SUCCEEDED"
