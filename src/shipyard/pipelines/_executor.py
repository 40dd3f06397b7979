"""Running one step: the component's recorded source, called with artifacts and values.

``child_main`` is the entry point of a cold step process: it reads the step's
``StepRequest`` from the file its launcher wrote, runs the step (stdout and stderr already
go to its log; the run's settings are in its environment as ``SHIPYARD_*`` variables, so
SDK calls inside the step land in the same project) and writes its ``StepResult``. A forked
step (``_zygote``) and a Ray task (``run_captured``) run it the same way. The parent stores
the outputs; the step never touches the artifact store or run records.

This module imports only the DSL's artifact types (and of the rest of the DSL what a
component's code names), and reads the component's spec without pydantic, so a step process
(and the launcher it is forked from) starts fast and small.
"""

from __future__ import annotations
import __future__

import ast
import contextlib
import io
import json
import os
import shutil
import sys
import traceback
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import CodeType, TracebackType
from typing import Any, Protocol, TextIO

from shipyard import dsl
from shipyard.dsl._artifacts import ARTIFACT_TYPES, TASK_ROOT, Artifact
from shipyard.pipelines import _containers, _values
from shipyard.pipelines._messages import (
    StepArtifact,
    StepInput,
    StepRequest,
    StepResult,
    read_request,
    write_result,
)

_HERE = os.path.abspath(__file__)
# Components defined in this process, by their JSON. Only for ``run_request``, whose process
# runs one step and exits: the launcher defines each component once, and the steps forked
# from it afterwards start with it defined (each with its own copy of its namespace).
_LOADED: dict[str, tuple[Component, Callable[..., Any] | None]] = {}


