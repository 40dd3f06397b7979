"""Render the REST reference (docs/rest.md) from the app's OpenAPI and the policy table.

``python -m shipyard.server.reference > docs/rest.md``; a test fails when the file is stale,
so the reference cannot drift from the routes.
"""

from __future__ import annotations

import tempfile
from typing import Any

from shipyard.config import Settings
from shipyard.server.app import create_app
from shipyard.server.policy import POLICY


def render() -> str:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings.resolve(home=home, environ={})
        schema: dict[str, Any] = create_app(settings, worker=False).openapi()
    lines = [
        "# REST reference",
        "",
        "Generated from the server's OpenAPI description (`/openapi.json` on a running server",
        "has the full schemas) and its policy table: `python -m shipyard.server.reference`.",
        "",
        "Every route needs `Authorization: Bearer <token>` unless its permission is *public*.",
        "Errors are `application/problem+json` with `status`, `title`, `detail`, `kind` and,",
        "for bad input, `field`.",
        "",
    ]
    by_tag: dict[str, list[tuple[str, str, str, str]]] = {}
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            rule = POLICY.get((method.upper(), path))
            if rule is None:
                needs = "**no policy: refused**"
            elif rule.scope == "public":
                needs = "public"
            elif rule.permission is None:
                needs = "any signed-in user"
            else:
                where = "server" if rule.scope == "server" else "project"
                needs = f"`{rule.permission.value}` on the {where}"
            tag = (op.get("tags") or ["other"])[0]
            summary = op.get("summary", "")
            by_tag.setdefault(tag, []).append((method.upper(), path, needs, summary))
    for tag in sorted(by_tag):
        lines += [f"## {tag}", "", "| method | path | needs | what |", "| --- | --- | --- | --- |"]
        for method, path, needs, summary in sorted(by_tag[tag], key=lambda r: (r[1], r[0])):
            lines.append(f"| {method} | `{path}` | {needs} | {summary} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    import sys

    sys.stdout.write(render())


if __name__ == "__main__":
    main()


