"""Kubeflow's run-time placeholders as task arguments (``dsl.PIPELINE_JOB_NAME_PLACEHOLDER``
and the others): KFP's driver replaces an argument that is exactly a placeholder with the
value it names when the task runs."""

from __future__ import annotations

import re

from shipyard import dsl
from tests.pipelines.conftest import Env, run_in


@dsl.component
def names(job: str, resource: str, job_id: str, task: str, task_id: str, root: str,
          created: str, scheduled: str, text: str) -> dict:  # fmt: skip
    return {"job": job, "resource": resource, "job_id": job_id, "task": task,
            "task_id": task_id, "root": root, "created": created, "scheduled": scheduled,
            "text": text}  # fmt: skip


@dsl.pipeline(name="placeholders", pipeline_root="/data/root")
def placeholders() -> None:
    with dsl.ParallelFor([1, 2]):
        names(
            job=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            resource=dsl.PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER,
            job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            task=dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
            task_id=dsl.PIPELINE_TASK_ID_PLACEHOLDER,
            root=dsl.PIPELINE_ROOT_PLACEHOLDER,
            created=dsl.PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER,
            scheduled=dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER,
            # Only an argument that is exactly a placeholder is replaced, as on KFP.
            text=f"run {dsl.PIPELINE_JOB_ID_PLACEHOLDER}",
        )


def test_placeholders_receive_the_run_and_task_they_name(env: Env, mode: str) -> None:
    run = run_in(mode, env, placeholders)
    first = run.tasks["names[0]"]
    seen = first.outputs["Output"]
    assert seen["job"] == seen["resource"] == f"placeholders-{run.id}"  # as KFP's tests want
    assert seen["job_id"] == run.id
    assert seen["task"] == "names"
    assert seen["task_id"] == first.execution_id
    assert seen["root"] == "/data/root"
    assert run.created_at is not None
    assert seen["created"] == run.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", seen["scheduled"])
    assert seen["text"] == "run {{$.pipeline_job_uuid}}"
    second = run.tasks["names[1]"]
    assert second.outputs["Output"]["task_id"] == second.execution_id != first.execution_id
    # A run's own values: the next run executes again rather than reusing these.
    again = run_in(mode, env, placeholders)
    assert not any(t.cached for t in again.tasks.values())
    assert again.tasks["names[0]"].outputs["Output"]["job_id"] == again.id
