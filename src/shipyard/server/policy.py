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
READ = Rule(Permission.READ)
WRITE = Rule(Permission.WRITE)
PUBLIC = Rule(None, "public")

POLICY: dict[tuple[str, str], Rule] = {
    # -- service -----------------------------------------------------------------------------
    ("GET", "/api/v1/health"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/api/v1/whoami"): Rule(None, "authenticated"),
    # -- tracking ------------------------------------------------------------------------------
    ("GET", f"{P}/experiments"): READ,
    ("POST", f"{P}/experiments"): WRITE,
    ("POST", f"{P}/runs"): WRITE,
    ("POST", f"{P}/runs:search"): READ,
    ("GET", f"{P}/runs/{{run_id}}"): READ,
    ("POST", f"{P}/runs/{{run_id}}/log-batch"): WRITE,
    ("POST", f"{P}/runs/{{run_id}}/terminate"): WRITE,
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
    # -- audit ---------------------------------------------------------------------------------
    ("GET", f"{P}/audit"): Rule(Permission.GRANT),
    ("GET", "/api/v1/audit"): Rule(Permission.ADMIN, "server"),
}
