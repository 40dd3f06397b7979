"""``shipyard.sdk.identity`` in local mode (services on the store) and remote mode (a real
server): the same calls, the same results, the same errors."""

from __future__ import annotations

import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import shipyard
from shipyard.config import Settings
from shipyard.errors import AlreadyExists, InvalidArgument, NotFound, Unauthenticated
from shipyard.sdk import identity as idm
from shipyard.sdk import session
from tests.server.live import LiveServer, live_server

PASSWORD = "a long enough passphrase"


@pytest.fixture(params=["local", "remote"])
def mode(request: pytest.FixtureRequest, store_uri: str, tmp_path: Path, home: Path
         ) -> Iterator[LiveServer | None]:
    settings = Settings.resolve(home=home, uri=store_uri, artifacts=str(tmp_path / "blobs"),
                                project="sdk-id")
    try:
        if request.param == "local":
            shipyard.init(home=home, uri=store_uri, artifacts=settings.artifacts,
                          project="sdk-id")
            yield None
        else:
            with live_server(settings, worker=False) as server:
                shipyard.init(home=home, uri=server.url, project="sdk-id", token=server.token)
                yield server
    finally:
        session.reset()


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_users(mode: LiveServer | None) -> None:
    name = _name("ann")
    info = idm.create_user(name, password=PASSWORD)
    assert info.name == name and info.kind == "user" and info.has_password
    bot = idm.create_user(_name("bot"), kind="service")
    assert bot.kind == "service" and not bot.has_password
    assert {name, bot.name} <= {u.name for u in idm.list_users()}
    with pytest.raises(AlreadyExists):
        idm.create_user(name)
    with pytest.raises(InvalidArgument) as bad:
        idm.create_user(_name("x"), kind="robot")
    assert bad.value.field == "kind"
    assert idm.disable_user(name).disabled is True
    assert idm.enable_user(name).disabled is False
    with pytest.raises(NotFound):
        idm.disable_user("nobody-here")


def test_tokens(mode: LiveServer | None) -> None:
    owner = idm.create_user(_name("tok")).name
    created = idm.create_token("ci", principal=owner, scopes=["read"], expires_in_days=3)
    assert created.principal == owner and created.plaintext.startswith("sy_")
    assert {s.value for s in created.scopes} == {"read"} and created.expires_at is not None
    assert "plaintext" not in repr(created) and created.plaintext not in repr(created)
    listed = idm.list_tokens(principal=owner)
    assert [t.id for t in listed] == [created.id] and listed[0].active()
    revoked = idm.revoke_token(created.id)
    assert revoked.revoked_at is not None and not revoked.active()
    with pytest.raises((InvalidArgument, NotFound)):
        idm.revoke_token("../../etc/passwd")
    with pytest.raises(InvalidArgument):
        idm.create_token("x", principal=owner, expires_in_days=0)
    if mode is None:
        # Local mode has no caller to own the token.
        with pytest.raises(InvalidArgument) as missing:
            idm.create_token("mine")
        assert missing.value.field == "principal"
    else:
        mine = idm.create_token("mine")
        assert mine.principal == "admin"


def test_grants(mode: LiveServer | None) -> None:
    who = idm.create_user(_name("gr")).name
    info = idm.grant(who, "editor")
    assert (info.principal, info.project, info.role.value) == (who, "sdk-id", "editor")
    assert idm.grant(who, "viewer", project="elsewhere").project == "elsewhere"
    assert [(g.principal, g.role.value) for g in idm.list_grants()] == [(who, "editor")]
    idm.revoke_grant(who)
    assert idm.list_grants() == []
    with pytest.raises(NotFound):
        idm.revoke_grant(who)
    with pytest.raises(InvalidArgument):
        idm.grant(who, "admin")
    with pytest.raises(NotFound):
        idm.grant("nobody-here", "viewer")


def test_login_saves_a_private_token(mode: LiveServer | None, home: Path) -> None:
    name = _name("log")
    if mode is None:
        # Local mode has no server to log in to: the call says so instead of guessing.
        with pytest.raises(InvalidArgument) as info:
            idm.login("sqlite:///x.db", name, PASSWORD)
        assert info.value.field == "uri"
        return
    idm.create_user(name, password=PASSWORD)
    token = idm.login(mode.url, name, PASSWORD)
    path = idm.credentials_file(home, mode.url)
    assert path.name.startswith("credentials-127.0.0.1-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token in path.read_text()
    with httpx.Client(base_url=mode.url, headers={"Authorization": f"Bearer {token}"}) as http:
        assert http.get("/api/v1/whoami").json()["name"] == name
    assert idm.login(mode.url, name, PASSWORD, save=False) != token
    with pytest.raises(Unauthenticated):
        idm.login(mode.url, name, "wrong password!!")
    with pytest.raises(InvalidArgument):
        idm.login("sqlite:///x.db", name, PASSWORD)


def test_credentials_file_names_are_safe(tmp_path: Path) -> None:
    assert idm.credentials_file(tmp_path, "https://Example.COM").name == (
        "credentials-example.com")
    assert idm.credentials_file(tmp_path, "http://[::1]:8080").name == "credentials-__1-8080"
    weird = idm.credentials_file(tmp_path, "http://a%2f..%2fb:9")
    assert weird.parent == tmp_path and "/" not in weird.name
