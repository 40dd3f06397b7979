"""The metadata store: SQLAlchemy 2 Core over SQLite (default) or PostgreSQL.

Services receive a ``Store`` and use ``store.write()`` / ``store.read()`` transactions; the
store knows the tables but no service logic.
"""

from shipyard.store.engine import Store, open_store

__all__ = ["Store", "open_store"]
