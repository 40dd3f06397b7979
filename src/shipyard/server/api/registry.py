"""The model registry: /api/v1/projects/{project}/models/..."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/projects/{project}/models", tags=["registry"])
