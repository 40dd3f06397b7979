"""Users, service accounts, API tokens and project grants from the SDK.

Each function works in both modes: local mode calls the identity service on the store the
session opened (no application-level auth there: the operating system or the database's
own credentials are the boundary, DESIGN.md 6), remote mode asks the server, which checks
the caller's token. ``project=None`` means the session's project.

    import shipyard.sdk.identity as idm
    idm.create_user("ci-bot", kind="service")
    token = idm.create_token("ci", principal="ci-bot", scopes=["write"])
    print(token.plaintext)          # shown once
    idm.grant("ci-bot", "editor", project="lead-scoring")
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shipyard.config import Settings, ensure_home
from shipyard.context import RequestContext
from shipyard.errors import InvalidArgument
from shipyard.sdk import session
from shipyard.security import service
from shipyard.security.service import CreatedToken, GrantInfo, PrincipalInfo, TokenInfo
from shipyard.store import Store
from shipyard.validation import check_name

if TYPE_CHECKING:
    from shipyard.client.http import HttpBackend

__all__ = [
    "CreatedToken",
    "GrantInfo",
    "PrincipalInfo",
    "TokenInfo",
    "create_token",
    "create_user",
    "credentials_file",
    "disable_user",
    "enable_user",
    "grant",
    "list_grants",
    "list_tokens",
    "list_users",
    "login",
    "revoke_grant",
    "revoke_token",
]


def create_user(name: str, kind: str = "user", password: str | None = None,
                admin: bool = False) -> PrincipalInfo:
    """Create a user (``kind="user"``, may have a password for console logins) or a service
    account (``kind="service"``, tokens only). Remote mode needs an admin token."""
    backend = session.current()
    if (http := _remote(backend)) is not None:
        from shipyard.client import identity as remote

        return remote.create_user(http, name, kind, password=password, admin=admin)
    store = _store(backend)
    if kind not in ("user", "service"):
        raise InvalidArgument(f"kind {str(kind)[:40]!r} is not valid: choose user or service",
                              field="kind")
    return service.create_principal(store, _ctx(""), name,
                                    "service" if kind == "service" else "user",
                                    password=password, is_admin=admin)


def list_users() -> list[PrincipalInfo]:
    """Every user and service account, by name."""
    backend = session.current()
    if (http := _remote(backend)) is not None:
        from shipyard.client import identity as remote

        return remote.list_users(http)
    store = _store(backend)
    return service.list_principals(store)


def disable_user(name: str) -> PrincipalInfo:
    """Disable a principal: every token it holds stops working on the next request."""
    backend = session.current()
    if (http := _remote(backend)) is not None:
        from shipyard.client import identity as remote

        return remote.disable_user(http, name)
    store = _store(backend)
    return service.disable_principal(store, _ctx(""), name)


def enable_user(name: str) -> PrincipalInfo:
    """Enable a disabled principal again (its unexpired, unrevoked tokens work again)."""
    backend = session.current()
    if (http := _remote(backend)) is not None:
        from shipyard.client import identity as remote

        return remote.enable_user(http, name)
    store = _store(backend)
    return service.enable_principal(store, _ctx(""), name)


def create_token(name: str, principal: str | None = None, scopes: Iterable[str] | None = None,
                 expires_in_days: int | None = None) -> CreatedToken:
    """Issue an API token; ``.plaintext`` is shown this once and stored nowhere.

    ``principal=None`` is the caller (remote mode) and must be named in local mode, where
    there is no caller identity. ``scopes`` (``read``, ``predict``, ``write``, ``admin``)
    narrow what the owner's roles allow; ``expires_in_days=None`` never expires.
    """
    if expires_in_days is not None and (
            isinstance(expires_in_days, bool) or not isinstance(expires_in_days, int)
            or expires_in_days < 1):
        raise InvalidArgument("expires_in_days must be a whole number of days, 1 or more",
                              field="expires_in_days")
    chosen = list(scopes) if scopes is not None else None
    backend = session.current()
    if (http := _remote(backend)) is not None:
        from shipyard.client import identity as remote

        return remote.create_token(http, name, principal=principal, scopes=chosen,
                                   expires_in_days=expires_in_days)
    store = _store(backend)
    if principal is None:
        raise InvalidArgument("local mode has no signed-in principal: name the token's "
                              "owner with principal=...", field="principal")
    expires = timedelta(days=expires_in_days) if expires_in_days is not None else None
    return service.create_token(store, _ctx(""), principal, name=name,
                                scopes=chosen, expires_in=expires)


def list_tokens(principal: str | None = None) -> list[TokenInfo]:
    """Tokens, newest first (never their plaintext). Remote mode: your own unless you are an
    admin, who sees everyone's (or ``principal``'s)."""
    backend = session.current()
    if (http := _remote(backend)) is not None:
        from shipyard.client import identity as remote

        return remote.list_tokens(http, principal=principal)
    store = _store(backend)
    return service.list_tokens(store, principal_name=principal)


def revoke_token(token_id: str) -> TokenInfo:
    """Revoke a token by id (the 12 hex characters after ``sy_``); it fails from the next
    request on. Revoking twice keeps the first revocation time."""
    backend = session.current()
    if (http := _remote(backend)) is not None:
        from shipyard.client import identity as remote

        return remote.revoke_token(http, token_id)
    store = _store(backend)
    return service.revoke_token(store, _ctx(""), token_id)


def grant(principal: str, role: str, project: str | None = None) -> GrantInfo:
    """Give ``principal`` ``role`` (viewer, user, editor, manager) in ``project``, replacing
    any role it had there."""
    backend = session.current()
    where = _project(backend, project)
    if (http := _remote(backend)) is not None:
        from shipyard.client import identity as remote

        return remote.grant(http, principal, role, where)
    store = _store(backend)
    return service.grant(store, _ctx(where), principal, where, role)


def revoke_grant(principal: str, project: str | None = None) -> None:
    """Take away ``principal``'s role in ``project`` (``NotFound`` if it had none)."""
    backend = session.current()
    where = _project(backend, project)
    if (http := _remote(backend)) is not None:
        from shipyard.client import identity as remote

        remote.revoke_grant(http, principal, where)
        return
    store = _store(backend)
    service.revoke_grant(store, _ctx(where), principal, where)


