"""What every protocol module shares: the answer the fast layer sends, the JSON body read
(with the field that holds what orjson refuses), and the 200 answer with the version that
answered."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidArgument
from shipyard.serving import wire
from shipyard.serving.models import Prediction


@dataclass
class Answer:
    status: int
    body: bytes
    media_type: str = "application/json"
    headers: list[tuple[bytes, bytes]] | None = None
    prediction: Prediction | None = None
    instances: int = 0
    rows: list[Any] | None = None


def json_body(raw: bytes) -> Any:
    if not raw:
        raise InvalidArgument("the request body is empty: send a JSON object", field="body")
    try:
        return wire.loads(raw)
    except ValueError as exc:
        error = exc
    # The standard library reads what orjson refuses: NaN, Infinity and integers past 64
    # bits. Name the part of the body that holds them.
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidArgument(f"the request body is not valid JSON: {str(error)[:200]}",
                              field="body") from None
    part = next((key for key in _DATA_KEYS if isinstance(body, dict) and key in body), "body")
    raise InvalidArgument(f"{part} holds NaN, Infinity or an integer beyond 64 bits, which "
                          "this server does not take: send null for a missing value",
                          field=part)


_DATA_KEYS = ("instances", "inputs", "dataframe_split", "dataframe_records")


def answer(body: dict[str, Any], prediction: Prediction, rows: list[Any]) -> Answer:
    headers = [(b"x-deployed-model-id", prediction.deployed_model_id.encode()),
               (b"x-model-version", str(prediction.model_version).encode())]
    return Answer(200, wire.dumps(body), headers=headers, prediction=prediction,
                  instances=len(prediction.predictions), rows=rows)


def names(signature: dict[str, Any] | None) -> list[str] | None:
    """The signature's feature names, kept per signature (a pool keeps its signature for
    its life; the request log asks on every logged request)."""
    if signature is None:
        return None
    found = _NAMES.get(id(signature))
    if found is not None and found[0] is signature:
        return found[1]
    from shipyard.serving.instances import signature_names

    listed = signature_names(signature)
    if len(_NAMES) >= 1_000:
        _NAMES.clear()
    _NAMES[id(signature)] = (signature, listed)  # holding it: its id is not reused meanwhile
    return listed


_NAMES: dict[int, tuple[dict[str, Any], list[str] | None]] = {}
