"""The one policy table: every route, the permission it needs, and on what.

Deny by default: ``server.auth.enforce`` refuses any matched route without an entry, and
``tests/server/test_policy.py`` fails when a route has no entry or an entry names no route.
Add a route, add its line here: that is the whole security review a new route needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shipyard.security.roles import Permission

Scope = Literal["public", "authenticated", "project", "server"]


@dataclass(frozen=True)
class Rule:
    permission: Permission | None
    scope: Scope = "project"
    # Raw request bodies (artifact uploads) are allowed only where this is set.
    upload: bool = False


P = "/api/v1/projects/{project}"
C = "/console/projects/{project}"  # the console's pages of a project
READ = Rule(Permission.READ)
WRITE = Rule(Permission.WRITE)
PUBLIC = Rule(None, "public")

POLICY: dict[tuple[str, str], Rule] = {
    # -- service -----------------------------------------------------------------------------
    ("GET", "/api/v1/health"): PUBLIC,
    # Kubernetes' probes carry no credentials; neither route names a path or a bucket.
    ("GET", "/api/v1/live"): PUBLIC,
    ("GET", "/api/v1/ready"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/assets/{name}"): PUBLIC,  # Swagger UI's own files (server.app)
    ("GET", "/api/v1/whoami"): Rule(None, "authenticated"),
    ("GET", "/"): Rule(None, "authenticated"),
    # -- tracking ------------------------------------------------------------------------------
    ("GET", f"{P}/experiments"): READ,
    ("POST", f"{P}/experiments"): WRITE,
    ("POST", f"{P}/runs"): WRITE,
    ("POST", f"{P}/runs:search"): READ,
    ("GET", f"{P}/runs/{{run_id}}"): READ,
    ("POST", f"{P}/runs/{{run_id}}/log-batch"): WRITE,
    ("POST", f"{P}/runs/{{run_id}}/terminate"): WRITE,
    ("POST", f"{P}/runs/{{run_id}}/heartbeat"): WRITE,
    ("GET", f"{P}/runs/{{run_id}}/metrics/history"): READ,
    ("PUT", f"{P}/runs/{{run_id}}/artifacts/{{name}}"): Rule(Permission.WRITE, upload=True),
    ("GET", f"{P}/runs/{{run_id}}/artifacts/{{name}}"): READ,
    # -- lineage -------------------------------------------------------------------------------
    ("GET", f"{P}/lineage/artifacts"): READ,
    ("GET", f"{P}/lineage/artifacts/{{artifact_id}}"): READ,
    ("GET", f"{P}/lineage/artifacts/{{artifact_id}}/graph"): READ,
    ("GET", f"{P}/lineage/executions"): READ,
    ("GET", f"{P}/lineage/executions/{{execution_id}}"): READ,
    ("GET", f"{P}/lineage/contexts"): READ,
    # -- model registry ------------------------------------------------------------------------
    ("GET", f"{P}/models"): READ,
    ("GET", f"{P}/models/{{name}}"): READ,
    ("GET", f"{P}/models/{{name}}/versions"): READ,
    ("POST", f"{P}/models/{{name}}/versions"): Rule(Permission.WRITE, upload=True),
    ("GET", f"{P}/models/{{name}}/versions/{{version}}"): READ,
    ("GET", f"{P}/models/{{name}}/versions/{{version}}/download"): READ,
    ("POST", f"{P}/models/{{name}}/versions/{{version}}/status"): WRITE,
    ("POST", f"{P}/models/{{name}}/versions/{{version}}/promote"): WRITE,
    ("GET", f"{P}/models/{{name}}/aliases/{{alias}}"): READ,
    ("PUT", f"{P}/models/{{name}}/aliases/{{alias}}"): WRITE,
    ("DELETE", f"{P}/models/{{name}}/aliases/{{alias}}"): Rule(Permission.DELETE),
    ("POST", f"{P}/models/{{name}}/aliases/{{alias}}/rollback"): WRITE,
    ("GET", f"{P}/models/{{name}}/history"): READ,
    # -- pipelines -------------------------------------------------------------------------------
    ("POST", f"{P}/pipelines/runs"): Rule(Permission.RUN),
    ("GET", f"{P}/pipelines/runs"): READ,
    ("GET", f"{P}/pipelines/runs/{{run_id}}"): READ,
    ("POST", f"{P}/pipelines/runs/{{run_id}}/retry"): Rule(Permission.RUN),
    ("POST", f"{P}/pipelines/runs/{{run_id}}/cancel"): Rule(Permission.RUN),
    ("GET", f"{P}/pipelines/runs/{{run_id}}/log"): READ,
    # -- serving -------------------------------------------------------------------------------
    ("GET", f"{P}/endpoints"): READ,
    ("POST", f"{P}/endpoints"): WRITE,
    ("GET", f"{P}/endpoints/{{name}}"): READ,
    ("DELETE", f"{P}/endpoints/{{name}}"): Rule(Permission.DELETE),
    ("POST", f"{P}/endpoints/{{name}}/deployments"): WRITE,
    ("PUT", f"{P}/endpoints/{{name}}/traffic"): WRITE,
    ("POST", f"{P}/endpoints/{{name}}/shift"): WRITE,
    ("POST", f"{P}/endpoints/{{name}}/undeploy"): WRITE,
    ("GET", f"{P}/endpoints/{{name}}/replicas"): READ,
    ("POST", f"{P}/endpoints/{{name}}/rollouts"): WRITE,
    ("GET", f"{P}/endpoints/{{name}}/rollouts"): READ,
    ("GET", f"{P}/endpoints/{{name}}/rollouts/{{rollout_id}}"): READ,
    # Predicting is the role 'user' (DESIGN.md 6), on the endpoint's project.
    ("POST", f"{P}/endpoints/{{name}}:predict"): Rule(Permission.PREDICT),
    ("POST", "/v1/projects/{project}/locations/{location}/endpoints/{name}:predict"):
        Rule(Permission.PREDICT),
    # GET or DELETE of an endpoint's verb (:predict, ...) only answers 405; these entries let
    # it do so, with the rules of the routes they would otherwise have reached.
    ("GET", f"{P}/endpoints/{{name}}:{{verb}}"): READ,
    ("DELETE", f"{P}/endpoints/{{name}}:{{verb}}"): Rule(Permission.DELETE),
    ("POST", f"{P}/endpoints/{{name}}:explain"): Rule(Permission.PREDICT),
    ("POST", "/v1/projects/{project}/locations/{location}/endpoints/{name}:explain"):
        Rule(Permission.PREDICT),
    ("POST", f"{P}/endpoints/{{name}}:rawPredict"): Rule(Permission.PREDICT),
    ("POST", "/v1/projects/{project}/locations/{location}/endpoints/{name}:rawPredict"):
        Rule(Permission.PREDICT),
    # KServe, OIP and MLflow paths name no project: the table asks for a credential, and
    # server.api.dataplane resolves the endpoint's project from its name and then checks
    # 'predict' there (reading metadata: 'read' there) with the same authorize call.
    ("POST", "/v1/models/{name}:predict"): Rule(None, "authenticated"),
    ("POST", "/v2/models/{name}/infer"): Rule(None, "authenticated"),
    ("POST", "/v2/models/{name}/versions/{version}/infer"): Rule(None, "authenticated"),
    ("POST", "/endpoints/{name}/invocations"): Rule(None, "authenticated"),
    ("GET", "/v2/models/{name}"): Rule(None, "authenticated"),
    ("GET", "/v2/models/{name}/ready"): Rule(None, "authenticated"),
    ("GET", "/v2/models/{name}/versions/{version}"): Rule(None, "authenticated"),
    ("GET", "/v2/models/{name}/versions/{version}/ready"): Rule(None, "authenticated"),
    ("GET", "/v2"): Rule(None, "authenticated"),
    # Ground truth for logged predictions comes from whoever may predict there.
    ("POST", f"{P}/endpoints/{{name}}/feedback"): Rule(Permission.PREDICT),
    # Prometheus: any credential; each caller sees the series of the projects it may read.
    ("GET", "/metrics"): Rule(None, "authenticated"),
    # Probes carry no credentials, as /api/v1/live and /api/v1/ready.
    ("GET", "/v2/health/live"): PUBLIC,
    ("GET", "/v2/health/ready"): PUBLIC,
    # -- events: publishing and consuming are running work ('user'); topics and subscriptions
    # are resources ('editor' to create, 'manager' to delete), as elsewhere.
    ("GET", f"{P}/events/topics"): READ,
    ("POST", f"{P}/events/topics"): WRITE,
    ("POST", f"{P}/events/topics/{{topic}}/publish"): Rule(Permission.RUN),
    ("GET", f"{P}/events/subscriptions"): READ,
    ("POST", f"{P}/events/subscriptions"): WRITE,
    ("GET", f"{P}/events/subscriptions/{{name}}"): READ,
    ("DELETE", f"{P}/events/subscriptions/{{name}}"): Rule(Permission.DELETE),
    ("POST", f"{P}/events/subscriptions/{{name}}/pull"): Rule(Permission.RUN),
    ("POST", f"{P}/events/subscriptions/{{name}}/ack"): Rule(Permission.RUN),
    ("POST", f"{P}/events/subscriptions/{{name}}/nack"): Rule(Permission.RUN),
    ("POST", f"{P}/events/subscriptions/{{name}}/extend"): Rule(Permission.RUN),
    ("POST", f"{P}/events/subscriptions/{{name}}/seek"): WRITE,
    ("GET", f"{P}/events/subscriptions/{{name}}/dead-letters"): READ,
    # Pushing a subscription and watching data are configuration ('editor'); deleting a
    # watch is a delete ('manager').
    ("GET", f"{P}/events/subscriptions/{{name}}/push"): READ,
    ("PUT", f"{P}/events/subscriptions/{{name}}/push"): WRITE,
    ("DELETE", f"{P}/events/subscriptions/{{name}}/push"): WRITE,
    ("GET", f"{P}/events/watches"): READ,
    ("POST", f"{P}/events/watches"): WRITE,
    ("DELETE", f"{P}/events/watches/{{name}}"): Rule(Permission.DELETE),
    # -- monitoring: running a monitor is running work ('user'); monitors are resources -------
    ("GET", f"{P}/monitors"): READ,
    ("POST", f"{P}/monitors"): WRITE,
    ("GET", f"{P}/monitors/{{name}}"): READ,
    ("DELETE", f"{P}/monitors/{{name}}"): Rule(Permission.DELETE),
    ("POST", f"{P}/monitors/{{name}}/run"): Rule(Permission.RUN),
    ("POST", f"{P}/monitors/{{name}}/pause"): WRITE,  # as a schedule's pause and resume
    ("POST", f"{P}/monitors/{{name}}/resume"): WRITE,
    ("GET", f"{P}/monitors/{{name}}/runs"): READ,
    ("GET", f"{P}/monitors/{{name}}/report"): READ,
    ("GET", f"{P}/monitor-alerts"): READ,
    ("GET", f"{P}/endpoints/{{name}}/monitoring-stats"): READ,
    # Schedules and triggers act later as their creator: creating one is 'editor', as
    # promoting or deploying is; calling a Python function also needs the operator's
    # SHIPYARD_ACTION_FUNCTIONS (events.acting.check_allowed).
    ("GET", f"{P}/events/schedules"): READ,
    ("POST", f"{P}/events/schedules"): WRITE,
    ("GET", f"{P}/events/schedules/{{name}}"): READ,
    ("DELETE", f"{P}/events/schedules/{{name}}"): Rule(Permission.DELETE),
    ("POST", f"{P}/events/schedules/{{name}}/pause"): WRITE,
    ("POST", f"{P}/events/schedules/{{name}}/resume"): WRITE,
    ("GET", f"{P}/events/schedules/{{name}}/ticks"): READ,
    ("GET", f"{P}/events/triggers"): READ,
    ("POST", f"{P}/events/triggers"): WRITE,
    ("GET", f"{P}/events/triggers/{{name}}"): READ,
    ("DELETE", f"{P}/events/triggers/{{name}}"): Rule(Permission.DELETE),
    ("POST", f"{P}/events/triggers/{{name}}/pause"): WRITE,
    ("POST", f"{P}/events/triggers/{{name}}/resume"): WRITE,
    ("GET", f"{P}/events/triggers/{{name}}/firings"): READ,
    # -- identity: users, tokens, grants ---------------------------------------------------------
    ("POST", "/api/v1/login"): PUBLIC,
    ("GET", "/login/{code}"): PUBLIC,
    ("GET", "/api/v1/users"): Rule(Permission.ADMIN, "server"),
    ("POST", "/api/v1/users"): Rule(Permission.ADMIN, "server"),
    ("POST", "/api/v1/users/{name}/disable"): Rule(Permission.ADMIN, "server"),
    ("POST", "/api/v1/users/{name}/enable"): Rule(Permission.ADMIN, "server"),
    # Token routes check ownership themselves: your own tokens, or anyone's as admin.
    ("GET", "/api/v1/tokens"): Rule(None, "authenticated"),
    ("POST", "/api/v1/tokens"): Rule(None, "authenticated"),
    ("DELETE", "/api/v1/tokens/{token_id}"): Rule(None, "authenticated"),
    ("GET", f"{P}/grants"): Rule(Permission.GRANT),
    ("PUT", f"{P}/grants/{{principal}}"): Rule(Permission.GRANT),
    ("DELETE", f"{P}/grants/{{principal}}"): Rule(Permission.GRANT),
    # -- console (server/console): a page needs what its data needs; its forms what their
    # API twins need. Sign-in pages are public; their forms carry CSRF tokens.
    ("GET", "/console/login"): PUBLIC,
    ("POST", "/console/login"): PUBLIC,
    ("POST", "/console/logout"): Rule(None, "authenticated"),
    ("GET", "/console/static/{name}"): PUBLIC,  # the console's CSS and JS, and plotly's
    ("GET", f"{C}"): READ,
    ("GET", f"{C}/runs"): READ,
    ("GET", f"{C}/runs/compare"): READ,
    ("GET", f"{C}/runs/{{run_id}}"): READ,
    ("GET", f"{C}/pipelines"): READ,
    ("GET", f"{C}/pipelines/{{run_id}}"): READ,
    ("POST", f"{C}/pipelines/{{run_id}}/retry"): Rule(Permission.RUN),
    ("POST", f"{C}/pipelines/{{run_id}}/cancel"): Rule(Permission.RUN),
    ("GET", f"{C}/pipelines/{{run_id}}/live"): READ,  # what the run's page polls
    ("GET", f"{C}/lineage"): READ,
    ("GET", f"{C}/lineage/{{artifact_id}}"): READ,
    ("GET", f"{C}/executions"): READ,
    ("GET", f"{C}/models"): READ,
    ("GET", f"{C}/models/{{name}}"): READ,
    ("GET", f"{C}/endpoints"): READ,
    ("GET", f"{C}/endpoints/{{name}}"): READ,
    ("POST", f"{C}/endpoints/{{name}}/traffic"): WRITE,
    ("POST", f"{C}/endpoints/{{name}}/predict"): Rule(Permission.PREDICT),
    ("GET", f"{C}/monitors"): READ,
    ("POST", f"{C}/monitors"): WRITE,
    ("GET", f"{C}/monitors/{{name}}"): READ,
    ("POST", f"{C}/monitors/{{name}}/pause"): WRITE,
    ("POST", f"{C}/monitors/{{name}}/resume"): WRITE,
    ("POST", f"{C}/monitors/{{name}}/run"): Rule(Permission.RUN),
    ("GET", f"{C}/events"): READ,
    ("POST", f"{C}/events/schedules"): WRITE,
    ("POST", f"{C}/events/schedules/{{name}}/pause"): WRITE,
    ("POST", f"{C}/events/schedules/{{name}}/resume"): WRITE,
    ("POST", f"{C}/events/triggers"): WRITE,
    ("POST", f"{C}/events/triggers/{{name}}/pause"): WRITE,
    ("POST", f"{C}/events/triggers/{{name}}/resume"): WRITE,
    # Users, tokens, grants and the audit log of the whole server, as their API routes.
    ("GET", f"{C}/admin"): Rule(Permission.ADMIN, "server"),
    # -- audit ---------------------------------------------------------------------------------
    ("GET", f"{P}/audit"): Rule(Permission.GRANT),
    ("GET", "/api/v1/audit"): Rule(Permission.ADMIN, "server"),
    ("GET", "/api/v1/audit/verify"): Rule(Permission.ADMIN, "server"),
}


def upload_patterns() -> list[tuple[str, str]]:
    """(method, path regex) of every route that takes a raw or multipart upload body."""
    import re

    out = []
    for (method, path), rule in POLICY.items():
        if rule.upload:
            pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path))
            out.append((method, f"^{pattern}$"))
    return out
