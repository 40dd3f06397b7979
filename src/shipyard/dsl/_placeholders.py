"""Kubeflow's run-time placeholders: a task argument that is exactly one of these strings
receives, when the task runs, what the placeholder names.

===============================================  ==========================================
placeholder                                      value in Shipyard
===============================================  ==========================================
``PIPELINE_JOB_NAME_PLACEHOLDER``                ``<pipeline name>-<run id>``
``PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER``       ``<pipeline name>-<run id>``
``PIPELINE_JOB_ID_PLACEHOLDER``                  the run id
``PIPELINE_TASK_NAME_PLACEHOLDER``               the task's name (``train-model``)
``PIPELINE_TASK_ID_PLACEHOLDER``                 the task's execution id (lineage)
``PIPELINE_ROOT_PLACEHOLDER``                    the pipeline's ``pipeline_root``, or the
                                                 artifact store's location
``PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER``     when the run was created (RFC 3339, UTC)
``PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER``   the same (Kubeflow: the scheduled time)
===============================================  ==========================================
"""

from __future__ import annotations

PIPELINE_JOB_NAME_PLACEHOLDER = "{{$.pipeline_job_name}}"
PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER = "{{$.pipeline_job_resource_name}}"
PIPELINE_JOB_ID_PLACEHOLDER = "{{$.pipeline_job_uuid}}"
PIPELINE_TASK_NAME_PLACEHOLDER = "{{$.pipeline_task_name}}"
PIPELINE_TASK_ID_PLACEHOLDER = "{{$.pipeline_task_uuid}}"
PIPELINE_ROOT_PLACEHOLDER = "{{$.pipeline_root}}"
PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER = "{{$.pipeline_job_create_time_utc}}"
PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER = "{{$.pipeline_job_schedule_time_utc}}"

PLACEHOLDERS = frozenset(
    {
        PIPELINE_JOB_NAME_PLACEHOLDER,
        PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER,
        PIPELINE_JOB_ID_PLACEHOLDER,
        PIPELINE_TASK_NAME_PLACEHOLDER,
        PIPELINE_TASK_ID_PLACEHOLDER,
        PIPELINE_ROOT_PLACEHOLDER,
        PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER,
        PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER,
    }
)

__all__ = [
    "PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER",
    "PIPELINE_JOB_ID_PLACEHOLDER",
    "PIPELINE_JOB_NAME_PLACEHOLDER",
    "PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER",
    "PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER",
    "PIPELINE_ROOT_PLACEHOLDER",
    "PIPELINE_TASK_ID_PLACEHOLDER",
    "PIPELINE_TASK_NAME_PLACEHOLDER",
]
