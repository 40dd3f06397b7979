"""Whether a driver error means the database server is away (restarting, stopping,
unreachable), which a caller should retry shortly, rather than a fault of the request.

The server answers such errors 503 with Retry-After (``server.errors``); a training loop
logging through the SDK retries them. A restart of PostgreSQL takes a few seconds.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from shipyard.errors import Unavailable

__all__ = ["RETRY_AFTER", "database_unavailable"]

log = logging.getLogger(__name__)

RETRY_AFTER = 2.0


def database_unavailable(exc: BaseException) -> Unavailable | None:
    """``Unavailable`` when ``exc`` says the database cannot be reached now; None otherwise.

    * PostgreSQL: any ``OperationalError`` or ``InterfaceError`` from psycopg: connection
      refused or reset, the server shutting down or starting (SQLSTATE class 08,
      57P01-57P03), too many connections (53300);
    * any driver error that invalidated its connection (a disconnect mid-statement);
    * SQLAlchemy's pool timing out (every connection busy).

    SQLite's operational errors concern its file, not a server: the store translates the
    ones worth retrying (``database is locked`` past the busy timeout) itself.
    """
    if isinstance(exc, PoolTimeout):
        return Unavailable("every database connection is busy; retry shortly", retry_after=1)
    if not isinstance(exc, DBAPIError):
        return None
    from_psycopg = type(exc.orig).__module__.split(".")[0] == "psycopg"
    if exc.connection_invalidated or (
        from_psycopg and isinstance(exc, OperationalError | InterfaceError)
    ):
        log.warning("the database is unavailable: %s", str(exc.orig).splitlines()[0][:200])
        return Unavailable(
            "the database is unavailable (restarting or unreachable); retry shortly",
            retry_after=RETRY_AFTER)
    return None
