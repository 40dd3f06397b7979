"""Running an action (``events.actions``) for a schedule tick or a trigger's message.

``perform`` fills the action's templates from what fired it, runs it through the
capability that owns the change (pipelines, serving, the registry, the bus), as the actor
who created the schedule or trigger, and returns what it made (a pipeline run id, the
version an alias now points at...). A failure raises; the caller records it and retries
or gives up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from shipyard.context import RequestContext
from shipyard.errors import FailedPrecondition, NotFound, PermissionDenied, Unavailable
from shipyard.events import actions as act
from shipyard.store import Store

__all__ = ["FUNCTIONS_ALLOWLIST", "OUTBOUND_ALLOWLIST", "CreatorCannotAct", "check_allowed",
           "check_creator", "perform"]

OUTBOUND_ALLOWLIST = "SHIPYARD_OUTBOUND_ALLOWLIST"  # hosts and networks webhooks may reach
# Modules whose functions schedules and triggers created through the server may call
# (comma-separated prefixes, such as "mycompany.hooks"); none by default.
FUNCTIONS_ALLOWLIST = "SHIPYARD_ACTION_FUNCTIONS"
_MAX_OUTPUT = 64 * 1024

# The child process of a CallFunction: reads what fired it (JSON) on stdin, calls the
# function with it and writes its JSON result as the last line of stdout.
_CHILD = """
import importlib, json, sys
module, _, name = sys.argv[1].partition(":")
function = getattr(importlib.import_module(module), name)
result = function(json.load(sys.stdin))
sys.stdout.write("\\n" + json.dumps(result, default=str) + "\\n")
"""


def check_allowed(ctx: RequestContext, action: Any) -> None:
    """Refuse, where a rule is created through the server (a token), a ``CallFunction`` of
    a module the operator did not allow: the function runs on the server's workers. In
    local mode the caller runs the worker and may call what it likes."""
    if ctx.token_id is None or not isinstance(action, act.CallFunction):
        return
    module = action.function.partition(":")[0]
    allowed = [p.strip() for p in os.environ.get(FUNCTIONS_ALLOWLIST, "").split(",")
               if p.strip()]
    if not any(module == p or module.startswith(p + ".") for p in allowed):
        raise FailedPrecondition(
            f"the server does not allow calling functions of {module!r}: the operator lists "
            f"the modules actions may call in {FUNCTIONS_ALLOWLIST}", field="action.function")


class CreatorCannotAct(PermissionDenied):
    """The rule's creator may no longer do what the rule does: it is refused at once (a
    trigger's message is dead-lettered without further attempts), not retried."""


def check_creator(store: Store, ctx: RequestContext) -> None:
    """Refuse (``CreatorCannotAct``) to act for a rule created through the server (with a
    token, ``ctx.token_id``) whose token has been revoked or has expired, whose creator is
    disabled, or who no longer may change the project (the ``editor`` role and a token
    scope allowing it, what creating the rule took). A rule created in local mode (no
    token) acts as the local user, who owns the store."""
    if ctx.token_id is None:
        return
    from sqlalchemy import select as select_

    from shipyard.security import authz
    from shipyard.security.authn import stored_scopes
    from shipyard.security.principals import Principal
    from shipyard.security.roles import Permission
    from shipyard.store.schema.security import principals, tokens
    from shipyard.store.types import utcnow

    with store.read() as conn:
        row = conn.execute(select_(
            tokens.c.scopes, tokens.c.expires_at, tokens.c.revoked_at, tokens.c.project,
            principals.c.id, principals.c.name, principals.c.kind, principals.c.is_admin,
            principals.c.disabled).join(principals, principals.c.id == tokens.c.principal_id)
            .where(tokens.c.id == ctx.token_id)).first()
    who = f"{ctx.actor!r}"
    acts = "the rule acts as its creator"
    if row is None:
        raise CreatorCannotAct(f"{acts}, {who}, and the token it was created with no longer "
                               "exists: re-create the rule with a current token")
    if row.revoked_at is not None:
        raise CreatorCannotAct(f"{acts}, {who}, and the token it was created with was revoked "
                               f"at {row.revoked_at.isoformat()}: re-create the rule with a "
                               "current token")
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise CreatorCannotAct(f"{acts}, {who}, and the token it was created with expired at "
                               f"{row.expires_at.isoformat()}: re-create the rule with a "
                               "current token")
    if row.disabled:
        raise CreatorCannotAct(f"{acts}, {who}, who is disabled: an administrator enables "
                               "them again, or someone else re-creates the rule")
    principal = Principal(id=row.id, name=row.name, kind=row.kind, is_admin=row.is_admin,
                          token_id=ctx.token_id, scopes=stored_scopes(row.scopes),
                          project=row.project)
    try:
        authz.authorize(principal, authz.role_in(store, principal, ctx.project),
                        Permission.WRITE, project=ctx.project)
    except PermissionDenied as exc:
        raise CreatorCannotAct(f"{acts}, {who}, who may no longer change project "
                               f"{ctx.project!r}: {exc.message}") from None


