"""Reading the pipeline spec (IR YAML) that Kubeflow's ``kfp.compiler.Compiler`` writes.

``from_kfp`` turns such a document into Shipyard's ``PipelineSpec``, so a team runs the
YAML it already has without the pipeline's Python source: a lightweight Python component's
source is in the spec (the last element of its container command, with the function named
after ``--function_to_execute``), its interface in the component's input and output
definitions. DAGs nested for conditions, loops, exit handlers, If/Elif/Else branches and
pipelines called inside pipelines are flattened into Shipyard's tasks (a nested pipeline's
tasks are named ``<its task>.<task>``, as when the pipeline runs from Python); loop and
branch outputs become ``collected`` and ``oneof`` sources. Caching options, retry
policies, trigger conditions, ``ALL_UPSTREAM_TASKS_COMPLETED`` (exit handlers,
``ignore_upstream_failure``), importers, container components, loops over values and over
lists of artifacts, CPU and memory limits and environment variables are honoured. What
Shipyard cannot honour is refused, naming it: Kubernetes platform configuration, Python
components built into their
own image (``target_image``), the whole executor input passed to a container, and
conditions other than comparisons joined by ``&&``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from shipyard.dsl._task import parse_cpu, parse_duration, parse_memory
from shipyard.errors import InvalidArgument
from shipyard.pipelines._kfp_components import (
    container_component,
    importer_component,
    input_defs,
    kfp_number,
    refuse,
)
from shipyard.pipelines.spec import (
    ComponentSpec,
    ConditionSpec,
    LoopSpec,
    PipelineSpec,
    TaskOptions,
    TaskSpec,
    ValueSource,
)

_PARAM_REF = re.compile(r"^(?:(?:int|double)\()?inputs\.parameter_values\['([^']+)'\]\)?$")
_SELECTOR = re.compile(r'^parseJson\(string_value\)\["([^"]+)"\]$')
_OPS = ("==", "!=", "<=", ">=", "<", ">")


@dataclass
class _Group:
    """A DAG task (a condition, loop, exit handler, branch set or nested pipeline) after
    its DAG was read: what its outputs resolve to, and the Shipyard tasks it holds."""

    scope: _Scope
    outputs: dict[str, Any]
    loop: str | None
    tasks: list[str]


@dataclass
class _Scope:
    """One DAG being read: where its inputs come from and what encloses it."""

    env: dict[str, ValueSource]
    prefix: str = ""
    conditions: list[ConditionSpec] = field(default_factory=list)
    loops: list[str] = field(default_factory=list)
    names: dict[str, str | _Group] = field(default_factory=dict)  # local name -> task/group
    added: list[str] = field(default_factory=list)
    absent: set[str] = field(default_factory=set)  # optional inputs the caller left out


class _Reader:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.kfp_components: dict[str, Any] = doc.get("components") or {}
        self.executors: dict[str, Any] = (doc.get("deploymentSpec") or {}).get("executors") or {}
        self.components: dict[str, ComponentSpec] = {}
        self.component_keys: dict[str, str] = {}
        self.tasks: dict[str, TaskSpec] = {}
        self.loops: dict[str, LoopSpec] = {}

    # -- the pipeline ----------------------------------------------------------------------

    def pipeline(self) -> PipelineSpec:
        root = self.doc.get("root") or {}
        inputs = input_defs(root.get("inputDefinitions") or {})
        scope = _Scope(env={name: ValueSource(kind="param", param=name) for name in inputs})
        outputs = self.dag(root.get("dag") or {}, scope)
        info = self.doc.get("pipelineInfo") or {}
        return PipelineSpec(
            name=str(info.get("name") or "pipeline"),
            description=str(info.get("description") or ""),
            pipeline_root=self.doc.get("defaultPipelineRoot"),
            inputs=inputs,
            outputs={k: v for k, v in outputs.items() if isinstance(v, ValueSource)},
            components=self.components,
            tasks=self.tasks,
            loops=self.loops,
        )

    def dag(self, dag: dict[str, Any], scope: _Scope) -> dict[str, Any]:
        """Read a DAG's tasks into ``scope``; return what its outputs resolve to."""
        tasks: dict[str, Any] = dag.get("tasks") or {}
        for local in _order(tasks):
            self.task(local, tasks[local], scope)
        found: dict[str, Any] = {}
        outputs = dag.get("outputs") or {}
        for name, spec in (outputs.get("parameters") or {}).items():
            found[name] = self.dag_output(scope, spec, "parameter")
        for name, spec in (outputs.get("artifacts") or {}).items():
            found[name] = self.dag_output(scope, spec, "artifact")
        return found

    def dag_output(self, scope: _Scope, spec: dict[str, Any], kind: str) -> Any:
        if "valueFromParameter" in spec:
            selector = spec["valueFromParameter"]
            return self.output(scope, selector["producerSubtask"], selector["outputParameterKey"])
        if "valueFromOneof" in spec:
            oneof = spec["valueFromOneof"]
            selectors = oneof.get("parameterSelectors") or oneof.get("artifactSelectors") or []
            return ValueSource(kind="oneof", options=[
                self.output(scope, s["producerSubtask"],
                            s.get("outputParameterKey") or s.get("outputArtifactKey"))
                for s in selectors
            ])  # fmt: skip
        selectors = spec.get("artifactSelectors") or []
        options = [self.output(scope, s["producerSubtask"], s["outputArtifactKey"])
                   for s in selectors]  # fmt: skip
        if len(options) == 1:
            return options[0]
        if options:  # one per branch of an If/Elif/Else: dsl.OneOf over artifacts
            return ValueSource(kind="oneof", options=options)
        raise refuse("a DAG output with no producer")

    def output(self, scope: _Scope, producer: str, key: str) -> ValueSource:
        """Output ``key`` of the DAG task ``producer``, seen from ``scope``."""
        entry = scope.names.get(producer)
        if entry is None:
            raise InvalidArgument(f"a task reads unknown task {producer!r}", field="spec")
        if isinstance(entry, str):
            return ValueSource(kind="task", task=entry, output=key)
        inner = entry.outputs.get(key)
        if not isinstance(inner, ValueSource):
            raise InvalidArgument(f"task {producer!r} has no output {key!r}", field="spec")
        if entry.loop is not None and inner.kind == "task":
            return inner.model_copy(update={"kind": "collected"})
        return inner

    # -- tasks -----------------------------------------------------------------------------

    def task(self, local: str, task: dict[str, Any], scope: _Scope) -> None:
        ref = (task.get("componentRef") or {}).get("name", "")
        component = self.kfp_components.get(ref)
        if component is None:
            raise InvalidArgument(f"task {local!r} runs unknown component {ref!r}",
                                  field=f"root.dag.tasks.{local}")  # fmt: skip
        own = self.inputs(task, scope)
        conditions = [*scope.conditions, *self.conditions(task, own)]
        if "dag" in component:
            self.group(local, task, component, scope, conditions)
            return
        name = scope.prefix + local
        key = self.component(ref, component, task)
        inputs = own
        strategy = (task.get("triggerPolicy") or {}).get("strategy")
        exit_for: list[str] = []
        depends: list[str] = []
        for dep in task.get("dependentTasks") or []:
            entry = scope.names.get(dep)
            if isinstance(entry, str):
                depends.append(entry)
            elif isinstance(entry, _Group) and any(
                "taskFinalStatus" in spec
                for spec in ((task.get("inputs") or {}).get("parameters") or {}).values()
            ):
                exit_for.extend(entry.tasks)
        is_exit = bool(exit_for) or any(
            "taskFinalStatus" in spec
            for spec in ((task.get("inputs") or {}).get("parameters") or {}).values()
        )
        executor = self.executors.get(component.get("executorLabel", ""), {})
        self.tasks[name] = TaskSpec(
            name=name,
            component=key,
            inputs=inputs,
            depends_on=[d for d in depends if d != name],
            conditions=conditions,
            loops=list(scope.loops),
            exit_for=exit_for,
            options=self.options(local, task, executor, ignore=(
                strategy == "ALL_UPSTREAM_TASKS_COMPLETED" and not is_exit)),
        )
        scope.names[local] = name
        scope.added.append(name)

    def group(self, local: str, task: dict[str, Any], component: dict[str, Any],
              scope: _Scope, conditions: list[ConditionSpec]) -> None:  # fmt: skip
        env = self.inputs(task, scope)
        loops = list(scope.loops)
        loop_name: str | None = None
        # A loop over values, or over a list of artifacts (its item one artifact).
        iterator = task.get("parameterIterator") or task.get("artifactIterator")
        if iterator is not None:
            loop_name = f"{scope.prefix}{local}"
            items_spec = iterator.get("items") or {}
            found = (ValueSource(kind="constant", value=kfp_number(json.loads(items_spec["raw"])))
                     if "raw" in items_spec
                     else env.get(items_spec.get("inputParameter")
                                  or items_spec.get("inputArtifact", "")))
            if found is None:
                raise InvalidArgument(f"loop {local!r} has no items", field="spec")
            items = found
            self.loops[loop_name] = LoopSpec(
                name=loop_name, items=items,
                parallelism=int((task.get("iteratorPolicy") or {}).get("parallelismLimit", 0)),
                parent=loops[-1] if loops else None,
            )  # fmt: skip
            env[iterator["itemInput"]] = ValueSource(kind="loop_item", loop=loop_name)
            loops.append(loop_name)
        ref = (task.get("componentRef") or {}).get("name", "")
        # A group's component may carry a suffix kfp adds against a name clash (-1-2).
        control = re.match(
            r"comp-(condition|for-loop|exit-handler|condition-branches)-\d+(-\d+)?$", ref)
        prefix = scope.prefix if control else f"{scope.prefix}{local}."
        absent: set[str] = set()
        definitions = component.get("inputDefinitions") or {}
        for name, spec in (definitions.get("parameters") or {}).items():
            if name not in env and "defaultValue" in spec:
                env[name] = ValueSource(kind="constant", value=kfp_number(spec["defaultValue"]))
            elif name not in env:
                absent.add(name)
        absent.update(n for n in definitions.get("artifacts") or {} if n not in env)
        inner = _Scope(env=env, prefix=prefix, conditions=conditions, loops=loops,
                       absent=absent)  # fmt: skip
        outputs = self.dag(component["dag"], inner)
        added = inner.added
        scope.names[local] = _Group(inner, outputs, loop_name, added)
        scope.added.extend(added)

    def inputs(self, task: dict[str, Any], scope: _Scope) -> dict[str, ValueSource]:
        found: dict[str, ValueSource] = {}
        inputs = task.get("inputs") or {}
        for name, spec in (inputs.get("parameters") or {}).items():
            if "taskFinalStatus" in spec or spec.get("componentInputParameter") in scope.absent:
                continue  # left out: the task's own default applies
            source = self.value(name, spec, scope)
            selector = spec.get("parameterExpressionSelector")
            if selector:
                match = _SELECTOR.match(selector)
                if match is None:
                    raise refuse(f"the parameter expression {selector!r}")
                source = source.model_copy(update={"key": match.group(1)})
            found[name] = source
        for name, spec in (inputs.get("artifacts") or {}).items():
            if "taskOutputArtifact" in spec:
                out = spec["taskOutputArtifact"]
                found[name] = self.output(scope, out["producerTask"], out["outputArtifactKey"])
            elif spec.get("componentInputArtifact") in scope.absent:
                continue
            elif "componentInputArtifact" in spec:
                found[name] = self.env(scope, spec["componentInputArtifact"])
            else:
                raise refuse(f"an artifact argument of the form {sorted(spec)}")
        return found

    def value(self, name: str, spec: dict[str, Any], scope: _Scope) -> ValueSource:
        if "componentInputParameter" in spec:
            return self.env(scope, spec["componentInputParameter"])
        if "taskOutputParameter" in spec:
            out = spec["taskOutputParameter"]
            return self.output(scope, out["producerTask"], out["outputParameterKey"])
        if "runtimeValue" in spec:
            constant = (spec["runtimeValue"] or {}).get("constant")
            return ValueSource(kind="constant", value=kfp_number(constant))
        raise refuse(f"a parameter argument of the form {sorted(spec)} (input {name!r})")

    def env(self, scope: _Scope, name: str) -> ValueSource:
        source = scope.env.get(name)
        if source is None:
            raise InvalidArgument(f"a task reads unknown input {name!r}", field="spec")
        return source

    def conditions(self, task: dict[str, Any], env: dict[str, ValueSource]) -> list[ConditionSpec]:
        """A task's trigger condition, over its own inputs."""
        text = (task.get("triggerPolicy") or {}).get("condition")
        return _conditions(text, env) if text else []

    def options(self, local: str, task: dict[str, Any], executor: dict[str, Any],
                ignore: bool) -> TaskOptions:  # fmt: skip
        caching = task.get("cachingOptions")
        retry = task.get("retryPolicy") or {}
        container = executor.get("container") or {}
        resources = container.get("resources") or {}
        cpu = resources.get("resourceCpuLimit") or resources.get("cpuLimit")
        memory = resources.get("resourceMemoryLimit")
        if memory is None and resources.get("memoryLimit"):
            memory = f"{resources['memoryLimit']}G"
        display = (task.get("taskInfo") or {}).get("name")
        reimport = bool((executor.get("importer") or {}).get("reimport"))
        hints: dict[str, Any] = {}
        # Limits set from pipeline values at run time: kept as hints, not enforced.
        if isinstance(cpu, str) and "{{$" in cpu:
            hints["cpu_limit"], cpu = cpu, None
        if isinstance(memory, str) and "{{$" in memory:
            hints["memory_limit"], memory = memory, None
        return TaskOptions(
            hints=hints,
            enable_caching=(caching is None or bool(caching.get("enableCache"))) and not reimport,
            num_retries=int(retry.get("maxRetryCount", 0)),
            backoff_duration=parse_duration(retry.get("backoffDuration"), 0.0),
            backoff_factor=float(retry.get("backoffFactor", 2.0)),
            backoff_max_duration=parse_duration(retry.get("backoffMaxDuration"), 3600.0),
            cpu_limit=parse_cpu(cpu) if cpu else None,
            memory_limit=parse_memory(memory) if memory else None,
            display_name=display if display and display != local else None,
            env={str(e["name"]): str(e.get("value", "")) for e in container.get("env") or []},
            ignore_upstream_failure=ignore,
        )

    # -- components --------------------------------------------------------------------------

    def component(self, ref: str, component: dict[str, Any], task: dict[str, Any]) -> str:
        key = self.component_keys.get(ref)
        if key is not None:
            return key
        executor = self.executors.get(component.get("executorLabel", ""))
        if executor is None:
            raise InvalidArgument(f"component {ref!r} has no executor", field="deploymentSpec")
        name = ref.removeprefix("comp-")
        if "importer" in executor:
            spec = importer_component(executor["importer"], component)
        elif "container" in executor:
            spec = container_component(name, component, executor["container"])
        else:
            raise refuse(f"an executor of the form {sorted(executor)} (component {name!r})")
        key = name
        self.components[key] = spec
        self.component_keys[ref] = key
        return key


