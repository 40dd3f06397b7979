"""The wire protocols of the data plane: request bodies to instances, answers to bodies.

Store-free and server-free (the server's ``api.dataplane`` routes call these): each
``parse_*`` takes the decoded JSON body (and the model's feature names, when the protocol
needs them) and returns the instances to predict as rows, arrays in signature order or
objects keyed by feature, as ``Supervisor.predict`` takes them; each ``*_answer`` builds
the protocol's response from a ``Prediction``. Bad input is ``InvalidArgument`` naming the
field, as everywhere.

- Vertex AI ``:predict``: ``{"instances": [...], "parameters": {...}}`` answering
  ``{"predictions", "deployedModelId", "model", "modelVersionId"}``.
- KServe V1 (TF Serving's REST shape): ``{"instances": [...]}`` answering
  ``{"predictions": [...]}`` plus the model and version that answered.
- Open Inference Protocol (KServe V2): ``{"inputs": [tensor, ...]}``, either one 2-D tensor
  ``[rows, features]`` with the features in signature order, or one tensor per feature
  named after it (``[rows]`` or ``[rows, 1]``); data as nested or flat (row-major) JSON
  lists, or as the binary tensor extension's raw little-endian bytes after the JSON header;
  the answer in JSON, or in that extension's form when the request asks for it
  (``binary_data_output``, an output's ``binary_data``: ``oip_binary``).
- MLflow scoring: ``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shipyard.errors import InvalidArgument
from shipyard.serving import wire
from shipyard.serving.instances import MAX_INSTANCES
from shipyard.serving.models import Prediction

# OIP datatypes and the NumPy types their binary form has (little-endian).
OIP_DTYPES: dict[str, str] = {
    "BOOL": "|b1", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}
MAX_TENSORS = 1_000
MAX_NAME = 256


def _object(body: object, field: str = "body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidArgument("the request body must be a JSON object", field=field)
    return body


def _rows(value: object, field: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise InvalidArgument(f"{field} must be a non-empty list of rows", field=field)
    if len(value) > MAX_INSTANCES:
        raise InvalidArgument(f"{len(value)} instances in one request; the limit is "
                              f"{MAX_INSTANCES}", field=field)
    kinds = set(map(type, value))  # one C-level pass: rows are arrays or objects
    bad = None
    if not kinds <= {list, dict} or (list in kinds and not all(value)):
        bad = next((i for i, row in enumerate(value) if not isinstance(row, list | dict)
                    or (not row and isinstance(row, list))), None)
    if bad is not None:
        raise InvalidArgument(f"{field}[{bad}] must be an object keyed by feature or a "
                              "non-empty array of values in signature order",
                              field=f"{field}[{bad}]")
    return value


def _only(body: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for key in body:
        if key not in allowed:
            raise InvalidArgument(f"unknown field {str(key)[:64]!r}: this route takes "
                                  f"{list(allowed)}", field=str(key)[:128])


# -- Vertex AI and KServe V1 ---------------------------------------------------------------

def parse_vertex(body: object) -> list[Any]:
    """Vertex ``:predict`` and KServe V1: ``instances`` (and ``parameters``, unused)."""
    request = _object(body)
    _only(request, ("instances", "parameters"))
    if "instances" not in request:
        raise InvalidArgument("instances is required: a list of rows", field="instances")
    parameters = request.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidArgument("parameters must be an object", field="parameters")
    return _rows(request["instances"], "instances")


def vertex_answer(answer: Prediction) -> dict[str, Any]:
    return {"predictions": answer.predictions, "deployedModelId": answer.deployed_model_id,
            "model": answer.model, "modelVersionId": str(answer.model_version)}


def kserve_v1_answer(answer: Prediction, endpoint: str) -> dict[str, Any]:
    return {"predictions": answer.predictions, "model_name": endpoint,
            "model_version": str(answer.model_version),
            "deployed_model_id": answer.deployed_model_id}


# -- MLflow scoring ----------------------------------------------------------------------------

MLFLOW_SHAPES = ("dataframe_split", "dataframe_records", "instances", "inputs")


def parse_mlflow(body: object, names: Sequence[str] | None) -> list[Any]:
    """MLflow's ``/invocations`` shapes, as rows (objects, or arrays in signature order)."""
    request = _object(body)
    shapes = [key for key in MLFLOW_SHAPES if key in request]
    if len(shapes) != 1:
        raise InvalidArgument(f"send exactly one of {list(MLFLOW_SHAPES)}", field="body")
    _only(request, (shapes[0], "params"))
    if "params" in request and not isinstance(request["params"], dict):
        raise InvalidArgument("params must be an object", field="params")
    shape, value = shapes[0], request[shapes[0]]
    if shape == "dataframe_split":
        split = _object(value, "dataframe_split")
        _only(split, ("columns", "data", "index"))
        data = _rows(split.get("data"), "dataframe_split.data")
        columns = split.get("columns")
        if columns is None:
            if "columns" in split:
                raise InvalidArgument("dataframe_split.columns must be a list of names",
                                      field="dataframe_split.columns")
            bad = next((i for i, row in enumerate(data) if not isinstance(row, list)), None)
            if bad is not None:
                raise InvalidArgument(f"dataframe_split.data[{bad}] must be a list of values "
                                      "in signature order", field=f"dataframe_split.data[{bad}]")
            return data
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InvalidArgument("dataframe_split.columns must be a list of names",
                                  field="dataframe_split.columns")
        bad = next((i for i, row in enumerate(data)
                    if not isinstance(row, list) or len(row) != len(columns)), None)
        if bad is not None:
            raise InvalidArgument(f"dataframe_split.data[{bad}] must be a list of "
                                  f"{len(columns)} values, one per column",
                                  field=f"dataframe_split.data[{bad}]")
        if names is not None and columns == list(names):
            return data  # already arrays in signature order
        return [dict(zip(columns, row, strict=True)) for row in data]
    if shape == "dataframe_records":
        return _rows(value, "dataframe_records")
    if shape == "inputs" and isinstance(value, dict):
        return columns_to_rows(value, names, "inputs")
    return _rows(value, shape)