def perform(store: Store, artifacts: Any, settings: Any, ctx: RequestContext, action: Any,
            context: Mapping[str, Any]) -> dict[str, Any]:
    """Run ``action`` with its templates filled from ``context``, once its creator is
    checked (``check_creator``); what it made."""
    check_creator(store, ctx)
    filled = act.render(action, context)
    check_allowed(ctx, filled)
    if isinstance(filled, act.RunPipeline):
        key = context.get("idempotency_key")
        return _run_pipeline(store, artifacts, settings, ctx, filled,
                             key if isinstance(key, str) else None)
    if isinstance(filled, act.Deploy):
        from shipyard.serving import service as serving

        endpoint = serving.deploy(store, ctx, filled.endpoint, filled.model,
                                  version=None if filled.version is None else int(filled.version),
                                  alias=filled.alias,
                                  traffic_percentage=filled.traffic_percentage)
        return {"endpoint": endpoint.name,
                "traffic": {d.id: d.traffic_percentage for d in endpoint.deployments}}
    if isinstance(filled, act.SetTraffic):
        from shipyard.serving import service as serving

        endpoint = serving.set_traffic(store, ctx, filled.endpoint, filled.traffic)
        return {"endpoint": endpoint.name,
                "traffic": {d.id: d.traffic_percentage for d in endpoint.deployments}}
    if isinstance(filled, act.Promote):
        from shipyard.registry import aliases

        version = aliases.set_alias(store, ctx, filled.model, filled.alias,
                                    int(filled.version), filled.reason or "promoted by "
                                    + (ctx.client or "an action"))
        return {"model": filled.model, "alias": filled.alias, "version": version.version}
    if isinstance(filled, act.Rollback):
        from shipyard.registry import aliases

        version = aliases.rollback(store, ctx, filled.model, filled.alias,
                                   filled.reason or "rolled back by " + (ctx.client or
                                                                          "an action"))
        return {"model": filled.model, "alias": filled.alias, "version": version.version}
    if isinstance(filled, act.Webhook):
        return _webhook(filled, context)
    if isinstance(filled, act.CallFunction):
        return _call(filled, context)
    if isinstance(filled, act.StartCanary):
        return _start_canary(store, ctx, filled, context)
    if isinstance(filled, act.Publish):
        from shipyard.events import bus

        data = filled.data if filled.data is not None else dict(context)
        return {"message_id": bus.publish(store, ctx, filled.topic, data)}
    raise FailedPrecondition(f"unknown action {type(filled).__name__}", field="action")


IDEMPOTENCY_TAG = "shipyard.idempotency_key"


def _run_pipeline(store: Store, artifacts: Any, settings: Any, ctx: RequestContext,
                  action: act.RunPipeline, key: str | None = None) -> dict[str, Any]:
    """Queue the run. ``key`` (a trigger's firing, a schedule's tick) is kept in the run's
    source tags, and a run already queued under it is answered instead of a second one:
    a worker killed after queueing the run and before recording it acts again on the
    redelivered event, and must not run the pipeline twice."""
    from shipyard.pipelines import runs
    from shipyard.pipelines.compiler import parse_spec
    from shipyard.pipelines.runner import run_pipeline
    from shipyard.pipelines.spec import PipelineSpec
    from shipyard.store.schema import pipeline_runs

    if action.spec is not None:
        spec = parse_spec(action.spec, "action.spec")
    else:
        with store.read() as conn:
            latest = conn.execute(
                select(pipeline_runs.c.id).where(
                    pipeline_runs.c.project == ctx.project,
                    pipeline_runs.c.pipeline_name == action.pipeline)
                .order_by(pipeline_runs.c.created_at.desc()).limit(1)).scalar()
            if latest is None:
                raise NotFound(f"pipeline {action.pipeline!r} has never run in project "
                               f"{ctx.project!r}: give the action its spec",
                               field="action.pipeline")
            spec = PipelineSpec.model_validate(runs.read_spec(conn, latest))
    if key is not None:
        with store.read() as conn:
            earlier = conn.execute(
                select(pipeline_runs.c.id, pipeline_runs.c.source).where(
                    pipeline_runs.c.project == ctx.project,
                    pipeline_runs.c.pipeline_name == spec.name)
                .order_by(pipeline_runs.c.created_at.desc()).limit(200)).all()
        for run_id, source in earlier:
            if isinstance(source, Mapping) and source.get(IDEMPOTENCY_TAG) == key:
                return {"pipeline_run_id": run_id, "pipeline": spec.name}
    source = {IDEMPOTENCY_TAG: key, "shipyard.client": ctx.client or "action"} if key else None
    run = run_pipeline(store, artifacts, ctx, spec, dict(action.arguments),
                       enable_caching=action.enable_caching, submit=True, settings=settings,
                       source=source)
    return {"pipeline_run_id": run.id, "pipeline": spec.name}


