"""SQLAlchemy Core statements compiled once for a store's dialect and run on the driver's own
cursor, inside ``Store.driver_write`` (hot paths: the bus's pull and ack).

The statement is written and checked as any other Core statement (same tables, same
dialect-specific SQL: casts on PostgreSQL, ``FOR UPDATE SKIP LOCKED``); what is skipped is
SQLAlchemy's per-execution machinery. Values go through the column types' own bind
processors (UTC timestamps, JSON) and rows through their result processors, so what is
written and read is exactly what ``Store.write()`` would write and read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

__all__ = ["DriverStatement"]

_POSTCOMPILE = re.compile(r"__\[POSTCOMPILE_(\w+)\]")
Processor = Callable[[Any], Any] | None


class DriverStatement:
    """``statement`` compiled for ``dialect``. Parameters are the statement's bind
    parameter names; an expanding one (``bindparam(..., expanding=True)``) takes a
    non-empty sequence."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self._sql = compiled.string
        self._positional = bool(compiled.positional)
        self._order: list[str] = list(compiled.positiontup or [])
        self._fixed: dict[str, Any] = {}  # literal values the statement binds itself
        self._process: dict[str, Processor] = {}
        self._expanding: set[str] = set()
        for bind, name in compiled.bind_names.items():
            self._process[name] = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.expanding:
                self._expanding.add(name)
            if not bind.required and bind.callable is None:
                self._fixed[name] = bind.value
        columns = getattr(statement, "exported_columns", ())
        self._read: list[Processor] = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
        self._mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self._expanded: dict[tuple[int, ...], str] = {}

    def execute(self, cursor: Any, values: Mapping[str, Any]) -> Any:
        """Run it on ``cursor``; the cursor (``rows`` reads what it returned)."""
        merged = {**self._fixed, **values} if self._fixed else values
        sql = self._sql
        if self._expanding:
            sql = self._expand(merged)
        if self._positional:
            params: Any = []
            for name in self._order:
                process = self._process.get(name)
                if name in self._expanding:
                    params.extend(v if process is None else process(v) for v in merged[name])
                else:
                    value = merged[name]
                    params.append(value if process is None else process(value))
        else:
            params = {}
            for name, value in merged.items():
                process = self._process.get(name)
                if name in self._expanding:
                    for i, item in enumerate(value, 1):
                        params[f"{name}_{i}"] = item if process is None else process(item)
                else:
                    params[name] = value if process is None else process(value)
        cursor.execute(sql, params)
        return cursor

    def rows(self, cursor: Any) -> list[tuple[Any, ...]]:
        """The rows the last ``execute`` returned, each value read as its column's type."""
        read = self._read
        return [tuple(v if p is None or v is None else p(v) for p, v in zip(read, row,
                                                                        strict=False))
                for row in cursor.fetchall()]

    def _expand(self, values: Mapping[str, Any]) -> str:
        sizes = tuple(len(values[name]) for name in sorted(self._expanding))
        found = self._expanded.get(sizes)
        if found is not None:
            return found
        lengths = dict(zip(sorted(self._expanding), sizes, strict=True))
        for name, size in lengths.items():
            if size == 0:
                raise ValueError(f"{name}: an expanding parameter needs at least one value")

        def marks(match: re.Match[str]) -> str:
            name = match.group(1)
            if self._positional:
                return ", ".join([self._mark] * lengths[name])
            return ", ".join(f"%({name}_{i})s" for i in range(1, lengths[name] + 1))

        sql = _POSTCOMPILE.sub(marks, self._sql)
        self._expanded[sizes] = sql
        return sql