def columns_to_rows(columns: Mapping[str, Any], names: Sequence[str] | None, field: str
                    ) -> list[Any]:
    """``{feature: [values]}`` as rows in signature order (arrays)."""
    if not columns:
        raise InvalidArgument(f"{field} must name at least one feature", field=field)
    order = list(names) if names is not None else list(columns)
    missing = [name for name in order if name not in columns]
    if missing:
        raise InvalidArgument(f"{field} lacks feature {missing[0]!r}",
                              field=f"{field}.{missing[0]}")
    unknown = [key for key in columns if key not in set(order)]
    if unknown:
        raise InvalidArgument(f"{field} has feature {str(unknown[0])[:128]!r}, which the model "
                              f"does not take: its features are {order}",
                              field=f"{field}.{str(unknown[0])[:128]}")
    lengths = set()
    for name in order:
        values = columns[name]
        if not isinstance(values, list):
            raise InvalidArgument(f"{field}.{name} must be a list of values",
                                  field=f"{field}.{name}")
        lengths.add(len(values))
    if len(lengths) != 1:
        raise InvalidArgument(f"the features of {field} must have as many values each, got "
                              f"lengths {sorted(lengths)}", field=field)
    count = lengths.pop()
    if count == 0:
        raise InvalidArgument(f"{field} holds no rows", field=field)
    if count > MAX_INSTANCES:
        raise InvalidArgument(f"{count} rows in one request; the limit is {MAX_INSTANCES}",
                       field=field)
    if names is None:  # no signature: objects keyed by feature
        return [dict(zip(order, row, strict=True))
                for row in zip(*(columns[n] for n in order), strict=True)]
    return [list(row) for row in zip(*(columns[n] for n in order), strict=True)]


# -- Open Inference Protocol (KServe V2) ---------------------------------------------------