def _start_canary(store: Store, ctx: RequestContext, action: act.StartCanary,
                  context: Mapping[str, Any]) -> dict[str, Any]:
    """Deploy the version with no traffic (unless it is deployed already; on the
    champions' runtime unless the action names one) and start its canary; a second run
    for the same version (a redelivered event) finds the rollout it started and starts
    nothing."""
    from shipyard.registry import service as registry
    from shipyard.serving import rollouts

    version: int | None = None if action.version is None else int(action.version)
    if version is None and action.version_from == "event":
        event = context.get("event")
        found = event.get("version") if isinstance(event, Mapping) else None
        if isinstance(found, bool) or not isinstance(found, int):
            raise FailedPrecondition("action.version_from is 'event' but what fired the "
                                     "action carries no version number (a "
                                     "model-version-registered event does)",
                                     field="action.version_from")
        named = event.get("model") if isinstance(event, Mapping) else None
        if named is not None and named != action.model:
            raise FailedPrecondition(f"the event is about model {named!r}, the action deploys "
                                     f"{action.model!r}: filter the trigger on the model",
                                     field="action.model")
        version = found
    if version is None:
        version = registry.get_model_version(store, ctx.project, action.model, None,
                                             None).version
    deployed_id = f"{action.model}:{version}"
    for earlier in rollouts.list_rollouts(store, ctx.project, action.endpoint):
        if earlier.candidate == deployed_id:
            return {"endpoint": action.endpoint, "rollout": earlier.id,
                    "candidate": deployed_id, "state": earlier.state}
    rollouts.deploy_candidate(store, ctx, action.endpoint, action.model, version,
                              runtime=action.runtime)
    rollout = rollouts.start_canary(
        store, ctx, action.endpoint, deployed_id, percent=action.percent,
        after_requests=action.after_requests, max_latency_ratio=action.max_latency_ratio,
        prediction_tolerance=action.prediction_tolerance, promote_alias=action.promote_alias,
        error_rate_alpha=action.error_rate_alpha,
        max_error_rate_increase=action.max_error_rate_increase)
    return {"endpoint": action.endpoint, "rollout": rollout.id, "candidate": deployed_id,
            "state": rollout.state}


def _webhook(action: act.Webhook, context: Mapping[str, Any]) -> dict[str, Any]:
    from shipyard.security.ssrf import OutboundPolicy, guarded_post

    allow = [e for e in os.environ.get(OUTBOUND_ALLOWLIST, "").split(",") if e.strip()]
    policy = OutboundPolicy.from_allowlist(allow)
    body = action.body if action.body is not None else dict(context)
    response = guarded_post(action.url, body, policy=policy, headers=action.headers)
    if not 200 <= response.status_code < 300:
        raise Unavailable(f"the webhook answered {response.status_code}: "
                          f"{response.text[:200]}")
    return {"status": response.status_code}


def _call(action: act.CallFunction, context: Mapping[str, Any]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "SHIPYARD_TOKEN"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, action.function],
            input=json.dumps(dict(context), default=str), capture_output=True, text=True,
            timeout=action.timeout_seconds, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{action.function} ran longer than {action.timeout_seconds}s"
                          ) from None
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-1:] or ["(no output)"]
        raise FailedPrecondition(f"{action.function} failed (exit {done.returncode}): "
                                 f"{tail[0][:500]}", field="action.function")
    last = (done.stdout or "").strip().splitlines()[-1:] or ["null"]
    try:
        result = json.loads(last[0][:_MAX_OUTPUT])
    except ValueError:
        result = last[0][:2000]
    return {"function": action.function, "returned": result}
