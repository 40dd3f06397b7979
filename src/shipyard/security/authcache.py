"""An in-process cache of token lookups and project roles, so authorization stays cheap.

Why: reading the token row, its principal and the caller's grant costs a database round
trip each (about a millisecond on a loaded SQLite, more on PostgreSQL), ten times the
0.1 ms issue 11 allows per request. Why it stays safe:

* **This process sees every change at once.** The service functions that revoke a token,
  disable or enable a principal or change a grant call :func:`AuthCache.forget_token`,
  :func:`AuthCache.forget_principal` or :func:`AuthCache.forget_project` after their
  transaction commits, so the very next request here reads the database again. The cache is
  keyed by database (not by ``Store`` object), so a second ``Store`` on the same database in
  this process invalidates the server's entries too.
* **Other processes on the same database are stale for at most ``ttl`` seconds** (one by
  default): every entry is re-read once it is that old. Several server workers sharing one
  database therefore refuse a revoked token within a second everywhere, and on the next
  request in the worker that revoked it.
* **A cache hit still proves the secret**: the presented token is hashed and compared in
  constant time with the cached hash, and expiry is checked against the clock on every hit.
  Only successful authentications are cached, never an unknown or failing token.
* **No stale write-back**: a lookup that started before an invalidation is not stored
  (a per-database generation counter), so a read racing a revocation cannot re-insert the
  revoked row after the revocation forgot it.

The one thing a hit reveals that a miss does not is timing: a recently used lookup id
answers faster. Lookup ids are not secret (they are listed to administrators and appear in
the audit log); the secret still costs one hash and one constant-time comparison either way.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Generic, TypeVar

from shipyard.security.roles import Role
from shipyard.security.tokens import Scope

if TYPE_CHECKING:
    from shipyard.store import Store

__all__ = ["AUTH_CACHE", "AuthCache", "CachedToken", "database_key"]

DEFAULT_TTL = 1.0
DEFAULT_MAX_ENTRIES = 10_000

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class CachedToken:
    """What :func:`~shipyard.security.authn.authenticate` needs from a token row."""

    hash: str
    expires_at: datetime | None
    principal_id: str
    name: str
    kind: str
    is_admin: bool
    scopes: frozenset[Scope]
    project: str | None = None


@dataclass(frozen=True)
class _Entry(Generic[V]):
    value: V
    stored_at: float


class AuthCache:
    """Token rows by (database, lookup id) and roles by (database, principal, project)."""

    def __init__(self, ttl: float = DEFAULT_TTL, max_entries: int = DEFAULT_MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str], _Entry[CachedToken]] = {}
        self._roles: dict[tuple[str, str, str], _Entry[Role | None]] = {}
        self._generations: dict[str, int] = {}

    # -- reads -----------------------------------------------------------------------------

    def generation(self, db: str) -> int:
        """Take this before reading the database; pass it to ``put_*`` afterwards."""
        return self._generations.get(db, 0)

    def token(self, db: str, lookup: str) -> CachedToken | None:
        entry = self._tokens.get((db, lookup))
        return entry.value if entry is not None and self._fresh(entry) else None

    def role(self, db: str, principal_id: str, project: str) -> tuple[bool, Role | None]:
        """(True, role) on a hit, where role may be None (no grant); (False, None) on a miss."""
        entry = self._roles.get((db, principal_id, project))
        if entry is None or not self._fresh(entry):
            return False, None
        return True, entry.value

    # -- writes ----------------------------------------------------------------------------

    def put_token(self, db: str, lookup: str, value: CachedToken, generation: int) -> None:
        self._put(self._tokens, (db, lookup), value, db, generation)

    def put_role(self, db: str, principal_id: str, project: str, value: Role | None,
                 generation: int) -> None:
        self._put(self._roles, (db, principal_id, project), value, db, generation)

    def forget_token(self, db: str, lookup: str) -> None:
        """A token was revoked: the next request with it reads the database."""
        with self._lock:
            self._bump(db)
            self._tokens.pop((db, lookup), None)

    def forget_principal(self, db: str, principal_id: str) -> None:
        """A principal was disabled or enabled: drop its tokens and roles."""
        with self._lock:
            self._bump(db)
            for key in [k for k, e in self._tokens.items()
                        if k[0] == db and e.value.principal_id == principal_id]:
                del self._tokens[key]
            for role_key in [k for k in self._roles if k[0] == db and k[1] == principal_id]:
                del self._roles[role_key]

    def forget_project(self, db: str, project: str) -> None:
        """A role in ``project`` was granted, changed or taken away."""
        with self._lock:
            self._bump(db)
            for key in [k for k in self._roles if k[0] == db and k[2] == project]:
                del self._roles[key]

    def clear(self) -> None:
        with self._lock:
            for db in list(self._generations):
                self._bump(db)
            self._tokens.clear()
            self._roles.clear()

    # -- machinery -------------------------------------------------------------------------

    def _fresh(self, entry: _Entry[V]) -> bool:
        return self._clock() - entry.stored_at < self.ttl

    def _bump(self, db: str) -> None:
        self._generations[db] = self._generations.get(db, 0) + 1

    def _put(self, table: dict[K, _Entry[V]], key: K, value: V,
             db: str, generation: int) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            # Something was invalidated on this database since the caller read it: what it
            # read may be the very row that was just revoked.
            if self._generations.get(db, 0) != generation:
                return
            if len(table) >= self.max_entries:
                # Oldest first (dicts keep insertion order); bounded whatever callers send.
                table.pop(next(iter(table)))
            table[key] = _Entry(value, self._clock())


_keys: weakref.WeakKeyDictionary[Store, str] = weakref.WeakKeyDictionary()


def database_key(store: Store) -> str:
    """Which database ``store`` opens (its URL without the password): the cache's key, so
    that every ``Store`` on one database shares entries and invalidations."""
    key = _keys.get(store)
    if key is None:
        key = store.engine.url.render_as_string(hide_password=True)
        _keys[store] = key
    return key


AUTH_CACHE = AuthCache()
"""The process-wide cache :func:`~shipyard.security.authn.authenticate` and
:func:`~shipyard.security.authz.role_in` use. Process-wide on purpose: invalidation must
reach every ``Store`` this process opened on the same database."""
