"""The compiled form of a pipeline: what the compiler writes, ``load_spec`` reads and the
engine runs.

A ``PipelineSpec`` is plain data (pydantic models): components carry their Python source and
a sha256 of source plus interface, tasks name the component they run and where each input
comes from, loops and conditions are data too. Running a spec loaded from YAML therefore
runs exactly what running the decorated function runs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

SCHEMA_VERSION = "shipyard.dev/pipeline/v1"

# Parameter types, named as in the KFP v2 pipeline spec.
ParamType = Literal[
    "STRING",
    "NUMBER_INTEGER",
    "NUMBER_DOUBLE",
    "BOOLEAN",
    "LIST",
    "STRUCT",
    "ANY",
    "TASK_FINAL_STATUS",
]
SourceKind = Literal["constant", "param", "task", "loop_item", "collected", "oneof"]
ConditionOp = Literal["==", "!=", "<", "<=", ">", ">=", "truthy"]


def canonical_json(value: Any) -> str:
    """Deterministic JSON used in hashes and cache keys."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class _Spec(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


class InputDef(_Spec):
    """A component or pipeline input: a parameter (``type`` is a ``ParamType``) or an
    artifact (``type`` is a schema title such as ``system.Dataset``). ``path``: the
    function receives a local path (``dsl.InputPath``) instead of the value or artifact."""

    kind: Literal["parameter", "artifact"]
    type: str
    is_list: bool = False
    optional: bool = False
    default: Any = None
    path: bool = False


class OutputDef(_Spec):
    """A component output. ``path``: the function receives a local path to write
    (``dsl.OutputPath``; a parameter is read back from the file's text); ``optional``: a
    returned ``None`` is allowed (an ``Optional[...]`` return)."""

    kind: Literal["parameter", "artifact"]
    type: str
    path: bool = False
    optional: bool = False


# Fields added after components were first hashed: left out of the hash while they hold
# their default, so that a component's hash (and its cache entries) outlive the upgrade.
_LATER_FIELDS = {"inputs": ("path",), "outputs": ("path", "optional")}


class ContainerDef(_Spec):
    """A container component's process: ``image``, then ``command`` (the entrypoint) and
    ``args``. Each element is a string, where placeholders such as
    ``{{$.inputs.parameters['n']}}`` or ``{{$.outputs.artifacts['m'].path}}`` stand for
    the task's values and paths, or a structure: ``{"Concat": [...]}`` or
    ``{"IfPresent": {"InputName": n, "Then": [...], "Else": [...]}}``, as in Kubeflow's
    pipeline spec."""

    image: str
    command: list[Any] = Field(default_factory=list)
    args: list[Any] = Field(default_factory=list)


class ComponentSpec(_Spec):
    """A Python function component (its source, interface and recorded build options), or
    with ``container`` a container component (its source is empty)."""

    name: str
    function: str
    source: str
    inputs: dict[str, InputDef] = Field(default_factory=dict)
    outputs: dict[str, OutputDef] = Field(default_factory=dict)
    returns: Literal["none", "single", "namedtuple"] = "none"
    return_names: list[str] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    # Where the source came from, so tracebacks and debuggers point at the user's file.
    filename: str = ""
    lineno: int = 1
    container: ContainerDef | None = None

    @property
    def hash(self) -> str:
        """sha256 of the source and the interface; part of every cache key."""
        body = self.model_dump(
            mode="json", exclude={"description", "options", "name", "filename", "lineno"}
        )
        if body.get("container") is None:
            body.pop("container", None)
        for section, later in _LATER_FIELDS.items():
            for entry in body[section].values():
                for key in [k for k in later if entry.get(k) is False]:
                    del entry[key]
        return "sha256:" + hashlib.sha256(canonical_json(body).encode()).hexdigest()


