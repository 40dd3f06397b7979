"""The model registry: /api/v1/projects/{project}/models/...

A new version arrives as a multipart upload: ``metadata`` (JSON) and ``model`` (a tar of the
directory the client packaged with ``registry.flavors.save``). The server unpacks it through
the artifact store's safe extraction and registers the directory; it never loads the model.
A directory whose manifest is malformed or does not match its files is the client's bad
input here (400 naming ``model``), not damaged data of the server's own.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard import registry
from shipyard.artifacts import safe_extract
from shipyard.artifacts.export import tree_as_tar
from shipyard.context import RequestContext
from shipyard.errors import DataCorruption, InvalidArgument
from shipyard.registry.flavors import MANIFEST_NAME
from shipyard.registry.flavors._manifest import MAX_MANIFEST_BYTES
from shipyard.registry.models import AliasChange, ModelVersion, PromotionDecision, RegisteredModel
from shipyard.registry.service import MAX_LABELS
from shipyard.server.api import params
from shipyard.server.api.serving import Replicas
from shipyard.server.auth import PROBLEM_RESPONSES
from shipyard.server.state import ServerState, request_context, server_state

router = APIRouter(prefix="/api/v1/projects/{project}/models", tags=["registry"],
                   dependencies=[Depends(params.project_parameter)], responses=PROBLEM_RESPONSES)

State = Annotated[ServerState, Depends(server_state)]
Ctx = Annotated[RequestContext, Depends(request_context)]
Filter = Annotated[str | None, Query(max_length=params.FILTER_MAX)]
Version = Annotated[int, Field(ge=1)]
# Bounds of the lists a new version's metadata can grow (labels are bounded by the service).
MAX_METRICS = 1000
MAX_ALIASES = 64


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewVersion(Strict):
    semver: str | None = Field(default=None, max_length=64)
    description: str = Field(default="", max_length=20_000)
    labels: dict[str, str] | None = Field(default=None, max_length=MAX_LABELS)
    metrics: dict[str, float] | None = Field(default=None, max_length=MAX_METRICS)
    aliases: list[Annotated[str, Field(max_length=128)]] | None = Field(
        default=None, max_length=MAX_ALIASES)
    run_id: str | None = Field(default=None, max_length=32)
    trusted_digest: str | None = Field(default=None, max_length=64)
    execution_id: str | None = Field(default=None, max_length=32)


class SetStatus(Strict):
    status: str = Field(max_length=16, pattern="^(registered|staged|retired)$")
    reason: str = Field(default="", max_length=2000)


class Promote(Strict):
    metric: str = Field(default="rmse", max_length=250)
    mode: Literal["min", "max"] = "min"
    alias: str = Field(default="production", max_length=128)
    min_delta: float = 0.0
    bump: Literal["major", "minor", "patch"] = "patch"


class MoveAlias(Strict):
    version: int = Field(ge=1, le=2**31 - 1)
    reason: str = Field(default="", max_length=2000)


class Reason(Strict):
    reason: str = Field(default="", max_length=2000)


@router.get("", response_model=list[RegisteredModel])
def list_models(state: State, ctx: Ctx, filter: Filter = None) -> list[RegisteredModel]:
    return registry.list_models(state.store, ctx.project, filter,
                               deployments=state.deployments)


@router.get("/{name}", response_model=RegisteredModel)
def get_model(name: params.Name, state: State, ctx: Ctx) -> RegisteredModel:
    return registry.get_model(state.store, ctx.project, name)


@router.get("/{name}/versions", response_model=list[ModelVersion])
def list_versions(name: params.Name, state: State, ctx: Ctx, filter: Filter = None
                  ) -> list[ModelVersion]:
    return registry.list_versions(state.store, ctx.project, name, filter,
                                 deployments=state.deployments)


@router.post("/{name}/versions", response_model=ModelVersion)
def register(
    name: params.Name, state: State, ctx: Ctx,
    model: Annotated[UploadFile, File(description="tar of a packaged model directory")],
    metadata: Annotated[str, Form(max_length=100_000)] = "{}",
) -> ModelVersion:
    try:
        body = NewVersion.model_validate(json.loads(metadata))
    except RecursionError:
        raise InvalidArgument("metadata is not valid: nested too deeply",
                              field="metadata") from None
    except (ValueError, ValidationError) as exc:
        field = "metadata"
        if isinstance(exc, ValidationError) and exc.errors():
            loc = exc.errors()[0].get("loc", ())
            field = "metadata." + ".".join(str(p) for p in loc) if loc else field
        raise InvalidArgument(f"metadata is not valid: {str(exc).splitlines()[0]}",
                              field=field) from None
    with tempfile.TemporaryDirectory(prefix="shipyard-upload-") as scratch:
        archive = Path(scratch) / "model.tar"
        with open(archive, "wb") as out:
            shutil.copyfileobj(model.file, out, 1 << 20)
        model_dir = Path(scratch) / "model"
        # Not fsynced: registering stores every file durably in the artifact store next.
        safe_extract(archive, model_dir, durable=False)
        _check_manifest_file(model_dir / MANIFEST_NAME)
        try:
            return registry.register_model(
                state.store, state.artifacts, ctx, name, model_dir, semver=body.semver,
                description=body.description, labels=body.labels, metrics=body.metrics,
                aliases=body.aliases, run_id=body.run_id, trusted_digest=body.trusted_digest,
                execution_id=body.execution_id, deployments=state.deployments,
            )
        except DataCorruption as exc:
            # Registering only writes: every mismatch it finds is in the uploaded directory.
            raise _bad_upload(exc) from None


def _check_manifest_file(path: Path) -> None:
    """Refuse a manifest that is not a file, or too large to read into memory."""
    if not path.exists():
        return  # registering says what is missing
    if path.is_symlink() or not path.is_file():
        raise InvalidArgument(f"model: {MANIFEST_NAME} is not a file", field="model")
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise InvalidArgument(
            f"model: {MANIFEST_NAME} is {size} bytes; the limit is {MAX_MANIFEST_BYTES}",
            field="model",
        )


def _bad_upload(exc: DataCorruption) -> InvalidArgument:
    details = {k: v for k, v in exc.details.items() if isinstance(v, str)}
    if exc.field is not None:
        details["manifest_field"] = exc.field
    return InvalidArgument(f"model: {exc.message}", field="model", **details)


@router.get("/{name}/versions/{version}", response_model=ModelVersion)
def get_version(name: params.Name, version: params.VersionNumber, state: State, ctx: Ctx
                ) -> ModelVersion:
    return registry.get_model_version(state.store, ctx.project, name, version=version,
                                      deployments=state.deployments)


@router.get("/{name}/versions/{version}/download")
def download(name: params.Name, version: params.VersionNumber, state: State, ctx: Ctx
             ) -> StreamingResponse:
    mv = registry.get_model_version(state.store, ctx.project, name, version=version)
    reader = tree_as_tar(state.artifacts, mv.tree_digest)

    def chunks() -> Any:
        with reader:
            while chunk := reader.read(1 << 20):
                yield chunk

    return StreamingResponse(chunks(), media_type="application/x-tar", headers={
        "X-Tree-Digest": mv.tree_digest,
        "Content-Disposition": f'attachment; filename="{name}-{version}.tar"',
    })


@router.post("/{name}/versions/{version}/status", response_model=ModelVersion)
def set_status(name: params.Name, version: params.VersionNumber, body: SetStatus,
               state: State, ctx: Ctx) -> ModelVersion:
    return registry.set_status(state.store, ctx, name, version, body.status, body.reason,
                              deployments=state.deployments)


@router.post("/{name}/versions/{version}/promote", response_model=PromotionDecision)
def promote(name: params.Name, version: params.VersionNumber, body: Promote, state: State, ctx: Ctx,
            replicas: Replicas) -> PromotionDecision:
    decision = registry.promote_if_better(state.store, state.artifacts, ctx, name, version,
                                          metric=body.metric, mode=body.mode, alias=body.alias,
                                          min_delta=body.min_delta, bump=body.bump)
    replicas.refresh_now()  # deployments that follow the alias moved with it
    return decision


@router.get("/{name}/aliases/{alias}", response_model=ModelVersion)
def get_alias(name: params.Name, alias: params.Name, state: State, ctx: Ctx) -> ModelVersion:
    return registry.get_model_version(state.store, ctx.project, name, alias=alias,
                                      deployments=state.deployments)


@router.put("/{name}/aliases/{alias}", response_model=ModelVersion)
def put_alias(name: params.Name, alias: params.Name, body: MoveAlias, state: State, ctx: Ctx,
              replicas: Replicas) -> ModelVersion:
    moved = registry.set_alias(state.store, ctx, name, alias, body.version, body.reason,
                               deployments=state.deployments)
    replicas.refresh_now()  # deployments that follow the alias moved with it
    return moved


@router.delete("/{name}/aliases/{alias}", status_code=204)
def delete_alias(name: params.Name, alias: params.Name, state: State, ctx: Ctx,
                 reason: Annotated[str, Query(max_length=2000)] = "") -> None:
    registry.delete_alias(state.store, ctx, name, alias, reason)


@router.post("/{name}/aliases/{alias}/rollback", response_model=ModelVersion)
def rollback(name: params.Name, alias: params.Name, body: Reason, state: State, ctx: Ctx,
             replicas: Replicas) -> ModelVersion:
    moved = registry.rollback(state.store, ctx, name, alias, body.reason,
                              deployments=state.deployments)
    replicas.refresh_now()  # deployments that follow the alias moved with it
    return moved


@router.get("/{name}/history", response_model=list[AliasChange])
def history(name: params.Name, state: State, ctx: Ctx,
            alias: Annotated[str | None, Query(max_length=128)] = None) -> list[AliasChange]:
    return registry.alias_history(state.store, ctx.project, name, alias)
