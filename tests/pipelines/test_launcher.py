"""The step launcher: steps forked from a warm process (``_zygote``, kept between runs by
``_pool``), and the cold ``python -m`` fallback. Each step must still behave like a process
of its own."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy  # noqa: F401 - loaded here so the launcher preloads it, as a user's runner would
import pytest

from shipyard import dsl
from shipyard.pipelines import _forkserver, _pool, get_task_log
from tests.pipelines import steps
from tests.pipelines.conftest import Env


@dsl.component
def segfault() -> None:
    import os
    import signal

    print("about to crash", flush=True)
    os.kill(os.getpid(), signal.SIGSEGV)


@dsl.component
def hard_exit(code: int) -> None:
    import os

    os._exit(code)


@dsl.component
def chatty(text: str) -> str:
    import sys

    print(f"out: {text}")
    print(f"err: {text}", file=sys.stderr)
    return text


@dsl.component
def interval(seconds: float, tag: str) -> list:
    import time

    start = time.time()
    time.sleep(seconds)
    return [start, time.time()]


@dsl.component
def spawn_and_sleep(pid_file: str) -> None:
    import subprocess
    import time

    child = subprocess.Popen(["sleep", "60"])
    with open(pid_file, "w") as f:
        f.write(str(child.pid))
    time.sleep(60)


@dsl.component
def draw(tag: str) -> float:
    import numpy as np

    return float(np.random.rand())


@dsl.component
def describe() -> dict:
    import os
    import sys

    return {
        "cwd": os.getcwd(),
        "stdin_tty": os.isatty(0),
        "pgid_is_pid": os.getpgid(0) == os.getpid(),
        "argv0": sys.argv[0],
    }


@dsl.component
def report_parent_then_wait(parent_file: str) -> None:
    import os
    import time

    with open(parent_file + ".tmp", "w") as f:
        f.write(str(os.getppid()))
    os.rename(parent_file + ".tmp", parent_file)
    time.sleep(60)


@dsl.component
def writes_nothing(data: dsl.Output[dsl.Dataset], metrics: dsl.Output[dsl.Metrics]) -> None:
    pass


@dsl.component
def writes_metadata_only(model: dsl.Output[dsl.Model]) -> None:
    model.metadata["registered_elsewhere"] = True


@dsl.component
def big(size: int) -> str:
    return "x" * size


@dsl.pipeline(name="big-results")
def big_results() -> None:
    for size in (10, 10_000, 100_000):  # in the notice, in a larger one, in the result file
        big(size=size)


@dsl.pipeline(name="crashes")
def crashes() -> None:
    segfault()
    hard_exit(code=3)
    steps.echo(value="survivor")


def _children(parent: int | None = None) -> list[tuple[int, str]]:
    """(pid, state) of the child processes of ``parent`` (this process), from /proc."""
    found = []
    me = os.getpid() if parent is None else parent
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == me:
            found.append((int(entry.name), fields[0]))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


needs_fork = pytest.mark.skipif(not _forkserver.AVAILABLE, reason="no fork server here")


@needs_fork
def test_crashing_steps_fail_alone_and_leave_no_processes(env: Env) -> None:
    before = {pid for pid, _ in _children()}
    run = env.run(crashes, raise_on_error=False)
    assert run.state == "FAILED"
    assert "killed by signal 11" in (run.tasks["segfault"].error or "")
    assert "exited with 3" in (run.tasks["hard-exit"].error or "")
    assert run.tasks["echo"].state == "SUCCEEDED"
    assert "about to crash" in get_task_log(env.store, env.artifacts, "default", run.id, "segfault")
    # The launcher reaped its steps: nothing of them is left, not even a zombie. It is kept
    # for the next run, with at most a spare child waiting for a step.
    kept = {pid for pid, _ in _children()} - before
    assert len(kept) <= 1
    for launcher in kept:
        deadline = time.monotonic() + 10
        while len(_children(launcher)) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(state != "Z" for _, state in _children(launcher))
    # Closed, it is reaped, and so is its spare.
    _pool.shutdown()
    assert {pid for pid, _ in _children()} <= before


def test_results_of_any_size_come_back(env: Env) -> None:
    run = env.run(big_results, enable_caching=False)
    sizes = [len(run.tasks[n].outputs["Output"]) for n in ("big", "big-2", "big-3")]
    assert sizes == [10, 10_000, 100_000]


@dsl.pipeline(name="chatty")
def chatty_pipeline() -> None:
    chatty(text="hello")


def test_stdout_and_stderr_are_captured(env: Env) -> None:
    run = env.run(chatty_pipeline)
    log = get_task_log(env.store, env.artifacts, "default", run.id, "chatty")
    assert "out: hello" in log and "err: hello" in log


@dsl.pipeline(name="overlap")
def overlap() -> None:
    for i in range(3):
        interval(seconds=1.0, tag=str(i))


@needs_fork
def test_forked_steps_run_truly_concurrently(env: Env) -> None:
    run = env.run(overlap, parallelism=3)
    spans = [run.tasks[n].outputs["Output"] for n in ("interval", "interval-2", "interval-3")]
    latest_start = max(s for s, _ in spans)
    earliest_end = min(e for _, e in spans)
    assert latest_start < earliest_end  # all three were sleeping at one moment


@dsl.pipeline(name="spawner")
def spawner(pid_file: str) -> None:
    spawn_and_sleep(pid_file=pid_file).set_timeout("2s")


def test_timeout_kills_the_step_and_its_subprocesses(env: Env) -> None:
    pid_file = env.tmp / "grandchild.pid"
    started = time.monotonic()
    run = env.run(spawner, {"pid_file": str(pid_file)}, raise_on_error=False)
    assert time.monotonic() - started < 20
    assert "timed out after 2s" in (run.tasks["spawn-and-sleep"].error or "")
    grandchild = int(pid_file.read_text())
    assert _wait_gone(grandchild), "the step's own subprocess outlived the timeout"


@dsl.pipeline(name="draws")
def draws() -> None:
    draw(tag="a")
    draw(tag="b")


@needs_fork
def test_forked_steps_do_not_share_numpy_random_state(env: Env) -> None:
    run = env.run(draws, enable_caching=False)
    assert run.tasks["draw"].outputs["Output"] != run.tasks["draw-2"].outputs["Output"]


@dsl.pipeline(name="describe")
def describe_pipeline() -> None:
    describe()
    describe()


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "cold"])
def test_step_process_contract(env: Env, fork: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if fork and not _forkserver.AVAILABLE:
        pytest.skip("no fork server here")
    monkeypatch.setattr(_forkserver, "AVAILABLE", fork)
    run = env.run(describe_pipeline, enable_caching=False)
    first, second = (run.tasks[n].outputs["Output"] for n in ("describe", "describe-2"))
    assert first["cwd"] != second["cwd"]  # each step has its own working directory
    assert first["cwd"] != os.getcwd()
    assert first["stdin_tty"] is False
    assert first["pgid_is_pid"] is True  # its own process group, killed as a whole
    assert first["argv0"].endswith("_executor.py")


@dsl.pipeline(name="orphaned")
def orphaned(parent_file: str) -> None:
    report_parent_then_wait(parent_file=parent_file)


@needs_fork
def test_a_dead_launcher_fails_its_steps(env: Env) -> None:
    import threading

    parent_file = env.tmp / "parent"

    def kill_launcher() -> None:
        deadline = time.monotonic() + 30
        while not parent_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(int(parent_file.read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill_launcher)
    killer.start()
    started = time.monotonic()
    run = env.run(orphaned, {"parent_file": str(parent_file)}, raise_on_error=False)
    killer.join()
    assert time.monotonic() - started < 30
    task = run.tasks["report-parent-then-wait"]
    assert task.state == "FAILED" and "launcher" in (task.error or "")


@dsl.pipeline(name="silent")
def silent() -> None:
    writes_nothing()


@dsl.pipeline(name="metadata-only")
def metadata_only() -> None:
    writes_metadata_only()


@pytest.mark.parametrize("inline", [False, True], ids=["process", "inline"])
def test_an_unwritten_output_fails_the_step_naming_it(env: Env, inline: bool) -> None:
    run = env.run(silent, inline=inline, raise_on_error=False)
    task = run.tasks["writes-nothing"]
    assert task.state == "FAILED"
    assert "output artifact 'data'" in (task.error or "")
    assert "metrics" not in (task.error or "")  # Metrics live in metadata: nothing to write
    # Metadata is something: an artifact that only carries metadata is fine.
    ok = env.run(metadata_only, inline=inline)
    model = ok.tasks["writes-metadata-only"].outputs["model"]
    assert model.layout == "none" and model.metadata == {"registered_elsewhere": True}


@dsl.component
def parent_pid(tag: str) -> int:
    import os

    return os.getppid()


@dsl.pipeline(name="parents")
def parents(tag: str) -> None:
    parent_pid(tag=tag)


def _launcher_of(run: Any) -> int:
    return int(run.tasks["parent-pid"].outputs["Output"])


@needs_fork
def test_the_launcher_is_kept_between_runs_and_replaced_when_dead(env: Env) -> None:
    first = _launcher_of(env.run(parents, {"tag": "a"}))
    assert _launcher_of(env.run(parents, {"tag": "b"})) == first
    os.kill(first, signal.SIGKILL)
    # Dead to the last thread (numpy's, once it preloaded numpy): its sockets are closed
    # and it can be reaped, not only shown as a zombie.
    deadline = time.monotonic() + 10
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    while os.waitid(os.P_PID, first, flags) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _launcher_of(env.run(parents, {"tag": "c"})) not in (first, 0)


@needs_fork
def test_a_forked_copy_of_the_runner_does_not_hold_the_launcher(env: Env) -> None:
    launcher = _launcher_of(env.run(parents, {"tag": "fork"}))
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # a copy of the runner that outlives it (a multiprocessing worker, say)
        os.close(write)
        os.read(read, 1)
        os._exit(0)
    os.close(read)
    try:
        started = time.monotonic()
        _pool.shutdown()  # closes our side: the launcher must see it, despite the copy
        assert time.monotonic() - started < 5
        assert _wait_gone(launcher, 1)
    finally:
        os.close(write)
        os.waitpid(child, 0)


@dsl.component
def where_is(secret: str) -> dict:
    import os

    def cmdline(pid: int) -> str:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace")

    return {
        "env": secret in os.environ.get("SHIPYARD_URI", ""),
        "argv": secret in cmdline(os.getpid()) or secret in cmdline(os.getppid()),
    }


@dsl.pipeline(name="where-is")
def where_is_pipeline(secret: str) -> None:
    where_is(secret=secret)


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "cold"])
def test_the_database_password_reaches_steps_by_environment_only(
    env: Env, fork: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if fork and not _forkserver.AVAILABLE:
        pytest.skip("no fork server here")
    monkeypatch.setattr(_forkserver, "AVAILABLE", fork)
    # Only the steps see this URI (the run itself is recorded through env.store).
    uri = "postgresql+psycopg://shipyard:pa55-Wd.only.in.env@127.0.0.1:1/none"
    monkeypatch.setattr(env, "settings", replace(env.settings, uri=uri))
    run = env.run(where_is_pipeline, {"secret": "pa55-Wd"})
    assert run.tasks["where-is"].outputs["Output"] == {"env": True, "argv": False}


@dsl.component
def light(metrics: dsl.Output[dsl.Metrics]) -> list:
    import sys

    return ["pydantic" not in sys.modules, isinstance(metrics, Metrics)]  # noqa: F821


@dsl.component
def names() -> list:
    # Every DSL name is there, as with kfp's ``from kfp.dsl import *``; naming one that
    # defines pipelines imports that part of the DSL, in this step only.
    return [dsl.If.__name__, ParallelFor.__name__]  # noqa: F821


@dsl.pipeline(name="light")
def light_pipeline() -> None:
    light()


@dsl.pipeline(name="names")
def names_pipeline() -> None:
    names()


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "cold"])
def test_steps_start_without_the_pipeline_definition_machinery(
    env: Env, fork: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if fork and not _forkserver.AVAILABLE:
        pytest.skip("no fork server here")
    monkeypatch.setattr(_forkserver, "AVAILABLE", fork)
    _pool.shutdown()  # a new launcher: one that defined ``names`` has imported more
    run = env.run(light_pipeline, enable_caching=False)
    assert run.tasks["light"].outputs["Output"] == [True, True]
    run = env.run(names_pipeline, enable_caching=False)
    assert run.tasks["names"].outputs["Output"] == ["If", "ParallelFor"]


@dsl.component
def forge_result(written: str) -> None:
    import os

    # What a step could do to its runner: put something else where its result goes.
    with open("result.json", "w") as f:
        f.write(written)
    os._exit(0)


@dsl.pipeline(name="forged")
def forged(written: str) -> None:
    forge_result(written=written)


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "cold"])
@pytest.mark.parametrize("written", ["[1, 2]", '{"ok": true, "outputs": [1]}', "not json"])
def test_a_result_file_of_another_shape_fails_only_its_step(
    env: Env, fork: bool, written: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if fork and not _forkserver.AVAILABLE:
        pytest.skip("no fork server here")
    monkeypatch.setattr(_forkserver, "AVAILABLE", fork)
    run = env.run(forged, {"written": written}, raise_on_error=False)
    task = run.tasks["forge-result"]
    assert task.state == "FAILED"
    assert "exited with 0 before reporting a result" in (task.error or "")
