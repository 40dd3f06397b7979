"""``shipyard.store.schema`` is the aggregate of one module per capability."""

from __future__ import annotations

import importlib
import pkgutil

from sqlalchemy import Table

import shipyard.store.schema as schema


def test_every_capability_module_is_part_of_the_aggregate() -> None:
    defined: dict[str, Table] = {}
    for info in pkgutil.iter_modules(schema.__path__):
        module = importlib.import_module(f"{schema.__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Table):
                assert value.metadata is schema.metadata, f"{info.name}: another MetaData"
                defined[value.name] = value
    # Everything a module defines is on the one MetaData (so Alembic sees it) and
    # re-exported by the aggregate under the name its module gives it.
    assert set(defined) == set(schema.metadata.tables)
    exported = [getattr(schema, name) for name in schema.__all__]
    exported_tables = {value for value in exported if isinstance(value, Table)}
    assert set(defined.values()) == exported_tables
    assert len(schema.metadata.tables) >= 25
