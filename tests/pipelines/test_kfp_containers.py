"""Container components (``@dsl.container_component``, component YAML files): compiled and
checked at definition, run through docker or podman, refused before anything runs where
neither is available. The runtime here is a stand-in ``docker`` executable that runs the
command line on this machine (the step's folder is mounted at the same path, so the paths
it is given are valid here too) and notes each image it was asked for."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from shipyard import components, dsl
from shipyard.config import Settings
from shipyard.errors import FailedPrecondition, InvalidArgument
from shipyard.pipelines import _containers, load_spec, run_pipeline
from shipyard.pipelines.compiler import compile_pipeline
from shipyard.pipelines.queue import claim_and_run_next
from tests.pipelines.conftest import Env, run_in

FAKE_DOCKER = '''#!{python}
import os, subprocess, sys
args = sys.argv[1:]
if args[0] == "info":
    sys.exit(0)
entry, i = None, 1
while args[i].startswith("-"):
    if args[i] == "--entrypoint":
        entry = args[i + 1]
    i += 1 if args[i] == "--rm" else 2
with open(os.path.join(os.path.dirname(sys.argv[0]), "images.txt"), "a") as f:
    f.write(args[i] + "\\n")
sys.exit(subprocess.call(([entry] if entry else []) + args[i + 1:]))
'''


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``docker`` on PATH (and nothing else); the file it notes images in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable))
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    _containers._FOUND.clear()
    return bin_dir / "images.txt"


@dsl.container_component
def say(text: str, count: int, out: dsl.OutputPath(str), data: dsl.Output[dsl.Dataset]):  # type: ignore[no-untyped-def]
    return dsl.ContainerSpec(
        image="alpine:3",
        command=["sh", "-c"],
        args=['printf "%s-%s" "$0" "$1" > "$2"; printf data > "$3"',
              text, count, out, data.path],
    )  # fmt: skip


@dsl.component
def check(said: str, data: dsl.Input[dsl.Dataset]) -> str:
    with open(data.path) as f:
        return f"{said}|{f.read()}"


ECHO_YAML = """
name: Echo twice
inputs:
- {name: Message, type: String}
- {name: Times, type: Integer, default: "2"}
- {name: Suffix, type: String, optional: true}
outputs:
- {name: Said, type: String}
implementation:
  container:
    image: busybox
    command:
    - sh
    - -c
    - 'for i in $(seq "$1"); do printf "%s" "$0"; done > "$2"'
    - {concat: [{inputValue: Message}, {if: {cond: {isPresent: Suffix}, then: ["!"]}}]}
    - {inputValue: Times}
    - {outputPath: Said}
