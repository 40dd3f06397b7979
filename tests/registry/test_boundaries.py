"""The registry reads runs and executions through tracking's and lineage's public functions,
never their tables: it imports only its own tables from the store."""

from __future__ import annotations

import ast
from pathlib import Path

import shipyard.registry
from shipyard.store.schema import registry as registry_tables

_OWN = {name for name, value in vars(registry_tables).items() if hasattr(value, "columns")}


def test_the_registry_imports_only_its_own_tables() -> None:
    root = Path(shipyard.registry.__file__).parent
    foreign: list[str] = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "shipyard.store.schema"
            ):
                if node.module not in ("shipyard.store.schema",
                                       "shipyard.store.schema.registry"):
                    foreign.append(f"{path.name}: {node.module}")
                foreign += [f"{path.name}: {a.name}" for a in node.names if a.name not in _OWN]
    assert _OWN >= {"models", "model_versions", "model_aliases", "alias_history"}
    assert foreign == [], "use tracking's and lineage's functions, not their tables"