class _Input(Protocol):
    @property
    def kind(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def path(self) -> bool: ...

    @property
    def optional(self) -> bool: ...


class Component(Protocol):
    """What running a step needs of a component: a ``ComponentSpec`` or a ``StepComponent``."""

    @property
    def name(self) -> str: ...

    @property
    def function(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def inputs(self) -> Mapping[str, _Input]: ...

    @property
    def outputs(self) -> Mapping[str, _Input]: ...

    @property
    def returns(self) -> str: ...

    @property
    def return_names(self) -> Sequence[str]: ...

    @property
    def filename(self) -> str: ...

    @property
    def lineno(self) -> int: ...


@dataclass(frozen=True)
class _StepInput:
    """An input or output of a ``StepComponent`` (an ``InputDef``/``OutputDef``)."""

    kind: str
    type: str
    path: bool = False
    optional: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _StepInput:
        return cls(
            data["kind"], data["type"], bool(data.get("path")), bool(data.get("optional"))
        )


@dataclass(frozen=True)
class StepComponent:
    """A component read from the JSON of its ``ComponentSpec`` (as the runner sends it),
    without importing pydantic: most of a step process's start-up time and memory."""

    name: str
    function: str
    source: str
    inputs: dict[str, _StepInput]
    outputs: dict[str, _StepInput]
    returns: str
    return_names: list[str]
    filename: str
    lineno: int
    container: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepComponent:
        return cls(
            name=data["name"],
            function=data["function"],
            source=data["source"],
            inputs={n: _StepInput.from_json(d) for n, d in data.get("inputs", {}).items()},
            outputs={n: _StepInput.from_json(d) for n, d in data.get("outputs", {}).items()},
            returns=data.get("returns", "none"),
            return_names=list(data.get("return_names", [])),
            filename=data.get("filename", ""),
            lineno=int(data.get("lineno", 1)),
            container=data.get("container"),
        )


def load(component: dict[str, Any]) -> tuple[Component, Callable[..., Any] | None]:
    """The spec and the function of a component (none for a container component),
    defined once per process."""
    key = json.dumps(component, sort_keys=True)
    loaded = _LOADED.get(key)
    if loaded is None:
        if len(_LOADED) >= 256:  # a launcher kept by a long-lived worker: stay small
            _LOADED.clear()
        spec = StepComponent.from_json(component)
        function = None if spec.container is not None else load_function(spec)
        loaded = _LOADED[key] = (spec, function)
    return loaded


def _global_names(code: CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _global_names(const)
    return names


def _none_at(node: ast.expr) -> ast.expr:
    return ast.copy_location(ast.Constant(None), node)


def _kept(node: ast.stmt, function: str) -> bool:
    if isinstance(node, ast.Import):
        return not any(a.name == "kfp" or a.name.startswith("kfp.") for a in node.names)
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        return node.level == 0 and module != "kfp" and not module.startswith("kfp.")
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name != function
    return False


def load_function(spec: Component) -> Callable[..., Any]:
    """Define the component's function from its recorded source.

    Decorators are dropped (they were ``@dsl.component``) and defaults are replaced by
    ``None`` (the runner passes every argument), so the source runs with only the names
    a Kubeflow component may assume: typing's and the DSL's. Annotations are not evaluated.
    Line numbers point into the original file, so tracebacks and debuggers show it.
    """
    tree = ast.parse(spec.source)
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == spec.function]
    if not funcs:
        raise ValueError(f"source of component {spec.name!r} defines no {spec.function!r}")
    node = funcs[0]
    node.decorator_list = []
    # Each new default takes the position of the one it replaces: ``compile`` refuses
    # nodes without one ("required field col_offset missing").
    node.args.defaults = [_none_at(d) for d in node.args.defaults]
    node.args.kw_defaults = [None if d is None else _none_at(d) for d in node.args.kw_defaults]
    # Beside the function, the definitions and imports its source holds: helpers given
    # with ``additional_funcs``, or the module kfp's compiler embeds (whose own imports of
    # kfp are dropped: the DSL's names are provided below).
    body = [n for n in tree.body if n is node or _kept(n, spec.function)]
    module = ast.Module(body=body, type_ignores=[])
    ast.increment_lineno(module, spec.lineno - 1)
    code = compile(
        module,
        spec.filename or f"<component {spec.name}>",
        "exec",
        flags=__future__.annotations.compiler_flag,
        dont_inherit=True,
    )
    namespace: dict[str, Any] = {n: getattr(typing, n) for n in typing.__all__}
    # Every DSL name, as kfp's ``from kfp.dsl import *``; but only those the code names are
    # fetched, so that the parts of the DSL a step does not use are never imported.
    used = _global_names(code)
    namespace.update({n: getattr(dsl, n) for n in dsl.__all__ if n in used})
    namespace.update(dsl=dsl, __name__=f"shipyard_component_{spec.function}")
    exec(code, namespace)
    func = namespace[spec.function]
    if not callable(func):
        raise TypeError(f"{spec.function!r} is not a function")
    return typing.cast(Callable[..., Any], func)


def plain(value: Any) -> Any:
    """JSON-ready copy of a returned value (numpy scalars and arrays included)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    for attr in ("tolist", "item"):  # numpy without importing it
        convert = getattr(value, attr, None)
        if callable(convert):
            return plain(convert())
    raise TypeError(f"step returned {type(value).__name__} {value!r}, which is not JSON data")


def _artifact(desc: StepArtifact) -> Artifact:
    cls = ARTIFACT_TYPES.get(desc.type, Artifact)
    art = cls(name=desc.name, uri=desc.uri, metadata=desc.metadata)
    art.path = desc.path
    return art


def _input(desc: StepInput) -> Artifact | list[Any]:
    if isinstance(desc, list):
        return [_input(d) for d in desc]
    return _artifact(desc)


def _path_input(request: StepRequest, name: str, definition: _Input) -> str | None:
    """An ``InputPath`` argument: the artifact's local path, or a file holding the
    parameter's value as text."""
    if definition.kind == "artifact":
        desc = request.inputs.get(name)
        if isinstance(desc, list):
            raise TypeError(f"input {name!r} is a list of artifacts: InputPath takes one")
        return None if desc is None else desc.path
    value = request.params.get(name)
    if value is None and definition.optional:
        return None
    path = os.path.join(request.folder, "inputs", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(_values.as_text(value))
    return path


def _parameter_path(request: StepRequest, name: str) -> str:
    """Where an ``OutputPath`` parameter is written (its folder exists, as on kfp)."""
    path = os.path.join(request.folder, "parameters", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def _arguments(spec: Component, request: StepRequest) -> tuple[dict[str, Any], dict[str, Artifact]]:
    kwargs: dict[str, Any] = {}
    for name, definition in spec.inputs.items():
        if definition.path:
            kwargs[name] = _path_input(request, name, definition)
        elif definition.kind == "artifact":
            desc = request.inputs.get(name)
            kwargs[name] = None if desc is None else _input(desc)
        elif definition.type == "TASK_FINAL_STATUS":
            kwargs[name] = dsl.PipelineTaskFinalStatus(**request.params[name])
        else:
            kwargs[name] = request.params.get(name)
    outputs = {name: _artifact(desc) for name, desc in request.outputs.items()}
    for art in outputs.values():
        # As kfp's executor does: the folder holding ``.path`` exists, so that a step can
        # write a file there or make the path a folder (``Path(out.path).mkdir()``).
        os.makedirs(os.path.dirname(art.path), exist_ok=True)
    returned = set(spec.return_names)
    for name, definition in spec.outputs.items():
        if name in returned:
            continue
        if name in outputs:
            kwargs[name] = outputs[name].path if definition.path else outputs[name]
        elif definition.path:
            kwargs[name] = _parameter_path(request, name)
    return kwargs, outputs


def _returned_artifact(spec: Component, name: str, value: Any, target: Artifact) -> None:
    """Put a returned artifact where the runner stores it from: a returned artifact
    object's file or folder (and its metadata), or other data as text, as kfp does."""
    if value is None:
        return  # nothing written: the runner reports the missing output
    if not isinstance(value, Artifact):
        with open(target.path, "w", encoding="utf-8") as f:
            f.write(str(value))
        return
    target.metadata = dict(value.metadata)
    source = value.path
    if not source or not os.path.exists(source):
        if "://" in (value.uri or ""):
            raise ValueError(
                f"component {spec.name!r} returned output {name!r} at {value.uri}: a step's "
                "artifacts are stored from local files; write to dsl.get_uri() instead"
            )
        return  # metadata only, or nothing (the runner decides)
    if os.path.realpath(source) == os.path.realpath(target.path):
        return
    if os.path.isdir(source):
        shutil.copytree(source, target.path, symlinks=True)
    else:
        shutil.copyfile(source, target.path)


def _returned(spec: Component, name: str, value: Any) -> Any:
    definition = spec.outputs.get(name)
    if definition is None:
        return plain(value)
    try:
        return plain(_values.check_return(value, definition.type, optional=definition.optional))
    except _values.ParameterTypeError as exc:
        what = "" if name == "Output" else f" for output {name!r}"
        raise TypeError(f"component {spec.name!r} {exc}{what}") from None


def _written(spec: Component, request: StepRequest, name: str, type_: str) -> Any:
    """The value an ``OutputPath`` parameter's file holds."""
    path = _parameter_path(request, name)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ValueError(
            f"component {spec.name!r} wrote nothing to its output parameter {name!r} "
            f"(write the value to the path it received)"
        ) from None
    try:
        return _values.from_text(text, type_)
    except _values.ParameterTypeError as exc:
        raise ValueError(f"component {spec.name!r} output parameter {name!r}: {exc}") from None


def _container_of(spec: Component) -> dict[str, Any] | None:
    container = getattr(spec, "container", None)
    if container is None or isinstance(container, dict):
        return container
    return typing.cast(dict[str, Any], container.model_dump(mode="json"))  # a ContainerDef


def _run_container(
    spec: Component, request: StepRequest, container: dict[str, Any]
) -> StepResult:
    """A container component's step: the container, then its output parameter files."""
    runtime = os.environ.get(_containers.RUNTIME_ENV)
    if not runtime:
        raise RuntimeError(
            f"component {spec.name!r} runs in a container, and this step was given no "
            "container runtime (docker or podman)"
        )
    os.makedirs(request.folder, exist_ok=True)
    for art in request.outputs.values():
        os.makedirs(os.path.dirname(art.path), exist_ok=True)
    values = _containers.Placeholders(
        request.params, request.inputs, request.outputs,
        lambda name: _parameter_path(request, name), _values.as_text,
    )  # fmt: skip
    line = _containers.command_line(runtime, container, request.folder, values)
    _containers.run(line, str(container["image"]))
    outputs = {
        name: _written(spec, request, name, definition.type)
        for name, definition in spec.outputs.items()
        if definition.kind == "parameter"
    }
    return StepResult(ok=True, outputs=outputs, metadata={})


def execute(
    spec: Component, request: StepRequest, func: Callable[..., Any] | None = None
) -> StepResult:
    """Call the step (``func``, or the component's recorded source); its outputs, and
    what it set on its output artifacts' ``metadata``. Raises what the step raises."""
    container = _container_of(spec)
    if container is not None:
        return _run_container(spec, request, container)
    kwargs, outputs = _arguments(spec, request)
    function = func if func is not None else load_function(spec)
    token = TASK_ROOT.set(os.path.join(request.folder, "outputs"))
    try:
        returned = function(**kwargs)
    except SystemExit as exc:
        # On Kubeflow a component is a process: sys.exit(0) ends it successfully, having
        # returned nothing; any other code fails it (re-raised, as a failure here too).
        if exc.code not in (0, None):
            raise
        returned = None
    finally:
        TASK_ROOT.reset(token)
    got: dict[str, Any] = {}
    if spec.returns == "single":
        got["Output"] = returned
    elif spec.returns == "namedtuple":
        names = spec.return_names
        if isinstance(returned, dict):
            got = {n: returned[n] for n in names}
        elif isinstance(returned, tuple) and len(returned) == len(names):
            fields = getattr(returned, "_fields", None)
            got = dict(zip(fields or names, returned, strict=True))
            got = {n: got[n] for n in names}
        else:
            raise TypeError(f"step must return a tuple of {names}, got {returned!r}")
    values: dict[str, Any] = {}
    for name, value in got.items():
        if name in outputs:
            _returned_artifact(spec, name, value, outputs[name])
        else:
            values[name] = _returned(spec, name, value)
    for name, definition in spec.outputs.items():
        if definition.path and definition.kind == "parameter":
            values[name] = _written(spec, request, name, definition.type)
    metadata = {name: plain(art.metadata) for name, art in outputs.items()}
    return StepResult(ok=True, outputs=values, metadata=metadata)


def user_traceback(exc: BaseException) -> str:
    """The traceback from the step's own frames on (the executor's are noise)."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) == _HERE:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


def child_main(request_path: str) -> None:
    """Entry point of a cold step process (its stdout and stderr already go to the log)."""
    request = read_request(request_path)
    write_result(request.result, run_request(request))


def run_request(request: StepRequest) -> StepResult:
    """Run a step in this (step) process; its result, for the caller to hand over."""
    try:
        spec, function = load(request.component)
        result = execute(spec, request, function)
    except BaseException as exc:  # every failure is reported to the parent
        text = user_traceback(exc)
        sys.stderr.write(text)
        result = StepResult.failed(text)
    sys.stdout.flush()
    sys.stderr.flush()
    return result


def run_captured(request_json: dict[str, Any]) -> dict[str, Any]:
    """Run a step in a worker process we do not own (a Ray worker): environment and
    output capture last only for the step. JSON in and out, as for a step process."""
    request = StepRequest.from_json(request_json)
    spec = StepComponent.from_json(request.component)
    with (
        open(request.log, "a", encoding="utf-8") as log,
        _environment(request.env),
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        try:
            return execute(spec, request).to_json()
        except (Exception, SystemExit) as exc:
            text = user_traceback(exc)
            log.write(text)
            return StepResult.failed(text).to_json()


class _Tee:
    """Writes to the terminal and the step's log, so inline steps stay interactive."""

    def __init__(self, *streams: TextIO) -> None:
        self._streams = streams

    def write(self, text: str) -> int:
        for stream in self._streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self._streams:
            stream.flush()

    def isatty(self) -> bool:
        return self._streams[0].isatty()


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def run_inline(
    spec: Component, request: StepRequest, func: Callable[..., Any] | None
) -> StepResult:
    """Run a step in this process (breakpoints work), teeing its output to its log.

    The log is kept in memory and written only if the step wrote anything: most steps
    print nothing, and a file per step costs more than a trivial step itself."""
    log = io.StringIO()
    with (
        _environment(request.env),
        contextlib.redirect_stdout(_Tee(sys.stdout, log)),  # type: ignore[type-var]
        contextlib.redirect_stderr(_Tee(sys.stderr, log)),  # type: ignore[type-var]
    ):
        try:
            result = execute(spec, request, func)
        except (Exception, SystemExit) as exc:  # a step's sys.exit(1) fails it, not the caller
            text = user_traceback(exc)
            log.write(text)
            result = StepResult.failed(text)
    if log.tell():
        with open(request.log, "a", encoding="utf-8") as f:
            f.write(log.getvalue())
    return result


if __name__ == "__main__":
    child_main(sys.argv[1])