class ValueSource(_Spec):
    """Where a task input (or a loop's items, or a condition operand) comes from.

    ``constant``: ``value``; ``param``: pipeline input ``param``; ``task``: output ``output``
    of ``task`` (``key`` selects a field of a dict or an item of a list value);
    ``loop_item``: the current item of loop ``loop`` (``key`` selects a field);
    ``collected``: every iteration's value of ``task``'s ``output``, as a list;
    ``oneof``: the first of ``options`` whose task ran (``dsl.OneOf`` over the branches of
    an If/Elif/Else chain).
    """

    kind: SourceKind
    value: Any = None
    param: str | None = None
    task: str | None = None
    output: str | None = None
    key: str | int | None = None
    loop: str | None = None
    options: list[ValueSource] = Field(default_factory=list)


class ConditionSpec(_Spec):
    left: ValueSource
    op: ConditionOp
    right: ValueSource | None = None
    negate: bool = False


class TaskOptions(_Spec):
    enable_caching: bool = True
    cache_key: str = ""
    max_cache_age: float | None = None
    num_retries: int = 0
    backoff_duration: float = 0.0
    backoff_factor: float = 2.0
    backoff_max_duration: float = 3600.0
    timeout: float | None = None
    cpu_limit: float | None = None
    memory_limit: int | None = None
    display_name: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    ignore_upstream_failure: bool = False
    hints: dict[str, Any] = Field(default_factory=dict)


class TaskSpec(_Spec):
    """One node of the DAG. ``loops`` lists enclosing loops, outermost first; ``exit_for``
    names the tasks an exit handler waits for (it runs whatever their outcome)."""

    name: str
    component: str
    inputs: dict[str, ValueSource] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    conditions: list[ConditionSpec] = Field(default_factory=list)
    loops: list[str] = Field(default_factory=list)
    exit_for: list[str] = Field(default_factory=list)
    options: TaskOptions = Field(default_factory=TaskOptions)


class LoopSpec(_Spec):
    name: str
    items: ValueSource
    parallelism: int = 0
    parent: str | None = None


class PipelineSpec(_Spec):
    """A whole pipeline. Tasks are listed in definition order (a topological order)."""

    schema_version: str = SCHEMA_VERSION
    name: str
    description: str = ""
    pipeline_root: str | None = None
    inputs: dict[str, InputDef] = Field(default_factory=dict)
    outputs: dict[str, ValueSource] = Field(default_factory=dict)
    components: dict[str, ComponentSpec] = Field(default_factory=dict)
    tasks: dict[str, TaskSpec] = Field(default_factory=dict)
    loops: dict[str, LoopSpec] = Field(default_factory=dict)

    @property
    def hash(self) -> str:
        body = self.model_dump(mode="json", by_alias=True)
        return "sha256:" + hashlib.sha256(canonical_json(body).encode()).hexdigest()


def source_tasks(source: ValueSource) -> list[str]:
    """The tasks whose outputs ``source`` reads."""
    if source.kind == "oneof":
        return [name for option in source.options for name in source_tasks(option)]
    return [source.task] if source.kind in ("task", "collected") and source.task else []


def upstream_tasks(spec: PipelineSpec, task: TaskSpec) -> list[str]:
    """Every task ``task`` waits for: data it reads, conditions, loop items, ``after``
    and, for an exit handler, the tasks it guards."""
    found: list[str] = []
    sources = list(task.inputs.values())
    for cond in task.conditions:
        sources.append(cond.left)
        if cond.right is not None:
            sources.append(cond.right)
    sources.extend(spec.loops[loop].items for loop in task.loops if loop in spec.loops)
    for source in sources:
        found.extend(source_tasks(source))
    found.extend(task.depends_on)
    found.extend(task.exit_for)
    return list(dict.fromkeys(n for n in found if n != task.name))


def find_cycle(spec: PipelineSpec) -> list[str]:
    """A dependency cycle as a list of task names (first repeated last), or ``[]``."""
    graph = {name: upstream_tasks(spec, task) for name, task in spec.tasks.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return []

    for name in graph:
        if name not in state:
            found = visit(name)
            if found:
                return found
    return []


def topological_order(spec: PipelineSpec) -> list[str]:
    order: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done or name not in spec.tasks:
            return
        done.add(name)
        for up in upstream_tasks(spec, spec.tasks[name]):
            visit(up)
        order.append(name)

    for name in spec.tasks:
        visit(name)
    return order
