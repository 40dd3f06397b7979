"""Running container components with docker or podman.

A run with container components needs a container runtime: ``find_runtime`` looks for a
``docker`` or ``podman`` that answers (``info``), and the runner refuses the run before
anything starts when there is none, saying what is needed, rather than failing midway.
The runner hands the runtime's path to each step (``RUNTIME_ENV``); the step, like any
other, is a process of ours, and runs the container with its folder (inputs, outputs,
output parameter files) mounted at the same path, as the step's own user, the container's
output going to the step's log.

The container's command line is the component's, its placeholders replaced by the task's
values (``{{$.inputs.parameters['n']}}``: a parameter as text), paths
(``{{$.inputs.artifacts['d'].path}}``, ``{{$.outputs.artifacts['m'].path}}``,
``{{$.outputs.parameters['p'].output_file}}``), URIs and metadata (JSON), with
``Concat`` and ``IfPresent`` structures as in Kubeflow's pipeline spec.

This module imports only the standard library: step processes use it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

RUNTIMES = ("docker", "podman")
RUNTIME_ENV = "SHIPYARD_CONTAINER_RUNTIME"
_PLACEHOLDER = re.compile(
    r"\{\{\$\.(inputs|outputs)\.(parameters|artifacts)\['([^'\]]+)'\]"
    r"(?:\.(path|uri|metadata|output_file))?\}\}"
)
_FOUND: dict[str, tuple[float, str | None, str]] = {}
_LOCK = threading.Lock()
_TTL = 60.0


def find_runtime(path: str | None = None) -> tuple[str | None, str]:
    """The path of a working container runtime (docker first), or ``None`` and why there
    is none. Answers are kept for a minute per ``PATH``."""
    search = path if path is not None else os.environ.get("PATH", "")
    with _LOCK:
        found = _FOUND.get(search)
        if found is not None and time.monotonic() - found[0] < _TTL:
            return found[1], found[2]
    reasons: list[str] = []
    runtime: str | None = None
    for name in RUNTIMES:
        exe = shutil.which(name, path=search)
        if exe is None:
            reasons.append(f"{name} is not installed")
            continue
        try:
            subprocess.run([exe, "info"], capture_output=True, timeout=30, check=True)
        except subprocess.CalledProcessError as exc:
            last = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-1:]
            reasons.append(f"{name} does not answer ({last[0] if last else exc.returncode})")
            continue
        except (OSError, subprocess.TimeoutExpired) as exc:
            reasons.append(f"{name} does not answer ({exc})")
            continue
        runtime = exe
        break
    why = "; ".join(reasons)
    with _LOCK:
        _FOUND[search] = (time.monotonic(), runtime, why)
    return runtime, why


class Placeholders:
    """The values the placeholders of one task's command line stand for."""

    def __init__(
        self,
        params: Mapping[str, Any],
        inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
        parameter_path: Callable[[str], str],
        as_text: Callable[[Any], str],
    ) -> None:
        self.params = params
        self.inputs = inputs  # name -> StepArtifact (or absent)
        self.outputs = outputs  # name -> StepArtifact
        self.parameter_path = parameter_path
        self.as_text = as_text

    def present(self, name: str) -> bool:
        return self.params.get(name) is not None or self.inputs.get(name) is not None

    def _one(self, match: re.Match[str]) -> str:
        side, kind, name, attr = match.groups()
        if kind == "parameters":
            if side == "outputs":
                return self.parameter_path(name)
            return self.as_text(self.params.get(name))
        art = (self.inputs if side == "inputs" else self.outputs).get(name)
        if art is None:
            raise ValueError(f"no artifact {name!r} for placeholder {match.group(0)}")
        if attr == "uri":
            return str(art.uri)
        if attr == "metadata":
            return json.dumps(art.metadata or {}, sort_keys=True)
        return str(art.path)

    def expand(self, element: Any) -> list[str]:
        """One element of a command line as the arguments it becomes."""
        if isinstance(element, str):
            return [_PLACEHOLDER.sub(self._one, element)]
        if isinstance(element, dict) and "Concat" in element:
            return ["".join(part for item in element["Concat"] for part in self.expand(item))]
        if isinstance(element, dict) and "IfPresent" in element:
            branch = element["IfPresent"]
            chosen = branch.get("Then") if self.present(branch["InputName"]) else branch.get("Else")
            return [arg for item in (chosen or []) for arg in self.expand(item)]
        raise ValueError(f"unsupported element {element!r} in a container command line")


def command_line(
    runtime: str, container: Mapping[str, Any], folder: str, values: Placeholders
) -> list[str]:
    """The ``docker run``/``podman run`` command for one task."""
    command = [arg for element in container.get("command") or [] for arg in values.expand(element)]
    args = [arg for element in container.get("args") or [] for arg in values.expand(element)]
    line = [runtime, "run", "--rm", "--network", "host", "-v", f"{folder}:{folder}"]
    if hasattr(os, "getuid"):
        line += ["--user", f"{os.getuid()}:{os.getgid()}"]
    if command:
        line += ["--entrypoint", command[0]]
    return [*line, str(container["image"]), *command[1:], *args]


def run(line: list[str], image: str) -> None:
    """Run the container, its output written to this step's stdout (its log)."""
    with subprocess.Popen(line, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
        assert process.stdout is not None
        fd = process.stdout.fileno()
        for chunk in iter(lambda: os.read(fd, 65536), b""):
            sys.stdout.write(chunk.decode(errors="replace"))
        code = process.wait()
    sys.stdout.flush()
    if code != 0:
        raise RuntimeError(f"the container of image {image} exited with {code}")