def split_binary(raw: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary tensor data of an OIP body
    (``Inference-Header-Content-Length``); all JSON without that header."""
    if header_length is None:
        return raw, b""
    if not header_length.isdigit() or int(header_length) > len(raw):
        raise InvalidArgument("Inference-Header-Content-Length must be the length of the "
                              "JSON header within the body",
                              field="inference-header-content-length")
    size = int(header_length)
    return raw[:size], raw[size:]


def parse_oip(body: object, binary: bytes, names: Sequence[str] | None
              ) -> tuple[list[Any], dict[str, Any]]:
    """An OIP inference request as rows, and what the answer must echo (``id``, the
    requested output's name and whether it wants binary data)."""
    request = _object(body)
    _only(request, ("id", "parameters", "inputs", "outputs"))
    echo: dict[str, Any] = {"output": "predict"}
    # The binary tensor extension: the request's binary_data_output asks for every output
    # in binary; an output's own binary_data overrides it (tritonclient sends the first
    # when it names no outputs).
    parameters = request.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidArgument("parameters must be an object", field="parameters")
    wanted = (parameters or {}).get("binary_data_output", False)
    if not isinstance(wanted, bool):
        raise InvalidArgument("parameters.binary_data_output must be true or false",
                              field="parameters.binary_data_output")
    echo["binary"] = wanted
    request_id = request.get("id")
    if request_id is not None:
        if not isinstance(request_id, str) or len(request_id) > MAX_NAME:
            raise InvalidArgument(f"id must be a string of at most {MAX_NAME} characters",
                                  field="id")
        echo["id"] = request_id
    outputs = request.get("outputs")
    if outputs is not None:
        if not isinstance(outputs, list) or len(outputs) > 1 or not all(
                isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs):
            raise InvalidArgument("outputs must list at most one output by name",
                                  field="outputs")
        if outputs:
            echo["output"] = outputs[0]["name"][:MAX_NAME]
            params = outputs[0].get("parameters") or {}
            if not isinstance(params, dict) or not isinstance(
                    params.get("binary_data", wanted), bool):
                raise InvalidArgument("outputs[0].parameters.binary_data must be true or "
                                      "false", field="outputs[0].parameters.binary_data")
            echo["binary"] = params.get("binary_data", wanted)
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidArgument("inputs must be a non-empty list of tensors", field="inputs")
    if len(inputs) > MAX_TENSORS:
        raise InvalidArgument(f"{len(inputs)} input tensors; the limit is {MAX_TENSORS}",
                       field="inputs")
    offset = 0
    tensors: list[tuple[str, list[int], np.ndarray | list[Any]]] = []
    for i, tensor in enumerate(inputs):
        name, shape, data, offset = _tensor(tensor, i, binary, offset)
        tensors.append((name, shape, data))
    if offset != len(binary):
        raise InvalidArgument(f"the binary data holds {len(binary)} bytes; the inputs "
                              f"declare {offset}", field="inputs")
    if len(tensors) == 1 and len(tensors[0][1]) == 2:
        name, shape, data = tensors[0]
        if not (shape[1] == 1 and names is not None and name in names):
            return _matrix_rows(data, shape, names, i=0), echo
    columns: dict[str, Any] = {}
    for i, (name, shape, data) in enumerate(tensors):
        if len(shape) == 2 and shape[1] == 1:
            shape = [shape[0]]
        if len(shape) != 1:
            raise InvalidArgument(
                f"inputs[{i}] ({name!r}) has shape {shape}: send one [rows, features] "
                "tensor, or one [rows] tensor per feature named after it",
                field=f"inputs[{i}].shape")
        columns[name] = _flat(data)
    return columns_to_rows(columns, names, "inputs"), echo


def _tensor(tensor: object, i: int, binary: bytes, offset: int
            ) -> tuple[str, list[int], np.ndarray | list[Any], int]:
    where = f"inputs[{i}]"
    if not isinstance(tensor, dict):
        raise InvalidArgument(f"{where} must be an object", field=where)
    name, shape, datatype = tensor.get("name"), tensor.get("shape"), tensor.get("datatype")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        raise InvalidArgument(f"{where}.name must be a string", field=f"{where}.name")
    if not isinstance(shape, list) or not 1 <= len(shape) <= 2 or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 10**9
            for d in shape):
        raise InvalidArgument(f"{where}.shape must be a list of one or two sizes",
                              field=f"{where}.shape")
    if not isinstance(datatype, str):
        raise InvalidArgument(f"{where}.datatype must be a string", field=f"{where}.datatype")
    count = math.prod(shape)
    if count > MAX_INSTANCES * 10_000:
        raise InvalidArgument(f"{where} holds {count} values", field=f"{where}.shape")
    params = tensor.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is not None:
        dtype = OIP_DTYPES.get(datatype)
        if dtype is None:
            raise InvalidArgument(f"{where}: binary data of type {datatype[:16]!r} is not "
                                  f"supported; use one of {sorted(OIP_DTYPES)}",
                                  field=f"{where}.datatype")
        if not isinstance(size, int) or size != count * np.dtype(dtype).itemsize or \
                offset + size > len(binary):
            raise InvalidArgument(f"{where}.parameters.binary_data_size does not match its "
                                  "shape and datatype, or runs past the body",
                                  field=f"{where}.parameters.binary_data_size")
        values = np.frombuffer(binary, dtype=dtype, count=count, offset=offset)
        return name, shape, values, offset + size
    data = tensor.get("data")
    if not isinstance(data, list):
        raise InvalidArgument(f"{where}.data must be a list", field=f"{where}.data")
    flat = _flatten(data, where)
    if len(flat) != count:
        raise InvalidArgument(f"{where} has {len(flat)} values; its shape {shape} needs "
                              f"{count}", field=f"{where}.data")
    return name, shape, flat, offset


def _flatten(data: list[Any], where: str) -> list[Any]:
    if not data or not isinstance(data[0], list):
        return data
    out: list[Any] = []
    for row in data:
        if not isinstance(row, list):
            raise InvalidArgument(f"{where}.data must be flat or nested lists",
                                  field=f"{where}.data")
        out.extend(_flatten(row, where))
    return out


def _flat(data: np.ndarray | list[Any]) -> list[Any]:
    return data.tolist() if isinstance(data, np.ndarray) else data


def _matrix_rows(data: np.ndarray | list[Any], shape: list[int],
                 names: Sequence[str] | None, i: int) -> list[Any]:
    rows, width = shape
    if rows == 0:
        raise InvalidArgument(f"inputs[{i}] holds no rows", field=f"inputs[{i}].shape")
    if rows > MAX_INSTANCES:
        raise InvalidArgument(f"{rows} rows in one request; the limit is {MAX_INSTANCES}",
                       field=f"inputs[{i}].shape")
    if names is not None and width != len(names):
        raise InvalidArgument(f"inputs[{i}] has {width} features per row; the model takes "
                              f"{len(names)}, in signature order {list(names)}",
                              field=f"inputs[{i}].shape")
    values = _flat(data)
    return [values[r * width:(r + 1) * width] for r in range(rows)]


def oip_answer(answer: Prediction, endpoint: str, echo: Mapping[str, Any]) -> dict[str, Any]:
    """The OIP response: one output tensor of the predictions (row-major, flat)."""
    predictions = answer.predictions
    array = np.asarray(predictions, dtype=object)
    shape = list(array.shape) if array.ndim else [len(predictions)]
    flat = array.ravel().tolist()
    present = [v for v in flat if v is not None]
    if all(isinstance(v, bool) for v in present) and present:
        datatype = "BOOL"
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in present) and present:
        datatype = "INT64"
    elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        datatype = "FP64"
    else:
        datatype = "BYTES"
        flat = [v if isinstance(v, str) else str(v) for v in flat]
    out: dict[str, Any] = {"model_name": endpoint, "model_version": str(answer.model_version),
                           "outputs": [{"name": echo.get("output", "predict"),
                                        "datatype": datatype, "shape": shape, "data": flat}]}
    if "id" in echo:
        out["id"] = echo["id"]
    return out


