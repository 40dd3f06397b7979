"""Authentication: API tokens over the store, and password logins that issue them.

Token lookups are cached for at most a second (:mod:`~shipyard.security.authcache`), and
revoking a token or disabling a principal here forgets them, so a revocation counts from the
next request on in this process and within a second in others sharing the database. The
same work (one hash, one constant-time comparison) is done whether or not a lookup id
exists, and only the holder of the real secret learns that a token is revoked or expired.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unauthenticated,
)
from shipyard.security.authcache import AUTH_CACHE, CachedToken, database_key
from shipyard.security.models import CreatedToken, TokenInfo
from shipyard.security.passwords import (
    hash_password,
    needs_rehash,
    verify_password,
    verify_password_dummy,
)
from shipyard.security.principals import Principal, principal_row, require_principal
from shipyard.security.ratelimit import RateLimiter
from shipyard.security.tokens import (
    Scope,
    ensure_active,
    new_token,
    parse_scopes,
    parse_token,
    verify_token,
)
from shipyard.store import Store
from shipyard.store.schema import principals, tokens
from shipyard.store.types import utcnow
from shipyard.validation import check_name

__all__ = [
    "LOGIN_LIMITER",
    "LOGIN_TOKEN_LIFETIME",
    "CreatedToken",
    "TokenInfo",
    "authenticate",
    "create_token",
    "get_token",
    "issue_run_token",
    "list_tokens",
    "login",
    "revoke_token",
]

LOGIN_TOKEN_LIFETIME = timedelta(hours=8)
LOGIN_LIMITER = RateLimiter(capacity=5, period=60.0)
"""The default login throttle (5 attempts per client and user name per minute). It is per
process; a server should build its own and pass it to :func:`login`."""

# Compared against when a lookup id matches no row, so that path costs what a real one does.
_DUMMY_HASH = "0" * 64
_TOKEN_ID_LENGTH = 12


def create_token(
    store: Store,
    ctx: RequestContext,
    principal_name: str,
    *,
    name: str,
    scopes: Iterable[str] | None = None,
    expires_in: timedelta | None = None,
    pepper: bytes | None = None,
) -> CreatedToken:
    """Issue an API token for a principal. ``scopes`` default to ``admin`` for an admin and
    ``write`` (everything its roles allow) otherwise; ``expires_in=None`` never expires."""
    check_name(principal_name, "principal")
    check_name(name, "name")
    if expires_in is not None and expires_in <= timedelta(0):
        raise InvalidArgument("expires_in must be a positive duration", field="expires_in")

    def work(conn: Connection) -> CreatedToken:
        owner = require_principal(conn, principal_name)
        if owner["disabled"]:
            raise FailedPrecondition(
                f"principal {principal_name!r} is disabled: enable it before issuing tokens"
            )
        chosen = _token_scopes(scopes, is_admin=bool(owner["is_admin"]))
        issued = insert_token(conn, owner["id"], name, chosen, expires_in, pepper)
        audit.record(
            conn,
            ctx,
            "tokens.create",
            f"principals/{principal_name}/tokens/{issued.id}",
            detail={"name": name, "scopes": sorted(chosen), "expires_at": _iso(issued.expires_at)},
        )
        return CreatedToken(
            id=issued.id,
            name=name,
            principal=principal_name,
            scopes=chosen,
            expires_at=issued.expires_at,
            plaintext=issued.plaintext,
        )

    return store.retry_write(work)


RUN_TOKEN_LIFETIME = timedelta(hours=24)


def issue_run_token(
    store: Store,
    ctx: RequestContext,
    principal_name: str,
    project: str,
    *,
    name: str,
    expires_in: timedelta = RUN_TOKEN_LIFETIME,
) -> CreatedToken:
    """A token for the steps of one pipeline run (DESIGN.md 6: steps hold no server
    credentials): owned by the run's submitter, bound to ``project`` (no role anywhere
    else, never admin) with scope ``write``, so a step may do what its submitter's role in
    that project allows, as long as that role lasts. Revoke it when the run ends."""
    check_name(principal_name, "principal")
    check_name(project, "project")

    def work(conn: Connection) -> CreatedToken:
        owner = require_principal(conn, principal_name)
        if owner["disabled"]:
            raise FailedPrecondition(
                f"principal {principal_name!r} is disabled: its pipeline runs cannot start"
            )
        scopes = frozenset({Scope.WRITE})
        issued = insert_token(conn, owner["id"], name, scopes, expires_in, None, project=project)
        audit.record(
            conn, ctx, "tokens.create", f"principals/{principal_name}/tokens/{issued.id}",
            detail={"name": name, "scopes": ["write"], "project": project,
                    "expires_at": _iso(issued.expires_at)},
        )  # fmt: skip
        return CreatedToken(
            id=issued.id, name=name, principal=principal_name, scopes=scopes,
            expires_at=issued.expires_at, plaintext=issued.plaintext,
        )  # fmt: skip

    return store.retry_write(work)


@dataclass(frozen=True)
class InsertedToken:
    id: str
    plaintext: str = field(repr=False)
    expires_at: datetime | None


def _token_scopes(scopes: Iterable[str] | None, *, is_admin: bool) -> frozenset[Scope]:
    if scopes is None:
        return frozenset({Scope.ADMIN if is_admin else Scope.WRITE})
    chosen = parse_scopes(scopes)
    if Scope.ADMIN in chosen and not is_admin:
        raise InvalidArgument(
            "scope 'admin' is only for admin principals: use read, predict or write",
            field="scopes",
        )
    return chosen


def insert_token(
    conn: Connection,
    principal_id: str,
    name: str,
    scopes: frozenset[Scope],
    expires_in: timedelta | None,
    pepper: bytes | None,
    *,
    project: str | None = None,
) -> InsertedToken:
    now = utcnow()
    expires_at = now + expires_in if expires_in is not None else None
    # The lookup id is 48 random bits: a clash is rare but possible, so draw again rather
    # than fail the request on the primary key.
    for _ in range(5):
        issued = new_token(pepper=pepper)
        taken = conn.execute(select(tokens.c.id).where(tokens.c.id == issued.lookup)).first()
        if taken is None:
            break
    else:  # pragma: no cover - 5 clashes in a row on 48 random bits
        raise FailedPrecondition("could not allocate a token id; retry")
    conn.execute(
        insert(tokens).values(
            id=issued.lookup,
            principal_id=principal_id,
            name=name,
            hash=issued.hash,
            scopes=sorted(s.value for s in scopes),
            created_at=now,
            expires_at=expires_at,
            revoked_at=None,
            project=project,
        )
    )
    return InsertedToken(id=issued.lookup, plaintext=issued.plaintext, expires_at=expires_at)


def list_tokens(
    store: Store, *, principal_name: str | None = None, include_inactive: bool = True
) -> list[TokenInfo]:
    """Tokens (of one principal, or all), newest first; never the plaintext or hash."""
    stmt = (
        select(*_TOKEN_COLUMNS)
        .join(principals, principals.c.id == tokens.c.principal_id)
        .order_by(tokens.c.created_at.desc(), tokens.c.id)
    )
    if principal_name is not None:
        check_name(principal_name, "principal")
        stmt = stmt.where(principals.c.name == principal_name)
    with store.read() as conn:
        infos = [_token_info(row._mapping) for row in conn.execute(stmt)]
    if include_inactive:
        return infos
    now = utcnow()
    return [info for info in infos if info.active(now)]


def get_token(store: Store, token_id: str) -> TokenInfo:
    """One token's metadata (to check its owner before revoking, for instance)."""
    _check_token_id(token_id)
    with store.read() as conn:
        row = conn.execute(
            select(*_TOKEN_COLUMNS)
            .join(principals, principals.c.id == tokens.c.principal_id)
            .where(tokens.c.id == token_id)
        ).first()
    if row is None:
        raise NotFound(f"token {token_id!r} not found", field="token_id")
    return _token_info(row._mapping)