# -- conditions --------------------------------------------------------------------------------


def _split(text: str, sep: str) -> Iterator[str]:
    depth, quoted, start, i = 0, False, 0, 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and text.startswith(sep, i):
            yield text[start:i].strip()
            start = i + len(sep)
            i += len(sep)
            continue
        i += 1
    yield text[start:].strip()


def _conditions(text: str, env: dict[str, ValueSource]) -> list[ConditionSpec]:
    found: list[ConditionSpec] = []
    for part in _split(text, "&&"):
        negate = part.startswith("!(") and part.endswith(")")
        inner = part[2:-1].strip() if negate else part
        op = next((o for o in _OPS if len(list(_split(inner, f" {o} "))) == 2), None)
        if op is None:
            raise refuse(f"the condition {text!r}")
        left, right = _split(inner, f" {op} ")
        found.append(ConditionSpec(left=_operand(left, text, env), op=op,  # type: ignore[arg-type]
                                   right=_operand(right, text, env), negate=negate))
    return found


def _operand(text: str, condition: str, env: dict[str, ValueSource]) -> ValueSource:
    match = _PARAM_REF.match(text)
    if match:
        source = env.get(match.group(1))
        if source is None:
            raise InvalidArgument(f"condition {condition!r} reads unknown input "
                                  f"{match.group(1)!r}", field="spec")  # fmt: skip
        return source
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return ValueSource(kind="constant", value=text[1:-1])
    if text in ("true", "false"):
        return ValueSource(kind="constant", value=text == "true")
    try:
        return ValueSource(kind="constant", value=int(text))
    except ValueError:
        pass
    try:
        return ValueSource(kind="constant", value=float(text))
    except ValueError:
        raise refuse(f"the condition {condition!r}") from None


