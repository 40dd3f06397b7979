"""What a pipeline run looks like to callers: ``PipelineRun`` and its ``TaskInfo``s."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from shipyard.errors import InvalidArgument, TooLarge
from shipyard.validation import MAX_TAG_VALUE, check_key, check_text

RunState = Literal["QUEUED", "RUNNING", "CANCELLING", "SUCCEEDED", "FAILED", "CANCELLED"]
TaskState = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED"]
# Every value of RunState, for messages that list the valid ones.
RUN_STATES: tuple[str, ...] = get_args(RunState)
TERMINAL_RUN_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


class ArtifactOutput(BaseModel):
    """An artifact a task produced, stored content-addressed in the artifact store.

    ``layout`` says how the step left ``.path``: ``file``, ``tree`` (a folder; ``digest``
    addresses its manifest) or ``none`` (nothing written: the blob holds ``metadata``).
    """

    model_config = ConfigDict(frozen=True)

    type: str
    digest: str
    size: int = 0
    layout: Literal["file", "tree", "none"] = "file"
    uri: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    artifact_id: str | None = None


class TaskInfo(BaseModel):
    """One task of a run (one iteration, for a task inside a ``ParallelFor``: ``name[i]``).

    ``outputs`` maps output names to parameter values or ``ArtifactOutput``s; ``cached``
    means the outputs come from an earlier execution with the same cache key.
    """

    name: str
    state: TaskState
    cached: bool = False
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    execution_id: str | None = None
    cache_key: str | None = None
    log_digest: str | None = None
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None


class PipelineRun(BaseModel):
    """A pipeline run and its tasks, by task name."""

    id: str
    project: str
    pipeline_name: str
    state: RunState
    arguments: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    tasks: dict[str, TaskInfo] = Field(default_factory=dict)
    error: str | None = None
    context_id: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    claimed_by: str | None = None
    retry_of: str | None = None
    # The server principal that submitted it; None for a run started in local mode.
    principal: str | None = None
    # Where the code that started it came from: git.* and source.* tags as runs record them.
    source: dict[str, str] = Field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.state == "SUCCEEDED"


MAX_SOURCE_ENTRIES = 32


def check_source(source: object) -> dict[str, str]:
    """A run's source tags (``git.commit``, ``source.name``, ...), checked as run tags are:
    names as keys, text values; ``InvalidArgument`` or ``TooLarge`` naming ``source``."""
    if source is None:
        return {}
    if not isinstance(source, dict):
        raise InvalidArgument("source must be a mapping of tag names to text", field="source")
    if len(source) > MAX_SOURCE_ENTRIES:
        raise TooLarge(f"source has {len(source)} entries; the limit is {MAX_SOURCE_ENTRIES}",
                       field="source")
    return {check_key(key, "source.key"): check_text(value, f"source.{key}",
                                                     limit=MAX_TAG_VALUE)
            for key, value in source.items()}
