"""What a schedule or a trigger does: typed action values (re-exported as
``shipyard.actions``).

Each action is a small frozen model with a ``type``; it is stored as JSON and checked when
the schedule or trigger is created, so a malformed one is refused then (``InvalidArgument``
naming ``action.<field>``), not when it first fires.

String values may hold templates, filled from what fired the action when it runs:
``{{ event.version }}`` (a trigger's message data, dotted for nested keys),
``{{ message.id }}``, ``{{ message.topic }}``, ``{{ schedule }}`` and ``{{ tick }}`` (a
schedule's name and tick time, ISO 8601 in UTC). A string that is one template alone takes
the value's type (``"{{ event.version }}"`` gives the number 3); inside other text the value
is written out. Fields that take numbers (a version) also take one template.

This module is values only (the HTTP client imports it); ``events.acting`` runs them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shipyard.errors import InvalidArgument

__all__ = [
    "Action", "CallFunction", "Deploy", "Promote", "Publish", "Rollback", "RunPipeline",
    "SetTraffic", "StartCanary", "Webhook", "check_action", "render",
]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
_FUNCTION = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"

Name = Annotated[str, Field(min_length=1, max_length=128, pattern=_NAME)]
TemplateText = Annotated[str, Field(min_length=1, max_length=200,
                                    pattern=r"^\s*\{\{[^{}]+\}\}\s*$")]
NameOrTemplate = Name | TemplateText
Version = Annotated[int, Field(ge=1)] | TemplateText


class _Action(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunPipeline(_Action):
    """Queue a run of a pipeline for the workers. ``spec``: the compiled pipeline (YAML
    text; the SDK compiles a ``@dsl.pipeline`` for you); without it, the spec of the
    latest run of ``pipeline`` in the project is run again. ``arguments`` may hold
    templates (``{"data": "{{ event.uri }}"}``)."""

    type: Literal["run_pipeline"] = "run_pipeline"
    pipeline: Name
    spec: str | None = Field(default=None, max_length=2_000_000)
    arguments: dict[Annotated[str, Field(max_length=128)], Any] = Field(default_factory=dict,
                                                                      max_length=200)
    enable_caching: bool = True


class Deploy(_Action):
    """Deploy a version (``version`` or ``alias``; with neither, the latest) of ``model`` to
    ``endpoint`` with ``traffic_percentage`` of its requests (a canary: 10)."""

    type: Literal["deploy"] = "deploy"
    endpoint: NameOrTemplate
    model: NameOrTemplate
    version: Version | None = None
    alias: NameOrTemplate | None = None
    traffic_percentage: Annotated[int, Field(ge=0, le=100)] | None = None


class SetTraffic(_Action):
    """Set an endpoint's whole traffic split (deployed model id -> percentage)."""

    type: Literal["set_traffic"] = "set_traffic"
    endpoint: NameOrTemplate
    traffic: dict[Annotated[str, Field(min_length=1, max_length=300)],
                  Annotated[int, Field(ge=0, le=100)]] = Field(max_length=100)


class Promote(_Action):
    """Point ``alias`` of ``model`` at ``version`` (a promotion: ``production`` -> 4)."""

    type: Literal["promote"] = "promote"
    model: NameOrTemplate
    alias: Name
    version: Version
    reason: str = Field(default="", max_length=2000)


class Rollback(_Action):
    """Move ``alias`` of ``model`` back to the version it pointed at before its last move."""

    type: Literal["rollback"] = "rollback"
    model: NameOrTemplate
    alias: Name
    reason: str = Field(default="", max_length=2000)


class StartCanary(_Action):
    """Deploy a version of ``model`` to ``endpoint`` as a canary with ``percent`` of its
    requests, judged by the workers (``serving.rollouts``): after ``after_requests`` logged
    requests it is promoted to 100 (the champions undeployed, ``promote_alias`` moved to
    it) if its p95 latency is at most ``max_latency_ratio`` times the champions', its error
    rate is not worse than theirs (a one-sided two-proportion z-test at level
    ``error_rate_alpha``, allowing ``max_error_rate_increase`` more) and, with
    ``prediction_tolerance``, its mean prediction lies within that of theirs; it is rolled
    back otherwise. The version: ``version``, else with ``version_from="event"`` the
    firing event's ``version`` (a ``model-version-registered`` trigger), else the latest.
    The candidate runs where the champions do (``runtime`` None: a champion on Ray gets a
    candidate on Ray) unless ``runtime`` says ``"local"`` or ``"ray"``. A redelivered
    event starts nothing twice."""

    type: Literal["start_canary"] = "start_canary"
    endpoint: NameOrTemplate
    model: NameOrTemplate
    version: Version | None = None
    version_from: Literal["event", "latest"] = "event"
    percent: Annotated[int, Field(ge=1, le=99, strict=True)] = 10
    after_requests: Annotated[int, Field(ge=1, le=10_000_000, strict=True)] = 100
    max_latency_ratio: Annotated[float, Field(gt=0, le=1000)] = 1.5
    prediction_tolerance: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    promote_alias: Name | None = "production"
    error_rate_alpha: Annotated[float, Field(gt=0, le=0.5, strict=True)] = 0.05
    max_error_rate_increase: Annotated[float, Field(ge=0, le=1, strict=True)] = 0.0
    runtime: Literal["local", "ray"] | None = None


