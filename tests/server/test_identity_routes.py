"""The identity routes over a real server: users, tokens (ownership), grants, logins and the
console's one-time login link."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest

from shipyard.server.api import identity as identity_api
from shipyard.store import Store
from tests.security._support import audit_rows
from tests.server.conftest import assert_problem, client, make_user, unique
from tests.server.live import LiveServer

PASSWORD = "correct horse battery staple"


def test_users_create_list_disable_enable(admin: httpx.Client, live: LiveServer) -> None:
    name = unique("alice")
    created = admin.post("/api/v1/users", json={"name": name, "password": PASSWORD})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == name and body["kind"] == "user" and body["has_password"]
    assert "password" not in body and "password_hash" not in body
    listed = admin.get("/api/v1/users").json()
    assert name in [u["name"] for u in listed]
    assert admin.post("/api/v1/users", json={"name": name}).status_code == 409

    token = admin.post("/api/v1/tokens", json={"name": "t", "principal": name}).json()["token"]
    with client(live, token) as alice:
        assert alice.get("/api/v1/whoami").json()["name"] == name
        assert admin.post(f"/api/v1/users/{name}/disable").json()["disabled"] is True
        assert_problem(alice.get("/api/v1/whoami"), 401)
        assert admin.post(f"/api/v1/users/{name}/enable").json()["disabled"] is False
        assert alice.get("/api/v1/whoami").status_code == 200


def test_user_bodies_are_checked(admin: httpx.Client) -> None:
    assert_problem(admin.post("/api/v1/users", json={"name": "../etc"}), 400, "name")
    assert_problem(admin.post("/api/v1/users", json={"name": unique("s"), "kind": "robot"}),
                   400, "kind")
    assert_problem(admin.post("/api/v1/users", json={"name": unique("s"), "root": True}),
                   400, "root")
    # argon2id policy: short passwords are refused by the service, as a 400 naming the field.
    assert_problem(admin.post("/api/v1/users", json={"name": unique("s"), "password": "short"}),
                   400, "password")
    assert_problem(admin.post("/api/v1/users/nobody-here/disable"), 404)


def test_tokens_are_owned(admin: httpx.Client, live: LiveServer, project: str) -> None:
    bob, carol = unique("bob"), unique("carol")
    bob_token = make_user(admin, bob, project=project, role="editor")
    carol_token = make_user(admin, carol)
    with client(live, bob_token) as as_bob, client(live, carol_token) as as_carol:
        mine = as_bob.post("/api/v1/tokens", json={"name": "ci", "expires_in_days": 7})
        assert mine.status_code == 201, mine.text
        created = mine.json()
        assert created["principal"] == bob and created["token"].startswith("sy_")
        assert created["scopes"] == ["write"] and created["expires_at"]
        listed = as_bob.get("/api/v1/tokens").json()
        assert {t["principal"] for t in listed} == {bob}
        assert "token" not in listed[0] and "hash" not in listed[0]
        # Someone else's tokens: not listed, not created, not revoked (reported missing).
        assert_problem(as_bob.get("/api/v1/tokens", params={"principal": carol}), 403)
        assert_problem(as_bob.post("/api/v1/tokens", json={"name": "x", "principal": carol}),
                       403)
        assert_problem(as_carol.delete(f"/api/v1/tokens/{created['id']}"), 404)
        # The admin sees and revokes anyone's.
        everyone = {t["principal"] for t in admin.get("/api/v1/tokens").json()}
        assert {bob, carol} <= everyone
        revoked = as_bob.delete(f"/api/v1/tokens/{created['id']}")
        assert revoked.status_code == 200 and revoked.json()["active"] is False
        with client(live, created["token"]) as gone:
            assert_problem(gone.get("/api/v1/whoami"), 401)
        assert admin.delete(f"/api/v1/tokens/{carol_token[3:15]}").status_code == 200
        assert_problem(as_carol.get("/api/v1/whoami"), 401)


def test_a_token_cannot_mint_a_wider_one(admin: httpx.Client, live: LiveServer,
                                         project: str) -> None:
    name = unique("reader")
    read_token = make_user(admin, name, project=project, role="editor", scopes=["read"])
    with client(live, read_token) as reader:
        assert_problem(reader.post("/api/v1/tokens", json={"name": "w", "scopes": ["write"]}),
                       403, "scopes")
        assert_problem(reader.post("/api/v1/tokens", json={"name": "a", "scopes": ["admin"]}),
                       403, "scopes")
        # Without scopes, the new token inherits the narrow ones.
        same = reader.post("/api/v1/tokens", json={"name": "r"})
        assert same.status_code == 201 and same.json()["scopes"] == ["read"]
    # A non-admin asking for admin scope with a write token: refused by the service.
    writer = make_user(admin, unique("writer"))
    with client(live, writer) as as_writer:
        assert_problem(as_writer.post("/api/v1/tokens", json={"name": "a", "scopes": ["admin"]}),
                       403, "scopes")


def test_token_bodies_are_checked(admin: httpx.Client) -> None:
    assert_problem(admin.post("/api/v1/tokens", json={"name": "x", "scopes": ["root"]}),
                   400, "scopes")
    assert_problem(admin.post("/api/v1/tokens", json={"name": "x", "expires_in_days": 0}),
                   400, "expires_in_days")
    assert_problem(admin.post("/api/v1/tokens", json={"name": "x", "principal": "ghost"}),
                   404)
    # Malformed ids are refused by name; an encoded traversal leaves the route (no match).
    for bad, status, field in [("nothex", 400, "token_id"), ("0123456789abcdef00", 400, "token_id"),
                               ("..%2f..%2fx", 404, None)]:
        assert_problem(admin.delete(f"/api/v1/tokens/{bad}"), status, field)


def test_grants_roundtrip(admin: httpx.Client, live: LiveServer, project: str) -> None:
    dave, erin = unique("dave"), unique("erin")
    dave_token = make_user(admin, dave, project=project, role="manager")
    make_user(admin, erin)
    with client(live, dave_token) as manager:
        put = manager.put(f"/api/v1/projects/{project}/grants/{erin}", json={"role": "viewer"})
        assert put.status_code == 200 and put.json()["role"] == "viewer"
        grants = manager.get(f"/api/v1/projects/{project}/grants").json()
        assert {(g["principal"], g["role"]) for g in grants} == {(dave, "manager"),
                                                                (erin, "viewer")}
        # Project roles only: a manager cannot hand out server admin.
        assert_problem(manager.put(f"/api/v1/projects/{project}/grants/{erin}",
                                   json={"role": "admin"}), 400, "role")
        assert manager.delete(f"/api/v1/projects/{project}/grants/{erin}").status_code == 204
        assert_problem(manager.delete(f"/api/v1/projects/{project}/grants/{erin}"), 404)
        # A manager of one project is nobody in another.
        assert_problem(manager.get(f"/api/v1/projects/{project}-other/grants"), 403)


def test_password_login_and_rate_limit(live: LiveServer, admin: httpx.Client,
                                       anon: httpx.Client, live_store: Store) -> None:
    name = unique("frank")
    make_user(admin, name, password=PASSWORD)
    ok = anon.post("/api/v1/login", json={"name": name, "password": PASSWORD})
    assert ok.status_code == 200, ok.text
    with client(live, ok.json()["token"]) as frank:
        assert frank.get("/api/v1/whoami").json()["name"] == name
    statuses = [anon.post("/api/v1/login", json={"name": name, "password": "wrong" * 3}
                          ).status_code for _ in range(7)]
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    limited = anon.post("/api/v1/login", json={"name": name, "password": PASSWORD})
    assert_problem(limited, 429)
    assert int(limited.headers["retry-after"]) >= 1
    denied = [r for r in audit_rows(live_store, "auth.login") if r["outcome"] == "denied"]
    assert any(r["actor"] == name for r in denied)


def test_login_link_sets_a_strict_session_cookie_once(live: LiveServer, anon: httpx.Client
                                                      ) -> None:
    link = identity_api.issue_login_link(live.app.state.shipyard, base_url=live.url)
    assert link.startswith(f"{live.url}/login/")
    code = link.rsplit("/", 1)[1]
    assert len(code) >= 43  # 256 bits
    first = anon.get(f"/login/{code}")
    assert first.status_code == 303 and first.headers["location"] == "/"
    cookie = first.headers["set-cookie"]
    assert cookie.startswith("shipyard_session=sy_")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered
    assert "max-age=" in lowered
    session = cookie.split(";", 1)[0].split("=", 1)[1]
    with httpx.Client(base_url=live.url, cookies={"shipyard_session": session}) as browser:
        assert browser.get("/api/v1/whoami").json()["admin"] is True
    # Single use: the same link fails the second time.
    assert_problem(anon.get(f"/login/{code}"), 401)
    assert_problem(anon.get("/login/not-a-real-code"), 401)


def test_login_link_expires(live: LiveServer, anon: httpx.Client,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity_api, "LOGIN_LINK_LIFETIME", timedelta(seconds=0.2))
    link = identity_api.issue_login_link(live.app.state.shipyard)
    time.sleep(0.3)
    assert_problem(anon.get(link), 401)


def test_session_cookie_cannot_be_used_cross_site(live: LiveServer, project: str) -> None:
    link = identity_api.issue_login_link(live.app.state.shipyard)
    with httpx.Client(base_url=live.url) as anon:
        cookie = anon.get(link).headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
    with httpx.Client(base_url=live.url, cookies={"shipyard_session": cookie}) as browser:
        attack = browser.post(f"/api/v1/projects/{project}/experiments", json={"name": "x"},
                              headers={"Origin": "https://evil.example"})
        assert_problem(attack, 403, "origin")
        fetch = browser.post(f"/api/v1/projects/{project}/experiments", json={"name": "x"},
                             headers={"Sec-Fetch-Site": "cross-site"})
        assert_problem(fetch, 403)
        same = browser.post(f"/api/v1/projects/{project}/experiments", json={"name": "x"},
                            headers={"Origin": live.url})
        assert same.status_code == 200, same.text
