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

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.config import Settings
from shipyard.errors import InvalidArgument
from shipyard.sdk import session
from shipyard.security.credentials import login_credentials_path, write_login_credentials
from shipyard.security.models import CreatedToken, GrantInfo, PrincipalInfo, TokenInfo
from shipyard.validation import check_name

if TYPE_CHECKING:
    from shipyard.security.port import IdentityPort

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
    return _identity().create_user(name, kind, password=password, admin=admin)


def list_users() -> list[PrincipalInfo]:
    """Every user and service account, by name."""
    return _identity().list_users()


def disable_user(name: str) -> PrincipalInfo:
    """Disable a principal: every token it holds stops working on the next request."""
    return _identity().disable_user(name)


def enable_user(name: str) -> PrincipalInfo:
    """Enable a disabled principal again (its unexpired, unrevoked tokens work again)."""
    return _identity().enable_user(name)


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
    return _identity().create_token(name, principal=principal,
                                    scopes=list(scopes) if scopes is not None else None,
                                    expires_in_days=expires_in_days)


def list_tokens(principal: str | None = None) -> list[TokenInfo]:
    """Tokens, newest first (never their plaintext). Remote mode: your own unless you are an
    admin, who sees everyone's (or ``principal``'s)."""
    return _identity().list_tokens(principal=principal)


def revoke_token(token_id: str) -> TokenInfo:
    """Revoke a token by id (the 12 hex characters after ``sy_``); it fails from the next
    request on. Revoking twice keeps the first revocation time."""
    return _identity().revoke_token(token_id)


def grant(principal: str, role: str, project: str | None = None) -> GrantInfo:
    """Give ``principal`` ``role`` (viewer, user, editor, manager) in ``project``, replacing
    any role it had there."""
    return _identity().grant(principal, role, _project(project))


def revoke_grant(principal: str, project: str | None = None) -> None:
    """Take away ``principal``'s role in ``project`` (``NotFound`` if it had none)."""
    _identity().revoke_grant(principal, _project(project))


def list_grants(project: str | None = None) -> list[GrantInfo]:
    """Who holds which role in ``project``, by principal name."""
    return _identity().list_grants(_project(project))


def login(uri: str, name: str, password: str, *, save: bool = True,
          home: str | os.PathLike[str] | None = None) -> str:
    """Log in to the server at ``uri`` with a user name and password; returns the token.

    With ``save=True`` the token is also written to ``$SHIPYARD_HOME/credentials-<host>``
    (mode 0600, replaced atomically) so later sessions against that server can use it.
    """
    from shipyard.client.identity import login as remote_login

    if not uri.startswith(("http://", "https://")):
        raise InvalidArgument("login needs a server URL (http://host:port)", field="uri")
    created = remote_login(uri, name, password)
    if save:
        write_login_credentials(Settings.resolve(home=home).home, uri, created.plaintext)
    return created.plaintext


def credentials_file(home: Path, uri: str) -> Path:
    """Where :func:`login` keeps the token for the server at ``uri``:
    ``home/credentials-<host>[-<port>]`` (one file per server)."""
    return login_credentials_path(home, uri)


def _identity() -> IdentityPort:
    return session.current().identity


def _project(project: str | None) -> str:
    return check_name(project if project is not None else session.current().project,
                      "project")
