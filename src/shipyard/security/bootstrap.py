"""The first start: create the admin and hand its token over through a 0600 file."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Connection, insert

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import (
    FailedPrecondition,
)
from shipyard.ids import new_id
from shipyard.security.authn import insert_token
from shipyard.security.credentials import read_credentials, write_credentials
from shipyard.security.principals import admin_count, principal_row
from shipyard.security.tokens import (
    Scope,
)
from shipyard.store import Store
from shipyard.store.dialect import advisory_lock
from shipyard.store.schema import principals
from shipyard.store.types import utcnow

__all__ = [
    "ADMIN_NAME",
    "bootstrap_admin",
]

log = logging.getLogger(__name__)

ADMIN_NAME = "admin"
# "Shipyard" in ASCII: the PostgreSQL advisory lock key that serialises bootstrap_admin.
_BOOTSTRAP_LOCK = 0x5368697079617264


def bootstrap_admin(store: Store, home: Path, *, pepper: bytes | None = None) -> str | None:
    """On a server's first start, create the ``admin`` principal and an admin token, write
    the token to ``home/credentials`` (0600, atomically) and return it.

    Returns None when an admin already exists (logging a warning if the credentials
    file is then missing). Safe when several servers start at once on one store: the check
    and the creation happen in one write transaction under a lock, so one admin is made.
    """
    home = Path(home)

    def work(conn: Connection) -> str | None:
        # Plain PostgreSQL transactions would let two servers both see "no admin"; the lock
        # is released at commit.
        advisory_lock(conn, _BOOTSTRAP_LOCK)
        # Any admin, even a disabled one, means this is not a first start: re-enabling it is
        # an administrator's decision, not something a restart may do behind their back.
        if admin_count(conn, enabled_only=False) > 0:
            return None
        if principal_row(conn, ADMIN_NAME) is not None:
            raise FailedPrecondition(
                f"no admin exists but a non-admin principal is named {ADMIN_NAME!r}: rename "
                "or remove it, then restart the server to create the first admin"
            )
        ctx = RequestContext(project="", actor="shipyard-bootstrap")
        principal_id = new_id()
        conn.execute(
            insert(principals).values(
                id=principal_id,
                name=ADMIN_NAME,
                kind="user",
                password_hash=None,
                is_admin=True,
                disabled=False,
                created_at=utcnow(),
            )
        )
        audit.record(
            conn,
            ctx,
            "principals.create",
            f"principals/{ADMIN_NAME}",
            detail={"kind": "user", "is_admin": True},
        )
        issued = insert_token(
            conn, principal_id, "bootstrap", frozenset({Scope.ADMIN}), None, pepper
        )
        audit.record(
            conn,
            ctx,
            "tokens.create",
            f"principals/{ADMIN_NAME}/tokens/{issued.id}",
            detail={"name": "bootstrap", "scopes": [Scope.ADMIN.value], "expires_at": None},
        )
        # Written before the commit: if writing fails, no admin exists that nobody holds a
        # token for, and the next start tries again.
        write_credentials(home, issued.plaintext)
        return issued.plaintext

    token = store.retry_write(work)
    if token is None and read_credentials(home) is None:
        log.warning(
            "an admin exists but %s holds no token: create one with the admin's credentials, "
            "or from a shell on the server with direct access to the store",
            home / "credentials",
        )
    return token
