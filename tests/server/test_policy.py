"""The policy table against the app: inventory (both ways) and the permission matrix.

The inventory reads the routes of ``create_app`` itself, so a route added anywhere without a
policy line fails here (and is refused at runtime by ``server.auth.enforce``). The matrix
sends one request per policy entry and role to a real server and checks that 401/403 comes
back exactly when the role lacks the permission, and that every denial is in the audit log.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import select
from starlette.routing import BaseRoute, Mount, WebSocketRoute

from shipyard.config import Settings
from shipyard.ids import new_id
from shipyard.security.roles import ROLE_PERMISSIONS, Permission, Role
from shipyard.security.tokens import SCOPE_PERMISSIONS, Scope
from shipyard.server.api.identity import issue_login_link
from shipyard.server.app import create_app
from shipyard.server.auth import enforce
from shipyard.server.policy import POLICY, Rule
from shipyard.store import Store
from shipyard.store.schema import audit_log
from tests.server.conftest import assert_problem, client, make_user, unique
from tests.server.live import LiveServer, live_server


# -- inventory -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeenRoute:
    path: str
    methods: frozenset[str]
    enforced: bool  # the policy dependency runs for it
    kind: str


def _walk(routes: list[BaseRoute]) -> Iterator[SeenRoute]:
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:  # FastAPI's included routers
            for ctx in contexts():
                yield _seen(ctx)
        elif isinstance(route, Mount | WebSocketRoute):
            # A mounted app or websocket bypasses the dependency entirely: refuse outright.
            yield SeenRoute(route.path, frozenset({"*"}), False, type(route).__name__)
        else:
            yield _seen(route)


def _seen(route: Any) -> SeenRoute:
    dependant = getattr(route, "dependant", None)
    enforced = dependant is not None and any(
        dep.call is enforce for dep in dependant.dependencies)
    return SeenRoute(route.path, frozenset(route.methods or ()), enforced,
                     type(route).__name__)


@pytest.fixture(scope="module")
def app_routes(tmp_path_factory: pytest.TempPathFactory) -> list[SeenRoute]:
    home = tmp_path_factory.mktemp("inventory")
    settings = Settings.resolve(home=home, uri=f"sqlite:///{home / 'db.sqlite'}",
                                artifacts=str(home / "blobs"), environ={})
    app = create_app(settings, worker=False)
    return list(_walk(app.routes))


def test_every_route_has_a_policy_entry(app_routes: list[SeenRoute]) -> None:
    missing = []
    for route in app_routes:
        for method in route.methods:
            # HEAD is answered as GET where a router allows it, so it needs the GET entry.
            key = ("GET" if method == "HEAD" else method, route.path)
            if key not in POLICY:
                missing.append(f"{method} {route.path} ({route.kind})")
    assert not missing, "routes without a policy entry: " + ", ".join(missing)


def test_routes_outside_the_policy_dependency_are_public_only(
        app_routes: list[SeenRoute]) -> None:
    # Starlette routes (/openapi.json) never run FastAPI dependencies: they must be public,
    # or they would be open without anyone noticing.
    for route in app_routes:
        if not route.enforced:
            for method in route.methods:
                rule = POLICY.get(("GET" if method == "HEAD" else method, route.path))
                assert rule is not None and rule.scope == "public", (
                    f"{method} {route.path} bypasses the policy dependency")
            assert route.kind == "Route", f"{route.kind} {route.path} cannot be policed"


def test_every_policy_entry_names_a_route(app_routes: list[SeenRoute]) -> None:
    existing = {(m, r.path) for r in app_routes for m in r.methods}
    stale = [f"{m} {p}" for (m, p) in POLICY if (m, p) not in existing]
    assert not stale, "policy entries without a route: " + ", ".join(stale)


def test_policy_entries_are_well_formed() -> None:
    for (method, path), rule in POLICY.items():
        assert method in {"GET", "POST", "PUT", "PATCH", "DELETE"}, method
        assert (path.startswith("/") and not path.endswith("/")) or path == "/", path
        if rule.scope == "project":
            assert "{project}" in path and rule.permission is not None, path
        if rule.scope == "server":
            assert rule.permission is Permission.ADMIN, path
        if rule.upload:
            assert method in {"PUT", "POST"}, path


# -- a concrete request for every entry -----------------------------------------------------------
def concrete(path: str, project: str, live: LiveServer) -> str:
    values = {"project": project, "name": "m1", "version": "1", "alias": "prod",
              "principal": "nobody-zz", "token_id": "0123456789ab",
              "code": issue_login_link(live.app.state.shipyard).rsplit("/", 1)[1]}

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        return values.get(key) or new_id()  # *_id parameters: a well-formed unknown id

    return re.sub(r"\{([^}:]+)(?::[^}]+)?\}", fill, path)


def send(http: httpx.Client, method: str, url: str, rule: Rule) -> httpx.Response:
    if method in {"GET", "DELETE"}:
        return http.request(method, url)
    if rule.upload:
        return http.request(method, url, content=b"not a model",
                            headers={"Content-Type": "application/octet-stream"})
    return http.request(method, url, json={})


# -- the matrix ------------------------------------------------------------------------------------
ROLES = ["anonymous", "none", "viewer", "user", "editor", "manager", "admin", "editor-read"]


@dataclass
class Caller:
    name: str
    token: str | None
    role: Role | None
    scopes: frozenset[Scope]


@pytest.fixture(scope="module")
def callers(live: LiveServer) -> dict[str, Caller]:
    project = "matrix"
    out: dict[str, Caller] = {
        "anonymous": Caller("anonymous", None, None, frozenset()),
        "admin": Caller("admin", live.token, Role.ADMIN, frozenset({Scope.ADMIN})),
    }
    with client(live, live.token) as admin:
        for label in ("none", "viewer", "user", "editor", "manager", "editor-read"):
            name = unique(label)
            role = None if label == "none" else Role("editor" if label == "editor-read"
                                                     else label)
            scopes = ["read"] if label == "editor-read" else None
            token = make_user(admin, name, project=project if role else None,
                              role=role.value if role else None, scopes=scopes)
            out[label] = Caller(name, token, role,
                                frozenset({Scope.READ} if scopes else {Scope.WRITE}))
    return out


def allowed(rule: Rule, caller: Caller) -> bool:
    if rule.scope == "public":
        return True
    if caller.token is None:
        return False
    if rule.scope == "authenticated" or rule.permission is None:
        return True
    role = caller.role if rule.scope == "project" or caller.role is Role.ADMIN else None
    held = ROLE_PERMISSIONS[role] if role is not None else frozenset()
    through = frozenset().union(*(SCOPE_PERMISSIONS[s] for s in caller.scopes))
    return rule.permission in held & through


def test_permission_matrix(live: LiveServer, callers: dict[str, Caller],
                           live_store: Store) -> None:
    failures: list[str] = []
    expected_denials: set[tuple[str, str]] = set()
    https = {label: client(live, callers[label].token) for label in ROLES}
    for (method, path), rule in sorted(POLICY.items(), key=lambda kv: kv[0][::-1]):
        for label in ROLES:
            caller = callers[label]
            url = concrete(path, "matrix", live)
            response = send(https[label], method, url, rule)
            https[label].cookies.clear()  # a login link's session must not carry over
            denied = response.status_code in (401, 403)
            should = allowed(rule, caller)
            where = f"{method} {path} as {label}: {response.status_code} {response.text[:160]}"
            if response.status_code >= 500:
                failures.append("server error: " + where)
            elif denied == should:
                failures.append(("denied: " if denied else "allowed: ") + where)
            elif denied:
                if response.headers.get("content-type", "").split(";")[0] != (
                        "application/problem+json"):
                    failures.append("not problem+json: " + where)
                if caller.token is None:
                    if response.status_code != 401 or "www-authenticate" not in response.headers:
                        failures.append("anonymous not 401 + WWW-Authenticate: " + where)
                else:
                    expected_denials.add((caller.name, f"{method} {path}"))
    for http in https.values():
        http.close()
    assert not failures, "\n".join(failures)
    # A sanity floor: most entries deny someone, so an empty set means the loop is broken.
    assert len(expected_denials) > len(POLICY)
    with live_store.read() as conn:
        rows = conn.execute(select(audit_log.c.actor, audit_log.c.action)
                            .where(audit_log.c.outcome == "denied")).all()
    recorded = {(r.actor, r.action) for r in rows}
    missing = sorted(expected_denials - recorded)
    assert not missing, f"denials missing from the audit log: {missing[:10]}"


# -- sensitive routes, against a list kept by hand ---------------------------------------------
# The matrix above takes its expectations from the policy table, so a wrong line in the table
# passes it. These are written from DESIGN.md 6 and docs/security.md instead: users and the
# server audit log need admin; grants, deletes and a project's audit log need manager; uploads
# (run artifacts, model versions) need editor; token routes take any valid token, because
# they act on the caller's own tokens. A caller is allowed from the named rung up.
LADDER = ["anonymous", "none", "viewer", "user", "editor", "manager", "admin"]
SENSITIVE: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/users"): "admin",
    ("POST", "/api/v1/users"): "admin",
    ("POST", "/api/v1/users/{name}/disable"): "admin",
    ("POST", "/api/v1/users/{name}/enable"): "admin",
    ("GET", "/api/v1/tokens"): "none",
    ("POST", "/api/v1/tokens"): "none",
    ("DELETE", "/api/v1/tokens/{token_id}"): "none",
    ("GET", "/api/v1/projects/{project}/grants"): "manager",
    ("PUT", "/api/v1/projects/{project}/grants/{principal}"): "manager",
    ("DELETE", "/api/v1/projects/{project}/grants/{principal}"): "manager",
    ("GET", "/api/v1/projects/{project}/audit"): "manager",
    ("GET", "/api/v1/audit"): "admin",
    ("GET", "/api/v1/audit/verify"): "admin",
    ("DELETE", "/api/v1/projects/{project}/models/{name}/aliases/{alias}"): "manager",
    ("PUT", "/api/v1/projects/{project}/runs/{run_id}/artifacts/{name}"): "editor",
    ("POST", "/api/v1/projects/{project}/models/{name}/versions"): "editor",
    ("DELETE", "/api/v1/projects/{project}/endpoints/{name}"): "manager",
    ("DELETE", "/api/v1/projects/{project}/endpoints/{name}:{verb}"): "manager",
    ("DELETE", "/api/v1/projects/{project}/events/subscriptions/{name}"): "manager",
    ("DELETE", "/api/v1/projects/{project}/monitors/{name}"): "manager",
    ("DELETE", "/api/v1/projects/{project}/events/schedules/{name}"): "manager",
    ("DELETE", "/api/v1/projects/{project}/events/triggers/{name}"): "manager",
    ("DELETE", "/api/v1/projects/{project}/events/watches/{name}"): "manager",
    # Clearing a push endpoint changes a subscription's configuration (as setting it does).
    ("DELETE", "/api/v1/projects/{project}/events/subscriptions/{name}/push"): "editor",
    ("POST", "/api/v1/projects/{project}/monitors/{name}/run"): "user",
    # Predicting is what the role 'user' adds (DESIGN.md 6), on both prediction paths.
    ("POST", "/api/v1/projects/{project}/endpoints/{name}:predict"): "user",
    ("POST", "/v1/projects/{project}/locations/{location}/endpoints/{name}:predict"): "user",
}
UPLOADS = {
    ("PUT", "/api/v1/projects/{project}/runs/{run_id}/artifacts/{name}"),
    ("POST", "/api/v1/projects/{project}/models/{name}/versions"),
}


def is_sensitive(method: str, path: str, rule: Rule) -> bool:
    kinds = ("/users", "/tokens", "/grants", "/audit")
    return method == "DELETE" or rule.upload or any(k in path for k in kinds)


def test_the_sensitive_list_covers_every_sensitive_route() -> None:
    # A new user, token, grant, audit, delete or upload route needs its line above: the
    # expectation is then a decision someone wrote down, not whatever the table says.
    unlisted = [f"{m} {p}" for (m, p), rule in POLICY.items()
                if is_sensitive(m, p, rule) and (m, p) not in SENSITIVE]
    assert not unlisted, "sensitive routes missing from SENSITIVE: " + ", ".join(unlisted)
    stale = [f"{m} {p}" for (m, p) in SENSITIVE if (m, p) not in POLICY]
    assert not stale, "SENSITIVE names routes that do not exist: " + ", ".join(stale)


def expected_status(minimum: str, label: str) -> int | None:
    """401 or 403 where ``label`` is below ``minimum``; None where it is let through."""
    if LADDER.index(label) >= LADDER.index(minimum):
        return None
    return 401 if label == "anonymous" else 403


def test_sensitive_routes_need_the_documented_role(live: LiveServer,
                                                   callers: dict[str, Caller]) -> None:
    wrong: list[str] = []
    for (method, path), minimum in SENSITIVE.items():
        url = concrete(path, "matrix", live)
        body = Rule(None, upload=(method, path) in UPLOADS)  # the shape of body to send
        # The editor's read-only token is below every rung past viewer.
        for label in [*LADDER, "editor-read"]:
            if label == "editor-read":
                want = 403 if LADDER.index(minimum) > LADDER.index("viewer") else None
            else:
                want = expected_status(minimum, label)
            with client(live, callers[label].token) as http:
                status = send(http, method, url, body).status_code
            if want is None:
                right = status not in (401, 403) and status < 500
            else:
                right = status == want
            if not right:
                wrong.append(f"{method} {path} as {label} (needs {minimum}): {status}, "
                             f"expected {want or 'to be let through'}")
    assert not wrong, "\n".join(wrong)


def test_another_principals_tokens_need_admin(live: LiveServer, callers: dict[str, Caller],
                                              admin: httpx.Client) -> None:
    other = unique("bystander")
    make_user(admin, other)
    for label in LADDER:
        want = 401 if label == "anonymous" else (None if label == "admin" else 403)
        with client(live, callers[label].token) as http:
            listed = http.get("/api/v1/tokens", params={"principal": other})
            created = http.post("/api/v1/tokens", json={"name": "t", "principal": other})
        assert listed.status_code == (want or 200), (label, listed.text)
        assert created.status_code == (want or 201), (label, created.text)


# -- deny by default, at runtime --------------------------------------------------------------
def test_a_route_without_a_policy_entry_is_refused_to_everyone(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path / "home", uri=f"sqlite:///{tmp_path / 'db'}",
                                artifacts=str(tmp_path / "blobs"), environ={})
    answered: list[str] = []
    with live_server(settings, worker=False) as server:
        # Routes added as a new feature would add them, to the app create_app built (its
        # router is read on every request): on the app, on an included router, and a new
        # method on a path the table lists for other methods. None has a policy line.
        app: FastAPI = server.app

        @app.get("/api/v1/unlisted")
        def unlisted() -> dict[str, str]:
            answered.append("GET /api/v1/unlisted")
            return {"secret": "unlisted"}

        @app.patch("/api/v1/projects/{project}/experiments")
        def patch_experiments(project: str) -> dict[str, str]:
            answered.append("PATCH experiments")
            return {"secret": project}

        router = APIRouter()

        @router.post("/api/v1/projects/{project}/unlisted")
        def post_unlisted(project: str) -> dict[str, str]:
            answered.append("POST unlisted")
            return {"secret": project}

        app.include_router(router)
        requests = [("GET", "/api/v1/unlisted"), ("PATCH", "/api/v1/projects/p1/experiments"),
                    ("POST", "/api/v1/projects/p1/unlisted")]
        with client(server, server.token) as admin:
            manager = make_user(admin, "mgr", project="p1", role="manager")
        for token in (None, manager, server.token):
            with client(server, token) as http:
                for method, url in requests:
                    response = http.request(method, url, json={})
                    assert_problem(response, 403)
                    assert "no access policy" in response.json()["detail"], response.text
    assert answered == []


def test_no_token_is_401_problem_with_www_authenticate(anon: httpx.Client) -> None:
    response = anon.get("/api/v1/projects/default/experiments")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    for header in ("Basic YWRtaW46cGFzc3dvcmQ=", "Bearer", "Bearer not-a-token",
                   "Bearer sy_0123456789ab_" + "A" * 43):
        bad = anon.get("/api/v1/whoami", headers={"Authorization": header})
        assert_problem(bad, 401)
        assert "www-authenticate" in bad.headers


def test_revoked_token_fails_on_the_very_next_request(admin: httpx.Client, live: LiveServer,
                                                      project: str) -> None:
    token = make_user(admin, unique("rev"), project=project, role="editor")
    with client(live, token) as http:
        assert http.get(f"/api/v1/projects/{project}/experiments").status_code == 200
        assert admin.delete(f"/api/v1/tokens/{token[3:15]}").status_code == 200
        assert_problem(http.get(f"/api/v1/projects/{project}/experiments"), 401)


def test_a_resource_in_another_project_is_denied(admin: httpx.Client, live: LiveServer) -> None:
    mine, theirs = unique("mine"), unique("theirs")
    editor = make_user(admin, unique("ed"), project=mine, role="editor")
    other = make_user(admin, unique("ot"), project=theirs, role="editor")
    with client(live, editor) as as_editor, client(live, other) as as_other:
        run = as_editor.post(f"/api/v1/projects/{mine}/runs", json={"experiment": "e"})
        assert run.status_code == 200, run.text
        run_id = run.json()["id"]
        # Naming the other project in the URL: no role there.
        assert_problem(as_editor.get(f"/api/v1/projects/{theirs}/runs/{run_id}"), 403)
        # Holding a role in the other project does not reach into this one: the run is
        # looked up in the URL's project only.
        assert_problem(as_other.get(f"/api/v1/projects/{theirs}/runs/{run_id}"), 404)
        assert_problem(as_other.get(f"/api/v1/projects/{mine}/runs/{run_id}"), 403)
        assert_problem(as_other.post(f"/api/v1/projects/{mine}/runs/{run_id}/terminate",
                                     json={}), 403)


# -- method and path variants never open a hole ----------------------------------------------------
def raw_status(url: str, method: str, path: str, headers: dict[str, str] | None = None) -> int:
    """Send a request line exactly as given (no client-side normalisation of the path)."""
    parts = urlsplit(url)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


def test_head_options_and_unknown_methods_are_not_holes(live: LiveServer) -> None:
    for (_method, path), rule in POLICY.items():
        if rule.scope == "public":
            continue
        url = concrete(path, "matrix", live)
        for other in ("HEAD", "OPTIONS", "PATCH", "TRACE", "PROPFIND"):
            status = raw_status(live.url, other, url)
            # No route takes these methods, so routing refuses them before anything else.
            assert status == 405, (other, path, status)


@pytest.mark.parametrize("variant", [
    "{path}/", "/{path}", "{path}//", "{path}/.", "{path}%2F", "{path};x", "{upper}",
    "{path}?", "{path}#x", "{path}%00", "/.{path}",
])
def test_path_variants_are_not_holes(live: LiveServer, variant: str) -> None:
    for (_method, path), rule in POLICY.items():
        if rule.scope == "public" or _method != "GET":
            continue
        url = concrete(path, "matrix", live)
        raw = variant.format(path=url, upper=url.upper())
        status = raw_status(live.url, "GET", raw)
        # A redirect to the canonical path is fine: that path is policed like any other.
        assert status in (307, 308, 400, 401, 403, 404, 405), (raw, status)


def test_trailing_slash_redirect_stays_on_this_server(anon: httpx.Client) -> None:
    response = anon.get("/api/v1/users/")
    assert response.status_code == 307, response.text
    location = response.headers["location"]
    assert location == str(anon.base_url).rstrip("/") + "/api/v1/users"
    assert_problem(anon.get(location), 401)


def test_unknown_routes_are_404_problems(anon: httpx.Client) -> None:
    assert_problem(anon.get("/api/v1/nothing-here"), 404)
    assert_problem(anon.get("/api/v2/projects/default/experiments"), 404)