_BINARY_TYPES = {"FP64": "<f8", "INT64": "<i8", "BOOL": "|b1"}


def oip_binary(answer: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """An OIP response (``oip_answer``) in the binary tensor extension's form: the JSON
    header, each output's ``data`` replaced by ``parameters.binary_data_size``, and the
    outputs' raw bytes after it (little-endian; BYTES elements each a 4-byte little-endian
    length then the bytes, as Triton sends them). ``None`` predictions have no binary form
    in a numeric tensor: such an output stays JSON."""
    header = dict(answer)
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for output in answer["outputs"]:
        data = output["data"]
        datatype = output["datatype"]
        if datatype == "BYTES":
            encoded = [str(v).encode() for v in data]
            raw = b"".join(len(e).to_bytes(4, "little") + e for e in encoded)
        elif datatype in _BINARY_TYPES and all(v is not None for v in data):
            raw = np.asarray(data, dtype=_BINARY_TYPES[datatype]).tobytes()
        else:
            outputs.append(output)
            continue
        chunks.append(raw)
        outputs.append({k: v for k, v in output.items() if k != "data"}
                       | {"parameters": {"binary_data_size": len(raw)}})
    header["outputs"] = outputs
    return wire.dumps(header), b"".join(chunks)


def oip_model_metadata(endpoint: str, versions: Sequence[int],
                       signature: Mapping[str, Any] | None) -> dict[str, Any]:
    """``GET /v2/models/{endpoint}``: the versions served and the inputs the model takes,
    one tensor per feature (a 2-D tensor of all of them, in this order, works too)."""
    kinds = {"integer": "INT64", "float": "FP64", "bool": "BOOL", "string": "BYTES",
             "categorical": "BYTES", "datetime": "BYTES"}
    columns = (signature or {}).get("columns") or []
    inputs = [{"name": str(c.get("name")), "datatype": kinds.get(str(c.get("kind")), "BYTES"),
               "shape": [-1]} for c in columns if isinstance(c, Mapping)]
    return {"name": endpoint, "versions": [str(v) for v in versions], "platform": "shipyard",
            "inputs": inputs,
            "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1]}]}
