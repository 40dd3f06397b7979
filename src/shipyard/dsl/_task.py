"""``PipelineTask``: one call of a component inside a pipeline, and its per-task settings."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from shipyard.dsl._channels import Channel, TaskOutput
from shipyard.errors import InvalidArgument
from shipyard.pipelines.spec import (
    ConditionSpec,
    TaskOptions,
    TaskSpec,
    ValueSource,
    source_tasks,
)

if TYPE_CHECKING:
    from shipyard.pipelines.spec import ComponentSpec

_MEMORY_UNITS = {
    "": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40,
}  # fmt: skip
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}


def parse_cpu(value: str | float) -> float:
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m?)", text)
    if not match:
        raise InvalidArgument(f"cpu {text!r} is not a CPU amount like '2' or '500m'", field="cpu")
    amount = float(match.group(1))
    return amount / 1000 if match.group(2) else amount


def parse_memory(value: str | int) -> int:
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]i?)?B?", text, re.IGNORECASE)
    if not match:
        raise InvalidArgument(f"memory {text!r} is not like '512Mi' or '4G'", field="memory")
    return int(float(match.group(1)) * _MEMORY_UNITS[(match.group(2) or "").upper()])


def parse_duration(value: str | float | None, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, int | float):
        return float(value)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|)", value.strip())
    if not match:
        raise InvalidArgument(f"duration {value!r} is not like '30s' or '5m'", field="duration")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


class TaskOutputs(Mapping[str, TaskOutput]):
    """``task.outputs``. A component returning one dict also answers ``outputs["key"]`` with
    that key of the dict (an extension: code written against such components runs as is)."""

    def __init__(self, task: PipelineTask, outputs: dict[str, TaskOutput]) -> None:
        self._task = task
        self._outputs = outputs

    def __getitem__(self, name: str) -> TaskOutput:
        if name in self._outputs:
            return self._outputs[name]
        single = self._outputs.get("Output")
        if single is not None and len(self._outputs) >= 1 and single.type in ("STRUCT", "ANY"):
            return single[name]
        raise InvalidArgument(
            f"task {self._task.name!r} has no output {name!r}; outputs are {sorted(self._outputs)}",
            field=f"{self._task.name}.outputs",
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._outputs)

    def __len__(self) -> int:
        return len(self._outputs)


class PipelineTask:
    """A task in a pipeline being defined. Its setters return the task, so they chain."""

    def __init__(self, name: str, component: ComponentSpec, component_key: str) -> None:
        self.name = name
        self.component_spec = component
        self.component_key = component_key
        self.inputs: dict[str, ValueSource] = {}
        self.depends_on: list[str] = []
        self.conditions: list[ConditionSpec] = []
        self.loops: list[str] = []
        self.exit_for: list[str] = []
        self._options: dict[str, Any] = {}
        self._hints: dict[str, Any] = {}
        self._env: dict[str, str] = {}
        outputs = {
            out: TaskOutput(self, out, spec.kind, spec.type)
            for out, spec in component.outputs.items()
        }
        self._outputs = TaskOutputs(self, outputs)

    @property
    def outputs(self) -> TaskOutputs:
        return self._outputs

    @property
    def output(self) -> TaskOutput:
        """The only output; a task with several outputs names them in ``outputs``."""
        names = list(self._outputs)
        if len(names) > 1 and "Output" in names:
            # A return value alongside Output[...] artifacts: the return is "the" output.
            names = ["Output"]
        if len(names) != 1:
            raise InvalidArgument(
                f"task {self.name!r} has {len(names)} outputs {names}: use .outputs[name]",
                field=f"{self.name}.output",
            )
        return self._outputs[names[0]]

    def after(self, *tasks: Any) -> PipelineTask:
        for task in tasks:
            for name in getattr(task, "task_names", [getattr(task, "name", None)]):
                if not isinstance(name, str):
                    raise InvalidArgument("after() takes tasks", field=f"{self.name}.after")
                if name not in self.depends_on and name != self.name:
                    self.depends_on.append(name)
        return self

    def set_caching_options(
        self, enable_caching: bool, cache_key: str | None = None, max_age: float | None = None
    ) -> PipelineTask:
        self._options.update(enable_caching=bool(enable_caching), cache_key=cache_key or "")
        if max_age is not None:
            self._options["max_cache_age"] = float(max_age)
        return self

    def set_retry(
        self,
        num_retries: int,
        backoff_duration: str | float | None = None,
        backoff_factor: float | None = None,
        backoff_max_duration: str | float | None = None,
    ) -> PipelineTask:
        if not isinstance(num_retries, int) or num_retries < 0:
            raise InvalidArgument("num_retries must be an int >= 0", field=f"{self.name}.retry")
        self._options.update(
            num_retries=num_retries,
            backoff_duration=parse_duration(backoff_duration, 0.0),
            backoff_factor=2.0 if backoff_factor is None else float(backoff_factor),
            backoff_max_duration=parse_duration(backoff_max_duration, 3600.0),
        )
        return self

    def set_timeout(self, seconds: str | float) -> PipelineTask:
        """Kill the step after ``seconds`` (a number or a duration like ``"5m"``); a killed
        attempt counts as a failure, so ``set_retry`` applies to it."""
        seconds = parse_duration(seconds, 0.0)
        if seconds <= 0:
            raise InvalidArgument("timeout must be > 0 seconds", field=f"{self.name}.timeout")
        self._options["timeout"] = float(seconds)
        return self

    def _constant(self, value: Any, setting: str) -> Any:
        """A limit Shipyard enforces must be known when the pipeline is defined."""
        if isinstance(value, Channel):
            raise InvalidArgument(
                f"task {self.name!r}: {setting} takes a constant; Shipyard does not set an "
                "enforced limit from a pipeline value",
                field=f"{self.name}.{setting}",
            )
        return value

    def _hint(self, key: str, value: Any, parse: Any = None) -> PipelineTask:
        """Record a scheduling hint; one from a pipeline value (as Kubeflow allows) is kept
        as where it comes from, and the task waits for its producer."""
        if isinstance(value, Channel):
            source = value.source()
            self._hints[key] = {"from": source.model_dump(mode="json", exclude_defaults=True)}
            if source.task and source.task not in self.depends_on:
                self.depends_on.append(source.task)
        else:
            self._hints[key] = parse(value) if parse is not None else value
        return self

    def set_cpu_limit(self, cpu: str) -> PipelineTask:
        self._options["cpu_limit"] = parse_cpu(self._constant(cpu, "set_cpu_limit"))
        return self

    def set_memory_limit(self, memory: str) -> PipelineTask:
        self._options["memory_limit"] = parse_memory(self._constant(memory, "set_memory_limit"))
        return self

    def set_cpu_request(self, cpu: str) -> PipelineTask:
        return self._hint("cpu_request", cpu, parse_cpu)

    def set_memory_request(self, memory: str) -> PipelineTask:
        return self._hint("memory_request", memory, parse_memory)

    def set_accelerator_type(self, accelerator: str) -> PipelineTask:
        return self._hint("accelerator_type", accelerator)

    def set_accelerator_limit(self, limit: int | str) -> PipelineTask:
        return self._hint("accelerator_limit", limit, int)

    set_gpu_limit = set_accelerator_limit

    def set_container_image(self, image: str) -> PipelineTask:
        self._hints["container_image"] = image
        return self

    def set_display_name(self, name: str) -> PipelineTask:
        self._options["display_name"] = str(name)
        return self

    def set_env_variable(self, name: str, value: str) -> PipelineTask:
        self._env[str(name)] = str(value)
        return self

    def ignore_upstream_failure(self) -> PipelineTask:
        """Run once the upstream tasks have ended, even if they failed; an input whose
        producer made no output gets its default, so every input fed by another task must
        have one (as on Kubeflow)."""
        for name, source in self.inputs.items():
            definition = self.component_spec.inputs[name]
            upstream = source_tasks(source)
            if upstream and not definition.optional:
                raise InvalidArgument(
                    f"task {self.name!r}: ignore_upstream_failure() needs a default for every "
                    f"input fed by an upstream task, in case it produces nothing; input "
                    f"{name!r} reads task {upstream[0]!r} and has none",
                    field=f"{self.name}.{name}",
                )
        self._options["ignore_upstream_failure"] = True
        return self

    def options(self) -> TaskOptions:
        return TaskOptions(**self._options, env=dict(self._env), hints=dict(self._hints))

    @property
    def task_names(self) -> list[str]:
        return [self.name]

    def to_spec(self) -> TaskSpec:
        return TaskSpec(
            name=self.name,
            component=self.component_key,
            inputs=dict(self.inputs),
            depends_on=list(self.depends_on),
            conditions=list(self.conditions),
            loops=list(self.loops),
            exit_for=list(self.exit_for),
            options=self.options(),
        )

    def __repr__(self) -> str:
        return f"PipelineTask({self.name!r})"