def revoke_token(store: Store, ctx: RequestContext, token_id: str) -> TokenInfo:
    """Revoke a token; the next :func:`authenticate` with it fails. Revoking twice is a
    no-op that keeps the first revocation time."""
    _check_token_id(token_id)

    def work(conn: Connection) -> TokenInfo:
        row = conn.execute(
            select(*_TOKEN_COLUMNS)
            .join(principals, principals.c.id == tokens.c.principal_id)
            .where(tokens.c.id == token_id)
        ).first()
        if row is None:
            raise NotFound(f"token {token_id!r} not found", field="token_id")
        info = _token_info(row._mapping)
        if info.revoked_at is not None:
            return info
        now = utcnow()
        conn.execute(update(tokens).where(tokens.c.id == token_id).values(revoked_at=now))
        audit.record(conn, ctx, "tokens.revoke", f"principals/{info.principal}/tokens/{token_id}")
        return dataclasses.replace(info, revoked_at=now)

    revoked = store.retry_write(work)
    # After the commit: a request that reads the row from now on sees the revocation.
    AUTH_CACHE.forget_token(database_key(store), token_id)
    return revoked


_TOKEN_COLUMNS = (
    tokens.c.id,
    tokens.c.name,
    principals.c.name.label("principal"),
    tokens.c.scopes,
    tokens.c.created_at,
    tokens.c.expires_at,
    tokens.c.revoked_at,
)


