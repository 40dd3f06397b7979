"""schemathesis over ``/openapi.json`` of a live server, and the spec's declared bounds.

The run uses every check and every phase schemathesis has (examples, coverage, fuzzing and
the stateful phase, which chains operations through the links it infers from responses),
as the admin, with a few examples per operation so that it stays under a minute on two
cores. It must find no server error and no response that breaks the schema. The
exceptions below are each a limit of what an OpenAPI document can say, not a tolerance for
a wrong answer:

* ``SEMANTIC``: inputs the server validates beyond any schema (a filter's grammar, an
  archive's contents, a pipeline spec, a page token, alias names reserved for versions,
  scope names it reads case-insensitively). A
  schema-valid request to these may be answered 400 problem+json naming the field.
* ``LENIENT``: where the server reads more than the schema admits (pydantic's lax mode: an
  audit ``since`` as an epoch number, a metric step as a JSON boolean), the negative check
  "a schema-invalid request is refused" does not hold for that operation.

Revoking tokens and disabling users run in a second pass without the stateful phase: chained
from a token listing, the first pass would revoke its own credential and test nothing after.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import Settings
from shipyard.server.app import create_app
from tests.server.live import LiveServer, live_server

MAX_EXAMPLES = 10
SEED = int(os.environ.get("SHIPYARD_SCHEMATHESIS_SEED", "20261123"))
SELF_LOCKING = ["/api/v1/tokens/{token_id}", "/api/v1/users/{name}/disable"]

SEMANTIC = {
    "/api/v1/projects/{project}/models": "filter grammar",
    "/api/v1/projects/{project}/models/{name}/versions": "filter grammar; archive contents",
    "/api/v1/projects/{project}/models/{name}/versions/{version}/promote":
        "alias names reserved for versions",
    "/api/v1/projects/{project}/models/{name}/aliases/{alias}":
        "alias names reserved for versions",
    "/api/v1/projects/{project}/models/{name}/aliases/{alias}/rollback":
        "alias names reserved for versions",
    "/api/v1/projects/{project}/models/{name}/history": "alias names reserved for versions",
    "/api/v1/projects/{project}/pipelines/runs": "pipeline spec",
    "/api/v1/projects/{project}/runs:search": "filter grammar; page tokens",
    "/api/v1/tokens": "scope names, read case-insensitively",
    "/api/v1/users": "a password is for users, not service accounts",
    "/api/v1/projects/{project}/runs": "param and tag keys (JSON object keys)",
    "/api/v1/projects/{project}/runs/{run_id}/log-batch": "param and tag keys",
    "/api/v1/projects/{project}/endpoints": "label names (JSON object keys)",
    "/api/v1/projects/{project}/events/topics/{topic}/publish":
        "attribute names (JSON object keys)",
    "/api/v1/projects/{project}/events/subscriptions": "min_backoff at most max_backoff",
    "/api/v1/projects/{project}/monitors":
        "baseline_profile: base64 of a profile's bytes; durations, thresholds, channels",
    "/api/v1/projects/{project}/events/schedules":
        "cron grammar, IANA time zone names, the action's fields by its type",
    "/api/v1/projects/{project}/events/triggers":
        "filter values, the action's fields by its type, min_backoff at most max_backoff",
    "/api/v1/projects/{project}/events/subscriptions/{name}/push":
        "an http:// or https:// URL with a host",
    "/api/v1/projects/{project}/events/watches":
        "a directory, or a bucket prefix (file://, s3://, gs://, memory://)",
}
# Where a schema-valid request may meet a state the schema cannot describe, answered 412
# problem+json naming the field: an endpoint with nothing deployed yet cannot predict or take a
# traffic split, and a deploy names a version or an alias, not both.
PRECONDITIONS = {
    "/api/v1/projects/{project}/endpoints/{name}:predict": "nothing deployed yet",
    "/v1/projects/{project}/locations/{location}/endpoints/{name}:predict":
        "nothing deployed yet",
    "/api/v1/projects/{project}/endpoints/{name}:explain": "nothing deployed yet",
    "/v1/projects/{project}/locations/{location}/endpoints/{name}:explain":
        "nothing deployed yet",
    "/api/v1/projects/{project}/endpoints/{name}:rawPredict": "nothing deployed yet",
    "/v1/projects/{project}/locations/{location}/endpoints/{name}:rawPredict":
        "nothing deployed yet",
    "/api/v1/projects/{project}/endpoints/{name}/traffic": "nothing deployed yet",
    "/api/v1/projects/{project}/endpoints/{name}/shift":
        "nothing deployed yet; the only model keeps 100; a shadow takes no share",
    "/api/v1/projects/{project}/endpoints/{name}/deployments": "version or alias, not both",
    "/api/v1/projects/{project}/events/subscriptions/{name}/nack": "no such lease (any more)",
    "/api/v1/projects/{project}/events/subscriptions/{name}/extend": "no such lease (any more)",
    "/api/v1/projects/{project}/endpoints/{name}/monitoring-stats": "no monitor run yet",
    "/api/v1/projects/{project}/events/watches":
        "a local directory only inside one SHIPYARD_WATCH_ROOTS lists",
}
# Where the server reads more than the schema admits (pydantic's lax mode): a date as an
# epoch number, an integer as a JSON boolean. Everything else invalid is still refused.
LENIENT = {
    "/api/v1/audit": "since as an epoch number",
    "/api/v1/projects/{project}/audit": "since as an epoch number",
    "/api/v1/projects/{project}/runs/{run_id}/log-batch": "step and timestamp as booleans",
    "/api/v1/users": "admin as 0, 1 or 'true'",
}



def _config() -> str:
    # Expected statuses per operation: the CLI's --checks overrides "enabled" in the file.
    lines: list[str] = []
    for path in sorted(SEMANTIC.keys() | LENIENT.keys() | PRECONDITIONS.keys()):
        why = " ".join(d.get(path, "") for d in (SEMANTIC, PRECONDITIONS, LENIENT))
        lines += [f"# {why}".rstrip(), "[[operations]]", f'include-path = "{path}"']
        if path in SEMANTIC or path in PRECONDITIONS:
            extra = (["400"] if path in SEMANTIC else []) + (
                ["400", "412"] if path in PRECONDITIONS else [])
            allowed = [*sorted(set(extra)), "401", "403", "404", "409", "429"]
            statuses = ", ".join(f'"{s}"' for s in allowed)
            lines.append("checks.positive_data_acceptance.expected-statuses = "
                         f'["2xx", {statuses}]')
        if path in LENIENT:
            lines.append('checks.negative_data_rejection.expected-statuses = '
                         '["2xx", "400", "401", "403", "404", "409", "413", "415", "429"]')
        lines.append("")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("home")
    settings = Settings.resolve(home=home, uri=f"sqlite:///{home / 'shipyard.db'}",
                                artifacts=str(home / "blobs"), environ={})
    with live_server(settings, worker=False) as live:
        yield live


def _schemathesis(server: LiveServer, tmp_path: Path, *args: str) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config())
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color",
        "run", f"{server.url}/openapi.json",
        "-H", f"Authorization: Bearer {server.token}",
        "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
        "--workers", "1", "--request-timeout", "30", "--generation-database", "none",
        "--output-truncate", "true", *args,
    ]
    # The client runs in its own process: the server (in this one) stays under the
    # deserialization tripwire, and schemathesis's own imports stay out of the test process.
    done = subprocess.run(command, capture_output=True, text=True, timeout=480, check=False,
                          cwd=tmp_path)
    if done.returncode != 0:
        output = done.stdout + done.stderr
        start = output.find("FAILURES")
        pytest.fail(f"schemathesis found problems (seed {SEED}):\n"
                    + output[start if start >= 0 else 0:][:12_000])


def test_schemathesis_finds_nothing(server: LiveServer, tmp_path: Path) -> None:
    _schemathesis(server, tmp_path,
                  *[arg for path in SELF_LOCKING for arg in ("--exclude-path", path)])


def test_schemathesis_on_revocations(server: LiveServer, tmp_path: Path) -> None:
    _schemathesis(server, tmp_path, "--phases", "examples,coverage,fuzzing",
                  *[arg for path in SELF_LOCKING for arg in ("--include-path", path)])


# -- bounds ----------------------------------------------------------------------------------

# Strings whose format bounds them (uploads are capped by the body limit, not the schema).
BOUNDED_FORMATS = {"date-time", "binary"}


def _spec(tmp_path: Path) -> dict[str, Any]:
    settings = Settings.resolve(home=tmp_path, uri=f"sqlite:///{tmp_path / 'shipyard.db'}",
                                artifacts=str(tmp_path / "blobs"), environ={})
    spec: dict[str, Any] = create_app(settings, worker=False).openapi()
    return spec


def _unbounded(schema: dict[str, Any], where: str, components: dict[str, Any],
               seen: set[str]) -> Iterator[str]:
    """Every string without maxLength and integer without both limits, under ``schema``."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            return
        seen.add(name)
        schema = components[name]
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            yield from _unbounded(sub, where, components, seen)
    kind = schema.get("type")
    if "enum" in schema or "const" in schema:
        return
    upload = "contentMediaType" in schema or schema.get("format") in BOUNDED_FORMATS
    if kind == "string" and "maxLength" not in schema and not upload:
        yield f"{where}: string without maxLength"
    if kind == "integer" and not (
            {"minimum", "exclusiveMinimum"} & schema.keys()
            and {"maximum", "exclusiveMaximum"} & schema.keys()):
        yield f"{where}: integer without minimum and maximum"
    if kind == "array":
        yield from _unbounded(schema.get("items", {}), f"{where}[]", components, seen)
    for name, sub in schema.get("properties", {}).items():
        yield from _unbounded(sub, f"{where}.{name}", components, seen)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _unbounded(extra, f"{where}.*", components, seen)


def test_every_input_string_and_integer_declares_its_bounds(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    components = spec.get("components", {}).get("schemas", {})
    missing: list[str] = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                missing += _unbounded(parameter["schema"], f"{where} {parameter['name']}",
                                      components, set())
            for media in operation.get("requestBody", {}).get("content", {}).values():
                missing += _unbounded(media["schema"], f"{where} body", components, set())
    assert not missing, "\n".join(missing)


def test_every_project_route_declares_its_project_parameter(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    for path, operations in spec["paths"].items():
        if "{project}" not in path:
            continue
        for method, operation in operations.items():
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert "project" in names, f"{method.upper()} {path}"


def test_refusals_are_declared_as_problem_json(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            refusals = operation["responses"].get("4XX", {}).get("content", {})
            assert "application/problem+json" in refusals, f"{method.upper()} {path}"
            assert "422" not in operation["responses"], f"{method.upper()} {path}"
