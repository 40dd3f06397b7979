"""Regenerate the initial migration from ``schema.metadata`` (development only).

Until the first release, the schema lives in one initial revision; run
``python -m shipyard.store.regen`` after changing ``schema.py``. A test checks the migration
and the metadata agree.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

from shipyard.store.migrate import _MIGRATIONS, alembic_config

INITIAL = "0001"


def main() -> None:
    versions = _MIGRATIONS / "versions"
    for old in versions.glob("*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'empty.db'}")
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.revision(cfg, message="initial schema", autogenerate=True, rev_id=INITIAL)
        engine.dispose()


if __name__ == "__main__":
    main()
