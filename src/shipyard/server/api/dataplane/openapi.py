"""The prediction routes as FastAPI routes, so they are in ``/openapi.json`` (with the
request bodies they take and their path parameters' bounds), in the policy test and in the
REST reference. Requests reach them only when the fast layer is not installed; they answer
through it all the same (``fastpath.handle``)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shipyard.server.api.dataplane.fastpath import handle
from shipyard.server.api.dataplane.paths import (
    EXPLAIN,
    EXPLAIN_GOOGLE,
    KSERVE_V1,
    MLFLOW,
    OIP_INFER,
    OIP_VERSION_INFER,
    PATH_SCHEMAS,
    PROTOCOLS,
    RAW,
    RAW_GOOGLE,
)
from shipyard.server.auth import PROBLEM_RESPONSES
from shipyard.serving import protocols
from shipyard.serving.instances import MAX_INSTANCES

router = APIRouter(tags=["prediction"], responses=PROBLEM_RESPONSES)

_ROWS = {"type": "array", "minItems": 1, "maxItems": MAX_INSTANCES,
         "items": {"anyOf": [{"type": "array", "minItems": 1}, {"type": "object"}]}}
_VERTEX_BODY: dict[str, Any] = {
    "type": "object", "required": ["instances"], "additionalProperties": False,
    "properties": {"instances": _ROWS,
                   "parameters": {"anyOf": [{"type": "object"}, {"type": "null"}]}}}
_PATHS = {"type": "object", "additionalProperties": False, "properties": {
    "pathCount": {"type": "integer", "minimum": 1, "maximum": 50}}}
_OVERRIDE = {"type": "object", "required": ["parameters"], "additionalProperties": False,
             "properties": {"parameters": {
                 "type": "object", "minProperties": 1, "maxProperties": 1,
                 "additionalProperties": False, "properties": {
                     "sampledShapleyAttribution": _PATHS, "autoAttribution": _PATHS,
                     "treeShapAttribution": {"type": "object", "maxProperties": 0}}}}}
_EXPLAIN_BODY: dict[str, Any] = {**_VERTEX_BODY, "properties": {
    **_VERTEX_BODY["properties"],
    "explanationSpecOverride": {"anyOf": [_OVERRIDE, {"type": "null"}]}}}


def _one_key(key: str, schema: dict[str, Any], *others: str) -> dict[str, Any]:
    return {"type": "object", "required": [key], "additionalProperties": False,
            "properties": {key: schema, **{o: {"type": "object"} for o in others}}}


_MLFLOW_BODY: dict[str, Any] = {"oneOf": [
    _one_key("dataframe_split", {"type": "object", "required": ["data"],
                                 "properties": {"columns": {"type": "array", "items": {
                                     "type": "string", "maxLength": 256}}, "data": _ROWS}},
             "params"),
    _one_key("dataframe_records", _ROWS, "params"),
    _one_key("instances", _ROWS, "params"),
    _one_key("inputs", {"anyOf": [_ROWS, {"type": "object", "minProperties": 1}]}, "params"),
]}
_RAW_BODY: dict[str, Any] = {"oneOf": [_VERTEX_BODY, *_MLFLOW_BODY["oneOf"][:2],
                                       _MLFLOW_BODY["oneOf"][3]]}
_TENSOR = {"type": "object", "required": ["name", "shape", "datatype"], "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": protocols.MAX_NAME},
    "shape": {"type": "array", "minItems": 1, "maxItems": 2,
              "items": {"type": "integer", "minimum": 0, "maximum": 10**9}},
    "datatype": {"type": "string", "maxLength": 16},
    "data": {"type": "array"}, "parameters": {"type": "object"}}}
_OIP_BODY: dict[str, Any] = {
    "type": "object", "required": ["inputs"], "additionalProperties": False, "properties": {
        "id": {"type": "string", "maxLength": protocols.MAX_NAME},
        "parameters": {"type": "object"},
        "inputs": {"type": "array", "minItems": 1, "maxItems": protocols.MAX_TENSORS,
                   "items": _TENSOR},
        "outputs": {"type": "array", "maxItems": 1, "items": {
            "type": "object", "required": ["name"], "properties": {
                "name": {"type": "string", "maxLength": protocols.MAX_NAME},
                "parameters": {"type": "object"}}}}}}
_BODIES = {"vertex": _VERTEX_BODY, "kserve": _VERTEX_BODY, "explain": _EXPLAIN_BODY,
           "raw": _RAW_BODY, "mlflow": _MLFLOW_BODY, "oip": _OIP_BODY}


async def _through(request: Request, kind: str, template: str) -> Response:
    """Answer a request that reached FastAPI (the layer above was not installed)."""
    protocol = next(p for p in PROTOCOLS if p.template == template and p.kind == kind)
    answer = await handle(request.scope, request.receive, protocol,
                          dict(request.path_params))
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type,
                    headers={k.decode(): v.decode() for k, v in answer.headers or []})



def _declare(template: str, kind: str, summary: str) -> None:
    async def route(request: Request) -> Response:
        return await _through(request, kind, template)

    route.__name__ = f"{kind}_{template.strip('/').replace('/', '_').replace('{', '')}"
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": PATH_SCHEMAS[name]}
                  for name in re.findall(r"\{(\w+)\}", template)]
    body = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": _BODIES[kind]}}}}
    # OIP answers in the binary tensor extension's form when asked (``oip.infer``).
    binary: dict[int | str, dict[str, Any]] | None = None
    if kind == "oip":
        binary = {200: {"description": "Successful Response", "content": {
            "application/json": {}, "application/octet-stream": {}}}}
    router.add_api_route(template, route, methods=["POST"], summary=summary,
                         responses=binary, openapi_extra={**body, "parameters": parameters})


_declare(EXPLAIN, "explain", "Vertex explain: predictions and feature attributions "
         "(explanationSpecOverride picks the method and path count)")
_declare(EXPLAIN_GOOGLE, "explain", "Vertex explain on Vertex's own path (any location)")
_declare(RAW, "raw", "Vertex rawPredict: any accepted request shape, predictions back")
_declare(RAW_GOOGLE, "raw", "Vertex rawPredict on Vertex's own path (any location)")
_declare(KSERVE_V1, "kserve", "KServe V1 predict (the endpoint's project: predict)")
_declare(OIP_INFER, "oip", "OIP (V2) inference (the endpoint's project: predict)")
_declare(OIP_VERSION_INFER, "oip", "OIP (V2) inference of a pinned version (the endpoint's "
         "project: predict)")
_declare(MLFLOW, "mlflow", "MLflow scoring: dataframe_split, dataframe_records, instances "
         "or inputs (the endpoint's project: predict)")