"""


@pytest.fixture
def echo_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "component.yaml"
    path.write_text(ECHO_YAML)
    return path


def _pipeline(echo_file: Path) -> dsl.Pipeline:
    echo = components.load_component_from_file(echo_file)

    @dsl.pipeline(name="containers")
    def containers(text: str = "hi") -> None:
        said = say(text=text, count=3)
        check(said=said.outputs["out"], data=said.outputs["data"])
        echo(message=text)
        echo(message=text, times=3, suffix="yes")

    return containers


def test_container_and_yaml_components_run_through_the_runtime(
    env: Env, mode: str, runtime: Path, echo_yaml: Path
) -> None:
    run = run_in(mode, env, _pipeline(echo_yaml))
    assert run.tasks["say"].outputs["out"] == "hi-3"
    assert run.tasks["check"].outputs["Output"] == "hi-3|data"
    assert run.tasks["echo-twice"].outputs["said"] == "hihi"
    assert run.tasks["echo-twice-2"].outputs["said"] == "hi!hi!hi!"
    assert sorted(runtime.read_text().split()) == ["alpine:3", "busybox", "busybox"]


def test_a_container_pipeline_compiles_and_runs_from_yaml(
    env: Env, runtime: Path, echo_yaml: Path, tmp_path: Path
) -> None:
    path = tmp_path / "containers.yaml"
    compile_pipeline(_pipeline(echo_yaml), path)
    spec = load_spec(path)
    assert spec.components["say"].container is not None
    assert spec.components["say"].container.image == "alpine:3"
    run = env.run(str(path), {"text": "yo"})
    assert run.tasks["check"].outputs["Output"] == "yo-3|data"


def test_without_a_runtime_the_run_is_refused_before_it_starts(
    env: Env, echo_yaml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    _containers._FOUND.clear()
    with pytest.raises(FailedPrecondition) as caught:
        env.run(_pipeline(echo_yaml))
    assert caught.value.message == (
        "pipeline 'containers' has container components (echo-twice, say), which run with "
        "docker or podman, and neither is available here (docker is not installed; podman "
        "is not installed). Install and start one on the machine that runs the steps, or "
        "use lightweight Python components (@dsl.component)")
    from shipyard.pipelines import list_pipeline_runs

    assert list_pipeline_runs(env.store, "default") == []  # nothing was recorded


def test_container_components_are_checked_when_defined() -> None:
    with pytest.raises(InvalidArgument, match=r"must return dsl\.ContainerSpec"):

        @dsl.container_component
        def nothing(text: str):  # type: ignore[no-untyped-def]
            return None

    with pytest.raises(InvalidArgument, match=r"pass the artifact's \.path"):

        @dsl.container_component
        def whole(data: dsl.Input[dsl.Dataset]):  # type: ignore[no-untyped-def]
            return dsl.ContainerSpec(image="alpine", args=[data])

    with pytest.raises(InvalidArgument, match=r"\{inputValue: Nope\} names no entry"):
        components.load_component_from_text(
            "name: x\nimplementation: {container: {image: a, args: [{inputValue: Nope}]}}")


# -- SHIPYARD_WORKER_CONTAINERS: the server has no runtime, its workers do --------------------


def test_the_worker_containers_setting_is_read_and_checked() -> None:
    assert Settings.resolve(home="/x", environ={}).worker_containers is False
    for yes in ("1", "true", "YES", " on "):
        environ = {"SHIPYARD_WORKER_CONTAINERS": yes}
        assert Settings.resolve(home="/x", environ=environ).worker_containers is True
    assert Settings.resolve(
        home="/x", environ={"SHIPYARD_WORKER_CONTAINERS": "0"}).worker_containers is False
    with pytest.raises(InvalidArgument) as bad:
        Settings.resolve(home="/x", environ={"SHIPYARD_WORKER_CONTAINERS": "maybe"})
    assert bad.value.field == "SHIPYARD_WORKER_CONTAINERS"
    assert "must be 1 or 0" in bad.value.message


def test_a_submitter_without_a_runtime_queues_for_workers_that_have_one(
    env: Env, echo_yaml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # the server: no docker, no podman
    _containers._FOUND.clear()
    with pytest.raises(FailedPrecondition) as refused:  # queued without the setting
        env.run(_pipeline(echo_yaml), submit=True)
    assert refused.value.message.endswith(
        "; if the workers that run queued runs have one, set SHIPYARD_WORKER_CONTAINERS=1 "
        "where the run is submitted (the server)")
    server = replace(env.settings, worker_containers=True)
    queued = run_pipeline(env.store, env.artifacts, env.ctx, _pipeline(echo_yaml),
                          {"text": "yo"}, settings=server, submit=True)
    assert queued.state == "QUEUED"
    # Run here (submit=False), the setting changes nothing: this process has no runtime.
    with pytest.raises(FailedPrecondition):
        run_pipeline(env.store, env.artifacts, env.ctx, _pipeline(echo_yaml), settings=server)

    # A worker with a runtime runs it.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER.format(python=sys.executable))
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    _containers._FOUND.clear()
    done = claim_and_run_next(env.store, env.artifacts, "worker-1", settings=env.settings)
    assert done is not None and done.id == queued.id and done.state == "SUCCEEDED", done
    assert done.tasks["check"].outputs["Output"] == "yo-3|data"


def test_a_worker_without_a_runtime_fails_the_run_before_any_step(
    env: Env, echo_yaml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    _containers._FOUND.clear()
    server = replace(env.settings, worker_containers=True)
    queued = run_pipeline(env.store, env.artifacts, env.ctx, _pipeline(echo_yaml),
                          settings=server, submit=True)
    done = claim_and_run_next(env.store, env.artifacts, "worker-1", settings=env.settings)
    assert done is not None and done.id == queued.id
    assert done.state == "FAILED"
    assert done.error is not None and "neither is available here" in done.error
    assert all(task.state != "SUCCEEDED" for task in done.tasks.values())
    assert not any(task.state == "RUNNING" for task in done.tasks.values())