def list_grants(project: str | None = None) -> list[GrantInfo]:
    """Who holds which role in ``project``, by principal name."""
    backend = session.current()
    where = _project(backend, project)
    if (http := _remote(backend)) is not None:
        from shipyard.client import identity as remote

        return remote.list_grants(http, where)
    store = _store(backend)
    return service.list_grants(store, project=where)


def login(uri: str, name: str, password: str, *, save: bool = True,
          home: str | os.PathLike[str] | None = None) -> str:
    """Log in to the server at ``uri`` with a user name and password; returns the token.

    With ``save=True`` the token is also written to ``$SHIPYARD_HOME/credentials-<host>``
    (mode 0600, replaced atomically) so later sessions against that server can use it.
    """
    from shipyard.client import identity as remote

    if not uri.startswith(("http://", "https://")):
        raise InvalidArgument("login needs a server URL (http://host:port)", field="uri")
    created = remote.login(uri, name, password)
    if save:
        base = Settings.resolve(home=home).home
        _write_private(credentials_file(base, uri), created.plaintext)
    return created.plaintext


def credentials_file(home: Path, uri: str) -> Path:
    """Where :func:`login` keeps the token for the server at ``uri``:
    ``home/credentials-<host>[-<port>]`` (one file per server)."""
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    # Only characters that are safe in a file name on every platform; an IPv6 address's
    # colons become underscores.
    host = re.sub(r"[^a-z0-9.-]", "_", host).strip(".") or "server"
    suffix = f"-{parts.port}" if parts.port else ""
    return Path(home) / f"credentials-{host}{suffix}"


# -- plumbing --------------------------------------------------------------------------------------
def _remote(backend: Any) -> HttpBackend | None:
    from shipyard.client.http import HttpBackend

    return backend if isinstance(backend, HttpBackend) else None


def _store(backend: Any) -> Store:
    # Local mode's backend owns the store it opened.
    store = getattr(backend, "store", None)
    if not isinstance(store, Store):
        raise InvalidArgument("the SDK session has neither a server nor a metadata store: "
                              "call shipyard.init(uri=...)", field="uri")
    return store


def _ctx(project: str) -> RequestContext:
    return RequestContext(project=project)


def _project(backend: Any, project: str | None) -> str:
    return check_name(project if project is not None else backend.project, "project")


def _write_private(target: Path, token: str) -> None:
    ensure_home(target.parent)
    # mkstemp creates the file 0600 from the start, so the token is never readable by others.
    fd, tmp_name = tempfile.mkstemp(prefix=".credentials.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write("# Shipyard API token from shipyard login. Keep it secret.\n")
            handle.write(token + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