def _order(tasks: dict[str, Any]) -> list[str]:
    """A DAG's tasks, each after the tasks it reads or follows."""
    done: list[str] = []
    seen: set[str] = set()

    def upstream(task: dict[str, Any]) -> list[str]:
        found = list(task.get("dependentTasks") or [])
        inputs = task.get("inputs") or {}
        for spec in [*(inputs.get("parameters") or {}).values(),
                     *(inputs.get("artifacts") or {}).values()]:  # fmt: skip
            for key in ("taskOutputParameter", "taskOutputArtifact", "taskFinalStatus"):
                if key in spec:
                    found.append(spec[key]["producerTask"])
        return found

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in seen or name not in tasks:
            return
        if name in path:
            raise InvalidArgument(f"the pipeline has a dependency cycle at {name!r}",
                                  field="spec")  # fmt: skip
        for up in upstream(tasks[name]):
            visit(up, (*path, name))
        seen.add(name)
        done.append(name)

    for name in tasks:
        visit(name, ())
    return done


def component_of(doc: dict[str, Any], task: dict[str, Any]) -> ComponentSpec:
    """The component a task of a kfp-compiled spec runs, as Shipyard's."""
    ref = (task.get("componentRef") or {}).get("name", "")
    component = (doc.get("components") or {}).get(ref)
    if component is None or "dag" in component:
        raise InvalidArgument(f"task runs no component of its own ({ref!r})", field="spec")
    reader = _Reader(doc)
    return reader.components[reader.component(ref, component, task)]


def from_kfp(documents: list[Any], origin: str) -> PipelineSpec:
    """The Shipyard spec of a kfp-compiled pipeline (module docstring)."""
    doc = documents[0]
    for extra in documents[1:]:
        if isinstance(extra, dict) and "platforms" in extra:
            platforms = ", ".join(sorted(extra["platforms"] or {}))
            raise refuse(f"platform configuration ({platforms}: kfp-kubernetes settings such "
                         "as volumes, secrets or node selectors)", field="platforms")
    if not str(doc.get("schemaVersion", "2.")).startswith("2."):
        raise InvalidArgument(f"{origin} has pipeline spec schemaVersion "
                              f"{doc.get('schemaVersion')!r}; Shipyard reads 2.x",
                              field="schemaVersion")  # fmt: skip
    return _Reader(doc).pipeline()