class Webhook(_Action):
    """POST ``body`` (default: what fired the action) as JSON to ``url``, through the
    outbound guard: only hosts and networks the operator allowlisted
    (``SHIPYARD_OUTBOUND_ALLOWLIST``), no redirects. An answer other than 2xx fails."""

    type: Literal["webhook"] = "webhook"
    url: str = Field(min_length=1, max_length=2048, pattern=r"^https?://")
    body: Any = None
    headers: dict[Annotated[str, Field(min_length=1, max_length=128)],
                  Annotated[str, Field(max_length=2000)]] = Field(default_factory=dict,
                                                                 max_length=32)


class CallFunction(_Action):
    """Call a Python function by import path (``package.module:function``) in a child
    process, as a pipeline step runs, with one argument: what fired it (a dict). It must be
    importable where the worker runs; its return value (JSON) is kept on the firing."""

    type: Literal["call_function"] = "call_function"
    function: str = Field(min_length=3, max_length=300, pattern=_FUNCTION)
    timeout_seconds: Annotated[int, Field(ge=1, le=540)] = 300


class Publish(_Action):
    """Publish ``data`` (default: what fired the action) to ``topic``."""

    type: Literal["publish"] = "publish"
    topic: Name
    data: Any = None


Action = Annotated[RunPipeline | Deploy | SetTraffic | Promote | Rollback | Webhook
                   | CallFunction | Publish | StartCanary, Field(discriminator="type")]
_ACTION: TypeAdapter[Any] = TypeAdapter(Action)
TYPES = ("run_pipeline", "deploy", "set_traffic", "promote", "rollback", "webhook",
         "call_function", "publish", "start_canary")


def check_action(value: Any, field: str = "action") -> Any:
    """The action ``value`` (an action model or its JSON form) as a typed action, or
    ``InvalidArgument`` naming the first bad field (``action.version``)."""
    if isinstance(value, _Action):
        value = value.model_dump(mode="json")
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{field} must be an action (shipyard.actions.RunPipeline, ...) "
                              f"or its JSON form with a 'type'", field=field)
    if value.get("type") not in TYPES:
        raise InvalidArgument(f"{field}.type must be one of {', '.join(TYPES)}, got "
                              f"{str(value.get('type'))[:40]!r}", field=f"{field}.type")
    try:
        return _ACTION.validate_python(dict(value))
    except ValidationError as exc:
        errors = exc.errors()
        # An unknown field first: "topik" explains the missing "topic" that follows it.
        error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        # loc: (the union member, the field, then inner parts such as the union branch
        # tried): the field is what a caller can fix.
        where = str(error["loc"][1]) if len(error["loc"]) > 1 else "type"
        what = ("is not a field of this action" if error["type"] == "extra_forbidden"
                else error["msg"])
        raise InvalidArgument(f"{field}.{where}: {what}", field=f"{field}.{where}") from None


def render(action: Any, context: Mapping[str, Any]) -> Any:
    """``action`` with every template filled from ``context``, checked again; a template
    naming a value ``context`` lacks raises ``InvalidArgument``."""
    data = action.model_dump(mode="json")
    filled = {k: (v if k in ("type", "spec") else _fill(v, context, f"action.{k}"))
              for k, v in data.items()}
    return check_action(filled)


def _fill(value: Any, context: Mapping[str, Any], field: str) -> Any:
    if isinstance(value, str):
        alone = _TEMPLATE.fullmatch(value.strip())
        if alone:
            return _lookup(alone.group(1), context, field)
        return _TEMPLATE.sub(lambda m: _text(_lookup(m.group(1), context, field)), value)
    if isinstance(value, list):
        return [_fill(v, context, f"{field}.{i}") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _fill(v, context, f"{field}.{k}") for k, v in value.items()}
    return value


def _lookup(path: str, context: Mapping[str, Any], field: str) -> Any:
    value: Any = context
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise InvalidArgument(f"{field}: the template {{{{ {path} }}}} names nothing in "
                                  f"what fired the action (it has {sorted(context)})",
                                  field=field)
    return value


def _text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)
