"""Pipeline runs: /api/v1/projects/{project}/pipelines/..."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/projects/{project}/pipelines", tags=["pipelines"])
