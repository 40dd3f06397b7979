"""What passes between the runner and a step's process: the request naming what to run, and
the result the step reports. Both are JSON at the process boundary and typed on either side.

The runner builds one ``StepRequest`` per step; a launcher (``_launch``) hands it to the
step's process as JSON: a file for a cold step, a message to the warm launcher for a forked
one, an argument for a Ray task. There ``_executor`` reads it back and the step answers with
a ``StepResult``: in the notice a forked step sends before it exits, in its result file (a
cold step's, or a result too big for a notice), or as a Ray task's value.

A step can be anyone's code (a server-side run's), and it can write its result file itself:
``StepResult.from_json`` and ``read_result`` refuse what is not a result (``NotAResult``,
a ``ValueError`` as undecodable JSON is) rather than hand the runner something of another
shape. This module imports only the
standard library: the launcher and every step process import it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias


class NotAResult(ValueError):
    """What a step reported is not shaped as a ``StepResult``."""


@dataclass(frozen=True)
class StepArtifact:
    """An artifact as a step sees it: where its bytes are on disk (an input, copied from
    the artifact store) or go (an output, stored by the runner once the step has ended)."""

    type: str
    name: str
    path: str
    uri: str
    metadata: dict[str, Any] | None = None  # an input's; an output's is the step's to set

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "path": self.path,
            "uri": self.uri,
            "metadata": self.metadata,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepArtifact:
        return cls(data["type"], data["name"], data["path"], data["uri"], data.get("metadata"))


# An input artifact, or a list of them (``dsl.Collected``, a loop's items).
StepInput: TypeAlias = "StepArtifact | list[StepInput]"


@dataclass(frozen=True)
class StepRequest:
    """One step to run: its component, its arguments, and where it reads and writes."""

    task: str  # the task instance's name, such as ``train[2]``
    component_key: str  # the component's key in the pipeline spec (``TaskSpec.component``)
    component: dict[str, Any]  # the component's spec as JSON, with its recorded source
    params: dict[str, Any]  # parameter inputs by name (JSON values)
    inputs: dict[str, StepInput]  # artifact inputs by name (absent ones are left out)
    outputs: dict[str, StepArtifact]  # output artifacts by name
    folder: str  # the step's own folder, its working directory
    log: str  # the file its stdout and stderr go to
    result: str  # the file its result goes to when it is not reported otherwise
    env: dict[str, str] = field(default_factory=dict)  # its own variables (see ``environment``)
    # A server-side run's step: ``env`` is all it gets (``_isolation``).
    isolated: bool = False
    user: tuple[int, int] | None = None  # (uid, gid) to run as, for an isolated step
    cpus: float | None = None  # what it asks of a scheduler that counts CPUs (Ray)

    def environment(self, runner: Mapping[str, str]) -> dict[str, str]:
        """The step's whole environment: the ``runner``'s plus the step's own variables, or
        for an isolated step exactly its own."""
        return dict(self.env) if self.isolated else {**runner, **self.env}

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "component_key": self.component_key,
            "component": self.component,
            "params": self.params,
            "inputs": {name: _input_json(value) for name, value in self.inputs.items()},
            "outputs": {name: art.to_json() for name, art in self.outputs.items()},
            "folder": self.folder,
            "log": self.log,
            "result": self.result,
            "env": self.env,
            "isolated": self.isolated,
            "user": list(self.user) if self.user is not None else None,
            "cpus": self.cpus,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepRequest:
        user = data.get("user")
        return cls(
            task=data["task"],
            component_key=data["component_key"],
            component=data["component"],
            params=data["params"],
            inputs={name: _input(value) for name, value in data["inputs"].items()},
            outputs={name: StepArtifact.from_json(d) for name, d in data["outputs"].items()},
            folder=data["folder"],
            log=data["log"],
            result=data["result"],
            env=data.get("env") or {},
            isolated=bool(data.get("isolated")),
            user=(int(user[0]), int(user[1])) if user else None,
            cpus=data.get("cpus"),
        )


def _input_json(value: StepInput) -> Any:
    if isinstance(value, list):
        return [_input_json(v) for v in value]
    return value.to_json()


def _input(data: Any) -> StepInput:
    if isinstance(data, list):
        return [_input(d) for d in data]
    return StepArtifact.from_json(data)


@dataclass(frozen=True)
class StepResult:
    """How a step ended: its outputs, or why it failed."""

    ok: bool
    outputs: dict[str, Any] = field(default_factory=dict)  # returned values by output name
    # What the step set on its output artifacts' ``metadata``, by artifact.
    metadata: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    error: str | None = None  # for a failure: the step's traceback, or what became of it

    @classmethod
    def failed(cls, error: str) -> StepResult:
        return cls(ok=False, error=error)

    def to_json(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "outputs": self.outputs, "metadata": self.metadata}
        return {"ok": False, "error": self.error}

    @classmethod
    def from_json(cls, data: Any) -> StepResult:
        """The result in ``data``; ``NotAResult`` when it is not shaped as one."""
        if not isinstance(data, dict):
            raise NotAResult("a step result is a JSON object")
        outputs = data.get("outputs") or {}
        metadata = data.get("metadata") or {}
        if not isinstance(outputs, dict) or not isinstance(metadata, dict):
            raise NotAResult("a step result's outputs and metadata are JSON objects")
        if not all(m is None or isinstance(m, dict) for m in metadata.values()):
            raise NotAResult("a step result's metadata holds a JSON object per artifact")
        error = data.get("error")
        return cls(
            ok=bool(data.get("ok")),
            outputs=outputs,
            metadata=metadata,
            error=None if error is None else str(error),
        )


def died(code: int | None, why: str = "") -> StepResult:
    """The result of a step whose process ended without reporting one: exited with
    ``code`` (``Popen``-style, negative for a signal), or ``None`` and ``why``."""
    if code is None:
        how = why or "was lost"
    elif code < 0:
        how = f"was killed by signal {-code}"
    else:
        how = f"exited with {code}"
    return StepResult.failed(f"the step process {how} before reporting a result")


def write_request(path: str, request: StepRequest) -> None:
    """A cold step's request file, readable by the step's user alone."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(request.to_json(), f)
    os.chmod(path, 0o600)
    if request.user is not None:  # the step reads it as its own user
        os.chown(path, *request.user)


def read_request(path: str) -> StepRequest:
    with open(path, encoding="utf-8") as f:
        return StepRequest.from_json(json.load(f))


def write_result(path: str, result: StepResult) -> None:
    """In the step's process: its result file, complete or absent (written aside, renamed)."""
    temp = f"{path}.tmp"
    with open(temp, "w", encoding="utf-8") as out:
        json.dump(result.to_json(), out)
    os.replace(temp, path)


def read_result(path: str) -> StepResult:
    """A step's result file, not following a link the step may have put in its place;
    ``OSError`` or ``ValueError`` when there is none to read."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with open(fd, encoding="utf-8") as f:
        return StepResult.from_json(json.load(f))
