"""Security primitives, independent of storage and of the web framework.

One module per concept:

* :mod:`~shipyard.security.tokens`: API tokens (``sy_<lookup>_<secret>``), hashing, scopes
* :mod:`~shipyard.security.passwords`: argon2id password hashes
* :mod:`~shipyard.security.roles`: per-project roles and the permission table
* :mod:`~shipyard.security.ratelimit`: an in-memory login throttle
* :mod:`~shipyard.security.ssrf`: the one guard for outbound URLs
* :mod:`~shipyard.security.tripwire`: makes unpickling fail in the server process (tests)
* :mod:`~shipyard.security.headers`: security headers, Host/Origin/Content-Type checks

Nothing here imports FastAPI, Starlette, SQLAlchemy or Typer, does I/O at import time or
reads the environment; the server and the store wire these in.

Identity over the metadata store (principals, tokens, logins, grants, the first admin) is in
:mod:`shipyard.security.service`, imported explicitly because it needs the store.
"""

from __future__ import annotations

from shipyard.security.headers import (
    API_SECURITY_HEADERS,
    CONSOLE_SECURITY_HEADERS,
    content_type_allowed,
    host_allowed,
    is_same_origin,
    mutation_allowed,
)
from shipyard.security.passwords import (
    MIN_PASSWORD_LENGTH,
    hash_password,
    needs_rehash,
    verify_password,
    verify_password_dummy,
)
from shipyard.security.ratelimit import RateLimited, RateLimiter
from shipyard.security.roles import (
    PROJECT_ROLES,
    ROLE_PERMISSIONS,
    Permission,
    Role,
    highest_role,
    parse_role,
    role_allows,
)
from shipyard.security.ssrf import (
    BlockedURL,
    OutboundPolicy,
    SafeHttpClient,
    check_url,
    guarded_post,
)
from shipyard.security.tokens import (
    TOKEN_PREFIX,
    IssuedToken,
    ParsedToken,
    Scope,
    effective_permissions,
    ensure_active,
    hash_token,
    new_token,
    parse_scopes,
    parse_token,
    verify_token,
)
from shipyard.security.tripwire import (
    Tripwire,
    UnsafeDeserialization,
    deserialization_tripwire,
)

__all__ = [
    "API_SECURITY_HEADERS",
    "CONSOLE_SECURITY_HEADERS",
    "MIN_PASSWORD_LENGTH",
    "PROJECT_ROLES",
    "ROLE_PERMISSIONS",
    "TOKEN_PREFIX",
    "BlockedURL",
    "IssuedToken",
    "OutboundPolicy",
    "ParsedToken",
    "Permission",
    "RateLimited",
    "RateLimiter",
    "Role",
    "SafeHttpClient",
    "Scope",
    "Tripwire",
    "UnsafeDeserialization",
    "check_url",
    "content_type_allowed",
    "deserialization_tripwire",
    "effective_permissions",
    "ensure_active",
    "guarded_post",
    "hash_password",
    "hash_token",
    "highest_role",
    "host_allowed",
    "is_same_origin",
    "mutation_allowed",
    "needs_rehash",
    "new_token",
    "parse_role",
    "parse_scopes",
    "parse_token",
    "role_allows",
    "verify_password",
    "verify_password_dummy",
    "verify_token",
]
