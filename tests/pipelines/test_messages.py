"""The request and result that cross the boundary between the runner and a step process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.pipelines._messages import (
    NotAResult,
    StepArtifact,
    StepRequest,
    StepResult,
    died,
    read_request,
    read_result,
    write_request,
    write_result,
)


def _request(tmp_path: Path, **changes: object) -> StepRequest:
    data = StepArtifact("system.Dataset", "data", str(tmp_path / "in"), "mem://a", {"rows": 3})
    fields: dict[str, object] = {
        "task": "train[1]",
        "component_key": "train-2",
        "component": {"name": "train", "source": "def train(): ..."},
        "params": {"lr": 0.1, "tags": ["a"]},
        "inputs": {"data": data, "shards": [data, [data]]},
        "outputs": {"model": StepArtifact("system.Model", "model", "/o", "/o")},
        "folder": str(tmp_path),
        "log": str(tmp_path / "log.txt"),
        "result": str(tmp_path / "result.json"),
        "env": {"SHIPYARD_PROJECT": "p"},
        **changes,
    }
    return StepRequest(**fields)  # type: ignore[arg-type]


def test_a_request_comes_back_whole_from_its_file(tmp_path: Path) -> None:
    path = str(tmp_path / "request.json")
    write_request(path, _request(tmp_path))
    assert read_request(path) == _request(tmp_path)
    assert (tmp_path / "request.json").stat().st_mode & 0o777 == 0o600  # it names secrets


def test_a_request_comes_back_whole_from_its_json(tmp_path: Path) -> None:
    request = _request(tmp_path, isolated=True, user=(65534, 65534), cpus=2.0)
    assert StepRequest.from_json(json.loads(json.dumps(request.to_json()))) == request


def test_an_isolated_step_gets_its_own_variables_only(tmp_path: Path) -> None:
    runner = {"PATH": "/bin", "SHIPYARD_URI": "postgresql://secret"}
    shared = _request(tmp_path)
    assert shared.environment(runner) == {**runner, "SHIPYARD_PROJECT": "p"}
    isolated = _request(tmp_path, isolated=True)
    assert isolated.environment(runner) == {"SHIPYARD_PROJECT": "p"}


def test_a_result_comes_back_from_its_file(tmp_path: Path) -> None:
    path = str(tmp_path / "result.json")
    ok = StepResult(ok=True, outputs={"Output": [1, "a"]}, metadata={"model": {"acc": 0.9}})
    write_result(path, ok)
    assert read_result(path) == ok
    write_result(path, StepResult.failed("Traceback ..."))
    assert read_result(path) == StepResult(ok=False, error="Traceback ...")


@pytest.mark.parametrize(
    "written",
    [[1, 2], 5, "ok", {"ok": True, "outputs": [1]}, {"ok": True, "metadata": {"m": 3}}],
)
def test_what_is_not_a_result_is_refused(tmp_path: Path, written: object) -> None:
    (tmp_path / "result.json").write_text(json.dumps(written))
    with pytest.raises(NotAResult):
        read_result(str(tmp_path / "result.json"))


def test_a_result_file_is_not_read_through_a_link(tmp_path: Path) -> None:
    # An isolated step could put a link to a file only the worker may read in its place.
    (tmp_path / "elsewhere.json").write_text('{"ok": true}')
    (tmp_path / "result.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(OSError):
        read_result(str(tmp_path / "result.json"))


def test_a_process_that_reported_nothing_says_how_it_ended() -> None:
    assert died(-11).error == "the step process was killed by signal 11 before reporting a result"
    assert died(3).error == "the step process exited with 3 before reporting a result"
    assert "its launcher died" in (died(None, "its launcher died").error or "")
