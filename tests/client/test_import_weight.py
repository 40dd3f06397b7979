"""The light client: ``import shipyard`` and a remote session load no server, store or
dataframe machinery (issue 16), so a notebook or CI job that only talks to a server starts
quickly and needs none of it installed to work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("sqlalchemy", "fastapi", "starlette", "uvicorn", "pandas", "alembic", "psycopg")

PROBE = """
import json, sys
heavy = {heavy!r}
loaded = lambda: sorted(m for m in heavy if m in sys.modules)
import shipyard as sy
after_import = loaded()
sy.init(uri="http://127.0.0.1:9", home={home!r}, token="sy_x")
calls = [lambda: sy.get_run("a" * 32), lambda: sy.search_runs("e"),
         lambda: sy.get_model_version("m", 1), lambda: sy.list_models(),
         lambda: sy.list_pipeline_runs(), lambda: sy.get_lineage("a" * 32),
         lambda: sy.list_audit_events()]
errors = []
for call in calls:
    try:
        call()
    except Exception as exc:  # nothing listens on port 9
        errors.append(type(exc).__name__)
print(json.dumps({{"import": after_import, "remote": loaded(), "errors": errors}}))
"""


def _probe(tmp_path: Path) -> dict[str, list[str]]:
    code = PROBE.format(heavy=HEAVY, home=str(tmp_path / "home"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    result: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_import_and_a_remote_session_load_no_heavy_module(tmp_path: Path) -> None:
    found = _probe(tmp_path)
    assert found["import"] == []
    # search_runs builds a DataFrame only from an answer; no answer came, so no pandas.
    assert found["errors"] == ["Unavailable"] * 7
    assert found["remote"] == []


def test_dir_lists_the_public_api() -> None:
    code = "import shipyard, json; print(json.dumps(dir(shipyard)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    names = json.loads(done.stdout)
    assert {"init", "start_run", "search_runs", "register_model", "load_model",
            "run_pipeline", "get_lineage", "get_execution", "dsl"} <= set(names)
    assert not {"Any", "TYPE_CHECKING", "annotations"} & set(names)
    assert all(not n.startswith("_") or n == "__version__" for n in names)
