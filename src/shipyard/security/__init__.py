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
reads the environment (the names below load on first use); the server and the store wire these in.

Identity over the metadata store (principals, tokens, logins, grants, the first admin) is in
:mod:`shipyard.security.service`, imported explicitly because it needs the store.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.security.headers import (
        API_SECURITY_HEADERS as API_SECURITY_HEADERS,
    )
    from shipyard.security.headers import (
        CONSOLE_SECURITY_HEADERS as CONSOLE_SECURITY_HEADERS,
    )
    from shipyard.security.headers import (
        content_type_allowed as content_type_allowed,
    )
    from shipyard.security.headers import (
        host_allowed as host_allowed,
    )
    from shipyard.security.headers import (
        is_same_origin as is_same_origin,
    )
    from shipyard.security.headers import (
        mutation_allowed as mutation_allowed,
    )
    from shipyard.security.passwords import (
        MIN_PASSWORD_LENGTH as MIN_PASSWORD_LENGTH,
    )
    from shipyard.security.passwords import (
        hash_password as hash_password,
    )
    from shipyard.security.passwords import (
        needs_rehash as needs_rehash,
    )
    from shipyard.security.passwords import (
        verify_password as verify_password,
    )
    from shipyard.security.passwords import (
        verify_password_dummy as verify_password_dummy,
    )
    from shipyard.security.ratelimit import (
        RateLimited as RateLimited,
    )
    from shipyard.security.ratelimit import (
        RateLimiter as RateLimiter,
    )
    from shipyard.security.roles import (
        PROJECT_ROLES as PROJECT_ROLES,
    )
    from shipyard.security.roles import (
        ROLE_PERMISSIONS as ROLE_PERMISSIONS,
    )
    from shipyard.security.roles import (
        Permission as Permission,
    )
    from shipyard.security.roles import (
        Role as Role,
    )
    from shipyard.security.roles import (
        highest_role as highest_role,
    )
    from shipyard.security.roles import (
        parse_role as parse_role,
    )
    from shipyard.security.roles import (
        role_allows as role_allows,
    )
    from shipyard.security.ssrf import (
        BlockedURL as BlockedURL,
    )
    from shipyard.security.ssrf import (
        OutboundPolicy as OutboundPolicy,
    )
    from shipyard.security.ssrf import (
        SafeHttpClient as SafeHttpClient,
    )
    from shipyard.security.ssrf import (
        check_url as check_url,
    )
    from shipyard.security.ssrf import (
        guarded_post as guarded_post,
    )
    from shipyard.security.tokens import (
        TOKEN_PREFIX as TOKEN_PREFIX,
    )
    from shipyard.security.tokens import (
        IssuedToken as IssuedToken,
    )
    from shipyard.security.tokens import (
        ParsedToken as ParsedToken,
    )
    from shipyard.security.tokens import (
        Scope as Scope,
    )
    from shipyard.security.tokens import (
        effective_permissions as effective_permissions,
    )
    from shipyard.security.tokens import (
        ensure_active as ensure_active,
    )
    from shipyard.security.tokens import (
        hash_token as hash_token,
    )
    from shipyard.security.tokens import (
        new_token as new_token,
    )
    from shipyard.security.tokens import (
        parse_scopes as parse_scopes,
    )
    from shipyard.security.tokens import (
        parse_token as parse_token,
    )
    from shipyard.security.tokens import (
        verify_token as verify_token,
    )
    from shipyard.security.tripwire import (
        Tripwire as Tripwire,
    )
    from shipyard.security.tripwire import (
        UnsafeDeserialization as UnsafeDeserialization,
    )
    from shipyard.security.tripwire import (
        deserialization_tripwire as deserialization_tripwire,
    )

# Each public name and its module, imported on first use: the HTTP client needs only the
# roles, scopes and value types, not argon2 or the outbound HTTP guard.
_EXPORTS = {
    "API_SECURITY_HEADERS": "headers",
    "CONSOLE_SECURITY_HEADERS": "headers",
    "content_type_allowed": "headers",
    "host_allowed": "headers",
    "is_same_origin": "headers",
    "mutation_allowed": "headers",
    "MIN_PASSWORD_LENGTH": "passwords",
    "hash_password": "passwords",
    "needs_rehash": "passwords",
    "verify_password": "passwords",
    "verify_password_dummy": "passwords",
    "RateLimited": "ratelimit",
    "RateLimiter": "ratelimit",
    "PROJECT_ROLES": "roles",
    "ROLE_PERMISSIONS": "roles",
    "Permission": "roles",
    "Role": "roles",
    "highest_role": "roles",
    "parse_role": "roles",
    "role_allows": "roles",
    "BlockedURL": "ssrf",
    "OutboundPolicy": "ssrf",
    "SafeHttpClient": "ssrf",
    "check_url": "ssrf",
    "guarded_post": "ssrf",
    "TOKEN_PREFIX": "tokens",
    "IssuedToken": "tokens",
    "ParsedToken": "tokens",
    "Scope": "tokens",
    "effective_permissions": "tokens",
    "ensure_active": "tokens",
    "hash_token": "tokens",
    "new_token": "tokens",
    "parse_scopes": "tokens",
    "parse_token": "tokens",
    "verify_token": "tokens",
    "Tripwire": "tripwire",
    "UnsafeDeserialization": "tripwire",
    "deserialization_tripwire": "tripwire",
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard.security' has no attribute {name!r}")
    return getattr(importlib.import_module(f"shipyard.security.{module}"), name)