def _token_info(row: Any) -> TokenInfo:
    return TokenInfo(
        id=row["id"],
        name=row["name"],
        principal=row["principal"],
        scopes=stored_scopes(row["scopes"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


def stored_scopes(value: object) -> frozenset[Scope]:
    # A scope name this version does not know (written by a newer one) grants nothing.
    if not isinstance(value, list):
        return frozenset()
    known = {s.value for s in Scope}
    return frozenset(Scope(v) for v in value if isinstance(v, str) and v in known)


def _check_token_id(token_id: object) -> None:
    if (
        not isinstance(token_id, str)
        or len(token_id) != _TOKEN_ID_LENGTH
        or any(c not in "0123456789abcdef" for c in token_id)
    ):
        raise InvalidArgument(
            "token_id must be the 12 hex characters after 'sy_' in the token", field="token_id"
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def authenticate(store: Store, plaintext: object, *, pepper: bytes | None = None) -> Principal:
    """The principal a presented token (``sy_...`` or ``Bearer sy_...``) belongs to.

    Raises ``Unauthenticated`` for a malformed, unknown, revoked or expired token or a
    disabled principal. A token that authenticated in the last second is checked against
    the in-process cache (:mod:`~shipyard.security.authcache`): its secret is still hashed
    and compared and its expiry checked; revoking it or disabling its owner through this
    module forgets it at once, and other processes re-read it within the cache's TTL.
    """
    parsed = parse_token(plaintext)
    db = database_key(store)
    cached = AUTH_CACHE.token(db, parsed.lookup)
    if cached is not None:
        if not verify_token(parsed.plaintext, cached.hash, pepper=pepper):
            raise Unauthenticated(_UNKNOWN)
        ensure_active(expires_at=cached.expires_at, revoked_at=None)
        return _principal(cached, parsed.lookup)
    generation = AUTH_CACHE.generation(db)
    with store.read() as conn:
        row = conn.execute(
            select(
                tokens.c.hash,
                tokens.c.scopes,
                tokens.c.expires_at,
                tokens.c.revoked_at,
                tokens.c.project,
                principals.c.id.label("principal_id"),
                principals.c.name,
                principals.c.kind,
                principals.c.is_admin,
                principals.c.disabled,
            )
            .join(principals, principals.c.id == tokens.c.principal_id)
            .where(tokens.c.id == parsed.lookup)
        ).first()
    found = row._mapping if row is not None else None
    stored_hash = found["hash"] if found is not None else _DUMMY_HASH
    # Always hash and compare, so an unknown lookup id costs what a wrong secret does.
    matches = verify_token(parsed.plaintext, stored_hash, pepper=pepper)
    if found is None or not matches:
        raise Unauthenticated(_UNKNOWN)
    ensure_active(expires_at=found["expires_at"], revoked_at=found["revoked_at"])
    if found["disabled"]:
        raise Unauthenticated(
            f"principal {found['name']!r} is disabled: ask an administrator to enable it"
        )
    entry = CachedToken(
        hash=found["hash"],
        expires_at=found["expires_at"],
        principal_id=found["principal_id"],
        name=found["name"],
        kind=found["kind"],
        is_admin=bool(found["is_admin"]),
        scopes=stored_scopes(found["scopes"]),
        project=found["project"],
    )
    AUTH_CACHE.put_token(db, parsed.lookup, entry, generation)
    return _principal(entry, parsed.lookup)


_UNKNOWN = "unknown API token: check it was copied whole, or create a new one"


def _principal(entry: CachedToken, lookup: str) -> Principal:
    return Principal(
        id=entry.principal_id,
        name=entry.name,
        kind=entry.kind,
        is_admin=entry.is_admin,
        token_id=lookup,
        scopes=entry.scopes,
        project=entry.project,
    )


def login(
    store: Store,
    name: str,
    password: str,
    client: str,
    *,
    limiter: RateLimiter | None = None,
    expires_in: timedelta = LOGIN_TOKEN_LIFETIME,
    ctx: RequestContext | None = None,
    pepper: bytes | None = None,
) -> CreatedToken:
    """Exchange a user name and password for a short-lived token (console logins).

    Attempts are limited per ``client`` (its address) and user name: past the limit this
    raises ``RateLimited`` (an ``Unavailable`` with ``retry_after``) before any password
    check. Bad credentials raise ``Unauthenticated`` with one message whether the user
    exists or not, and are recorded in the audit log as denied.
    """
    throttle = limiter if limiter is not None else LOGIN_LIMITER
    # Bounded so that a flood of huge names cannot grow the limiter's memory.
    key = f"{str(client)[:64]}\x00{_printable(name)}"
    throttle.check(key)
    audit_ctx = ctx or RequestContext(project="", actor=_printable(name), client=client[:64])
    row: dict[str, Any] | None = None
    if isinstance(name, str) and len(name) <= 128:
        with store.read() as conn:
            row = principal_row(conn, name)
    if row is None or row["password_hash"] is None:
        verify_password_dummy(password)
        _deny_login(store, audit_ctx, name, "bad credentials")
        raise Unauthenticated("invalid user name or password")
    if not verify_password(password, row["password_hash"]):
        _deny_login(store, audit_ctx, name, "bad credentials")
        raise Unauthenticated("invalid user name or password")
    if row["disabled"]:
        _deny_login(store, audit_ctx, name, "disabled")
        raise Unauthenticated(f"principal {name!r} is disabled: ask an administrator to enable it")
    throttle.reset(key)
    new_hash = hash_password(password) if needs_rehash(row["password_hash"]) else None

    def work(conn: Connection) -> CreatedToken:
        if new_hash is not None:
            conn.execute(
                update(principals)
                .where(principals.c.id == row["id"])
                .values(password_hash=new_hash)
            )
        scopes = frozenset({Scope.ADMIN if row["is_admin"] else Scope.WRITE})
        issued = insert_token(conn, row["id"], "login", scopes, expires_in, pepper)
        audit.record(
            conn,
            audit_ctx,
            "auth.login",
            f"principals/{name}/tokens/{issued.id}",
            detail={"expires_at": _iso(issued.expires_at)},
        )
        return CreatedToken(
            id=issued.id,
            name="login",
            principal=name,
            scopes=scopes,
            expires_at=issued.expires_at,
            plaintext=issued.plaintext,
        )

    return store.retry_write(work)


def _deny_login(store: Store, ctx: RequestContext, name: object, reason: str) -> None:
    def work(conn: Connection) -> None:
        audit.record(
            conn,
            ctx,
            "auth.login",
            f"principals/{_printable(name)}",
            outcome="denied",
            detail={"reason": reason},
        )

    store.retry_write(work)


def _printable(value: object) -> str:
    if not isinstance(value, str):
        return "?"
    return "".join(c if c.isprintable() else "?" for c in value[:128])
