"""``shipyard lineage show`` (an artifact's graph as a tree) and ``shipyard audit``."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.tree import Tree

from shipyard.cli import output
from shipyard.cli.state import command, current, fail, invoked_subcommand, require, sdk

app = typer.Typer(help="Lineage: where artifacts came from and what used them.",
                  no_args_is_help=True)


class Direction(StrEnum):
    upstream = "upstream"
    downstream = "downstream"
    both = "both"


@app.command("show")
@command
def show(
    artifact_id: Annotated[str, typer.Argument(help="The artifact's id")],
    direction: Annotated[Direction, typer.Option(
        "--direction", "-d", help="Follow inputs (upstream), consumers (downstream) or both",
        case_sensitive=False)] = Direction.upstream,
    depth: Annotated[int, typer.Option(
        "--depth", min=1, max=1000, help="How many steps to follow")] = 1000,
) -> None:
    """Show the lineage of an artifact: datasets -> steps -> models, as a tree."""
    sy = sdk()
    graph = sy.get_lineage(artifact_id, direction=direction.value, depth=depth)
    if current().json:
        output.print_json(graph)
        return
    output.show(render_tree(graph, direction.value))


def render_tree(graph: Any, direction: str) -> Tree:
    """The graph as a Rich tree rooted at ``graph.root``; a node seen twice is marked."""
    artifacts = {a.id: a for a in graph.artifacts}
    executions = {e.id: e for e in graph.executions}
    producers: dict[str, list[str]] = defaultdict(list)
    consumers: dict[str, list[str]] = defaultdict(list)
    inputs: dict[str, list[str]] = defaultdict(list)
    outputs: dict[str, list[str]] = defaultdict(list)
    for event in graph.events:
        if event.kind == "output":
            producers[event.artifact_id].append(event.execution_id)
            outputs[event.execution_id].append(event.artifact_id)
        else:
            consumers[event.artifact_id].append(event.execution_id)
            inputs[event.execution_id].append(event.artifact_id)

    def artifact_label(artifact_id: str) -> str:
        node = artifacts.get(artifact_id)
        if node is None:
            return f"[dim]artifact {escape(artifact_id)}[/dim]"
        size = f" {node.size} B" if node.size is not None else ""
        return (f"[cyan]{escape(node.type)}[/cyan] [bold]{escape(node.name)}[/bold]"
                f"[dim]{size}  {escape(node.id)}[/dim]")

    def execution_label(execution_id: str) -> str:
        node = executions.get(execution_id)
        if node is None:
            return f"[dim]execution {escape(execution_id)}[/dim]"
        return (f"[magenta]{escape(node.type)}[/magenta] [bold]{escape(node.name)}[/bold] "
                f"{escape(node.state)}  [dim]{escape(node.id)}[/dim]")

    def grow(branch: Tree, artifact_id: str, upstream: bool, seen: set[str]) -> None:
        steps = producers if upstream else consumers
        next_artifacts = inputs if upstream else outputs
        for execution_id in sorted(set(steps[artifact_id])):
            step = branch.add(execution_label(execution_id))
            if execution_id in seen:
                step.add("[dim](shown above)[/dim]")
                continue
            for other in sorted(set(next_artifacts[execution_id])):
                child = step.add(artifact_label(other))
                grow(child, other, upstream, seen | {execution_id})

    tree = Tree(artifact_label(graph.root))
    if direction in ("upstream", "both"):
        target = tree.add("[bold]upstream[/bold]") if direction == "both" else tree
        grow(target, graph.root, True, set())
    if direction in ("downstream", "both"):
        target = tree.add("[bold]downstream[/bold]") if direction == "both" else tree
        grow(target, graph.root, False, set())
    return tree


audit_app = typer.Typer(help="The audit log: who changed what, and whether it is intact.")


def register_audit(root: typer.Typer) -> None:
    root.add_typer(audit_app, name="audit")


@audit_app.callback(invoke_without_command=True)
@command
def audit(
    actor: Annotated[str | None, typer.Option("--actor", help="Only this actor")] = None,
    action: Annotated[str | None, typer.Option(
        "--action", help="Only actions starting with this, e.g. 'tokens.' or 'grants.set'"
    )] = None,
    outcome: Annotated[str | None, typer.Option(
        "--outcome", help="Only this outcome, e.g. ok or denied")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000,
                                       help="At most this many entries")] = 100,
) -> None:
    """Show the audit log of the project, newest first (``audit verify`` checks it)."""
    if invoked_subcommand() is not None:
        return
    sy = sdk()
    list_events = require(sy, "list_audit_events", "reading the audit log")
    entries = list_events(actor=actor, action=action, outcome=outcome, limit=limit)
    if current().json:
        output.print_json(entries)
        return
    rows = [[_get(e, "time"), _get(e, "actor"), _get(e, "action"), _get(e, "resource"),
             _get(e, "outcome"), _get(e, "client")] for e in entries]
    output.show(output.table(None, ["time", "actor", "action", "resource", "outcome",
                                    "client"], rows))


@audit_app.command("verify")
@command
def verify() -> None:
    """Check the whole audit log's hash chain: exit 1 naming the first row that was
    deleted or edited. Keep the printed head hash elsewhere to detect rows cut off later."""
    sy = sdk()
    result = sy.verify_audit_log()
    if current().json:
        output.print_json(dataclasses.asdict(result))
    elif result.ok:
        output.show(f"audit log intact: {result.rows} rows ({result.unchained} written before "
                    f"chaining), head {result.head or 'none'}")
    if not result.ok:
        fail(f"audit log broken at row {result.broken_at}: {result.reason} "
             f"({result.rows} rows read)")


def _get(entry: Any, key: str) -> Any:
    # Entries arrive as dicts from the store or as models from a newer SDK.
    return entry.get(key) if isinstance(entry, dict) else getattr(entry, key, None)
