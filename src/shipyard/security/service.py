"""Identity over the metadata store: the one import the server and CLI need.

Principals (:mod:`~shipyard.security.principals`), API tokens and logins
(:mod:`~shipyard.security.authn`), grants and authorization
(:mod:`~shipyard.security.authz`) and the first start (:mod:`~shipyard.security.bootstrap`).
The server calls :func:`authenticate` on every request, then :func:`require` (or
:func:`role_in` and :func:`authorize`) with the permission its route policy names.

Every mutation is one write transaction that also writes its audit row, so the row commits or
rolls back with the change. Guarantees:

* Token lookups and roles are cached in-process for at most a second
  (:mod:`~shipyard.security.authcache`), to keep authorization under 0.1 ms a request.
  Revoking a token, disabling a principal or changing a grant through these functions
  forgets the affected entries after the commit, so it takes effect on the next request in
  this process; other processes sharing the database see it within the TTL (one second).
* :func:`authenticate` does the same work (one hash, one constant-time comparison) whether or
  not a token's lookup id exists, and only a caller holding the real secret learns that a
  token is revoked or expired; everyone else sees "unknown API token".
* Passwords are argon2id; a login for an unknown user costs what a wrong password does, and
  logins are throttled per client and user name.
* :func:`bootstrap_admin` creates at most one admin even when several servers start at once.
"""

from __future__ import annotations

from shipyard.security.authn import (
    LOGIN_LIMITER,
    LOGIN_TOKEN_LIFETIME,
    CreatedToken,
    TokenInfo,
    authenticate,
    create_token,
    get_token,
    issue_run_token,
    list_tokens,
    login,
    revoke_token,
)
from shipyard.security.authz import (
    GrantInfo,
    authorize,
    grant,
    list_grants,
    require,
    revoke_grant,
    role_in,
    server_role,
)
from shipyard.security.bootstrap import ADMIN_NAME, bootstrap_admin
from shipyard.security.credentials import read_credentials
from shipyard.security.principals import (
    Principal,
    PrincipalInfo,
    PrincipalKind,
    create_principal,
    disable_principal,
    enable_principal,
    list_principals,
)

__all__ = [
    "ADMIN_NAME",
    "LOGIN_LIMITER",
    "LOGIN_TOKEN_LIFETIME",
    "CreatedToken",
    "GrantInfo",
    "Principal",
    "PrincipalInfo",
    "PrincipalKind",
    "TokenInfo",
    "authenticate",
    "authorize",
    "bootstrap_admin",
    "create_principal",
    "create_token",
    "disable_principal",
    "enable_principal",
    "get_token",
    "grant",
    "issue_run_token",
    "list_grants",
    "list_principals",
    "list_tokens",
    "login",
    "read_credentials",
    "require",
    "revoke_grant",
    "revoke_token",
    "role_in",
    "server_role",
]
