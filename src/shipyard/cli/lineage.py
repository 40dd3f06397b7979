"""``shipyard lineage show`` (an artifact's graph as a tree) and ``shipyard audit``."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.tree import Tree

import shipyard as sy
from shipyard.cli import output
from shipyard.cli.state import command, configure, current, fail, invoked_subcommand

app = typer.Typer(help="Lineage: where artifacts came from and what used them.",
                  no_args_is_help=True)


class Direction(StrEnum):
    upstream = "upstream"
    downstream = "downstream"
    both = "both"


# A tree past these is cut, saying so: ``-o json`` always has the whole graph.
_MAX_CHILDREN = 25
_MAX_NODES = 300


@app.command("show")
@command
def show(
    artifact_id: Annotated[str, typer.Argument(help="The artifact's id")],
    direction: Annotated[Direction, typer.Option(
        "--direction", "-d", help="Follow inputs (upstream), consumers (downstream) or both",
        case_sensitive=False)] = Direction.upstream,
    depth: Annotated[int, typer.Option(
        "--depth", min=1, max=1000,
        help="How many steps (executions) away from the artifact to follow")] = 1000,
) -> None:
    """Show the lineage of an artifact: datasets -> steps -> models, as a tree.

    Each artifact and execution of the graph is drawn once; a node reached again is marked
    "shown above", and the cached reruns of a step are counted on the step that really ran
    (``-o json`` lists them all).
    """
    configure()
    graph = sy.get_lineage(artifact_id, direction=direction.value, depth=depth)
    if current().json:
        output.print_json(graph)
        return
    output.show(render_tree(graph, direction.value))


class _TreeBuilder:
    """Draws a lineage graph as a tree in which every node is expanded at most once.

    A graph reached along two paths (a dataset read by two steps, a model whose producer
    reran from the cache) is a DAG, and unfolding a DAG into a tree multiplies it: six
    cached quick starts drew 11,959 lines. Here a node seen before is one line, and the
    cached reruns of a step are folded into the step that produced their outputs, so the
    tree grows with the graph's distinct nodes, not with its paths.
    """

    def __init__(self, graph: Any) -> None:
        self.artifacts = {a.id: a for a in graph.artifacts}
        self.executions = {e.id: e for e in graph.executions}
        self.order = {e.id: n for n, e in enumerate(graph.executions)}
        self.producers: dict[str, set[str]] = defaultdict(set)
        self.consumers: dict[str, set[str]] = defaultdict(set)
        self.inputs: dict[str, set[str]] = defaultdict(set)
        self.outputs: dict[str, set[str]] = defaultdict(set)
        for event in graph.events:
            if event.kind == "output":
                self.producers[event.artifact_id].add(event.execution_id)
                self.outputs[event.execution_id].add(event.artifact_id)
            else:
                self.consumers[event.artifact_id].add(event.execution_id)
                self.inputs[event.execution_id].add(event.artifact_id)
        self.expanded: set[str] = {graph.root}
        self.drawn = 0
        self.cut = False

    def artifact_label(self, artifact_id: str) -> str:
        node = self.artifacts.get(artifact_id)
        if node is None:
            return f"[dim]artifact {escape(artifact_id)}[/dim]"
        size = f" {node.size} B" if node.size is not None else ""
        return (f"[cyan]{escape(node.type)}[/cyan] [bold]{escape(node.name)}[/bold]"
                f"[dim]{size}  {escape(node.id)}[/dim]")

    def execution_label(self, execution_id: str, reruns: list[str]) -> str:
        node = self.executions.get(execution_id)
        if node is None:
            label = f"[dim]execution {escape(execution_id)}[/dim]"
        else:
            label = (f"[magenta]{escape(node.type)}[/magenta] [bold]{escape(node.name)}"
                     f"[/bold] {escape(node.state)}  [dim]{escape(node.id)}[/dim]")
        if reruns:
            latest = max(reruns, key=lambda e: self.order.get(e, -1))
            plural = "s" if len(reruns) > 1 else ""
            label += (f"\n[dim]+ {len(reruns)} cached rerun{plural}, latest "
                      f"{escape(latest)}[/dim]")
        return label

    def fold_cached(self, step_ids: set[str]) -> list[tuple[str, list[str]]]:
        """The steps to draw, each with the cached reruns folded into it, oldest first.

        A cached execution is folded into the execution it took its outputs from when that
        one is among ``step_ids``, else into the oldest other cached execution of the same
        name."""
        ordered = sorted(step_ids, key=lambda e: (self.order.get(e, -1), e))
        kept: dict[str, list[str]] = {}
        by_name: dict[str, str] = {}
        for execution_id in ordered:
            node = self.executions.get(execution_id)
            cached = node is not None and node.state == "CACHED"
            source = node.properties.get("cached_from") if node is not None else None
            if cached and source in step_ids and source != execution_id:
                kept.setdefault(source, []).append(execution_id)
                continue
            if cached and node is not None and node.name in by_name:
                kept[by_name[node.name]].append(execution_id)
                continue
            kept.setdefault(execution_id, [])
            if cached and node is not None:
                by_name[node.name] = execution_id
        return [(e, kept[e]) for e in sorted(kept, key=lambda e: (self.order.get(e, -1), e))]

    def add(self, branch: Tree, label: str) -> Tree | None:
        if self.drawn >= _MAX_NODES:
            self.cut = True
            return None
        self.drawn += 1
        return branch.add(label)

    def grow(self, branch: Tree, artifact_id: str, upstream: bool) -> None:
        steps = self.producers if upstream else self.consumers
        following = self.inputs if upstream else self.outputs
        folded = self.fold_cached(steps[artifact_id])
        for execution_id, reruns in folded[:_MAX_CHILDREN]:
            label = self.execution_label(execution_id, reruns)
            if execution_id in self.expanded:
                self.add(branch, label + "  [dim](shown above)[/dim]")
                continue
            self.expanded.add(execution_id)
            step = self.add(branch, label)
            if step is None:
                return
            others = sorted(following[execution_id])
            for other in others[:_MAX_CHILDREN]:
                if other in self.expanded:
                    self.add(step, self.artifact_label(other) + "  [dim](shown above)[/dim]")
                    continue
                self.expanded.add(other)
                child = self.add(step, self.artifact_label(other))
                if child is None:
                    return
                self.grow(child, other, upstream)
            self.more(step, len(others))
        self.more(branch, len(folded))

    def more(self, branch: Tree, count: int) -> None:
        if count > _MAX_CHILDREN:
            branch.add(f"[dim]... {count - _MAX_CHILDREN} more: see --output json[/dim]")


def render_tree(graph: Any, direction: str) -> Tree:
    """The graph as a Rich tree rooted at ``graph.root``, each node expanded once."""
    builder = _TreeBuilder(graph)
    tree = Tree(builder.artifact_label(graph.root))
    if direction in ("upstream", "both"):
        target = tree.add("[bold]upstream[/bold]") if direction == "both" else tree
        builder.grow(target, graph.root, True)
    if direction in ("downstream", "both"):
        target = tree.add("[bold]downstream[/bold]") if direction == "both" else tree
        builder.grow(target, graph.root, False)
    if builder.cut:
        tree.add(f"[dim]... cut at {_MAX_NODES} nodes: use --depth, or --output json for "
                 "the whole graph[/dim]")
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
    configure()
    list_events = sy.list_audit_events
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
    configure()
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
