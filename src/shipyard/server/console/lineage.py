"""Lineage: the project's artifacts, and the graph around one (upstream, downstream or
both, a bounded number of executions away), laid out on the server and drawn as SVG.

The graph is ``lineage.queries.graph``'s, whose events are deduplicated. To keep the quick
start's repeated runs readable, executions with the same name and type that read and wrote
the same artifacts (reruns served from the cache) are drawn as one node with their count,
and past ``MAX_NODES`` the nodes nearest the root are drawn and the rest counted.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import HTMLResponse

from shipyard.lineage import queries
from shipyard.lineage.models import ExecutionNode, LineageGraph
from shipyard.server.api import params
from shipyard.server.console.layout import layered
from shipyard.server.console.rendering import render
from shipyard.server.state import ServerState, server_state

router = APIRouter(include_in_schema=False)
State = Annotated[ServerState, Depends(server_state)]
PAGE = "/console/projects/{project}/lineage"
MAX_DEPTH = 10
MAX_NODES = 60
LIMITS = (100, 500, 2000)


@router.get(PAGE)
def artifacts_page(
    request: Request, project: str, state: State,
    type: Annotated[str, Query(max_length=128)] = "",
    limit: Annotated[int, Query(ge=1, le=LIMITS[-1])] = LIMITS[0],
) -> HTMLResponse:
    found = queries.list_artifacts(state.store, project, type=type or None, limit=limit + 1)
    return render(request, "lineage.html", {
        "section": "lineage", "artifacts": found[:limit], "type": type, "limit": limit,
        "more": len(found) > limit, "next_limit": next((n for n in LIMITS if n > limit), None),
    })


@router.get(PAGE + "/{artifact_id}")
def graph_page(
    request: Request, project: str, artifact_id: params.Id, state: State,
    direction: Literal["upstream", "downstream", "both"] = "both",
    depth: Annotated[int, Query(ge=1, le=MAX_DEPTH)] = 3,
) -> HTMLResponse:
    graph = queries.graph(state.store, project, artifact_id, direction=direction, depth=depth)
    keep, hidden = _nearest(graph)
    groups, group_of = _fold(graph, keep)
    nodes = [f"a:{a.id}" for a in graph.artifacts if f"a:{a.id}" in keep] + list(groups)
    edges = [((f"a:{e.artifact_id}", group_of[e.execution_id]) if e.kind == "input"
              else (group_of[e.execution_id], f"a:{e.artifact_id}"))
             for e in graph.events if e.execution_id in group_of]
    drawing = layered(nodes, edges)
    root = next(a for a in graph.artifacts if a.id == artifact_id)
    return render(request, "lineage_graph.html", {
        "section": "lineage", "root": root, "drawing": drawing,
        "artifacts": {f"a:{a.id}": a for a in graph.artifacts},
        "executions": groups,
        "direction": direction, "depth": depth, "max_depth": MAX_DEPTH, "hidden": hidden,
        "counts": (len(graph.artifacts), len(graph.executions)),
    })


@dataclass(frozen=True)
class Executions:
    """Executions drawn as one node: same name and type, reading and writing the same
    artifacts (a pipeline's reruns served from the cache, a step retried)."""

    name: str
    type: str
    states: str
    ids: tuple[str, ...]


def _fold(graph: LineageGraph, keep: set[str]
          ) -> tuple[dict[str, Executions], dict[str, str]]:
    """The kept executions folded into ``Executions`` by node key, and each execution's
    node key."""
    touches: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for event in graph.events:
        touches[event.execution_id].add((event.kind, event.artifact_id))
    members: dict[tuple[Any, ...], list[ExecutionNode]] = defaultdict(list)
    for execution in graph.executions:
        if f"e:{execution.id}" in keep:
            key = (execution.name, execution.type, frozenset(touches[execution.id]))
            members[key].append(execution)
    groups: dict[str, Executions] = {}
    group_of: dict[str, str] = {}
    for found in members.values():
        node = f"e:{found[0].id}"
        states = Counter(e.state.lower() for e in found)
        groups[node] = Executions(
            name=found[0].name, type=found[0].type,
            states=", ".join(f"{n} {s}" if len(found) > 1 else s
                             for s, n in sorted(states.items())),
            ids=tuple(e.id for e in found))
        group_of.update({e.id: node for e in found})
    return groups, group_of


def _nearest(graph: LineageGraph) -> tuple[set[str], int]:
    """The ``MAX_NODES`` nodes nearest the root (breadth first over events either way),
    and how many others there are."""
    links: dict[str, list[str]] = defaultdict(list)
    for event in graph.events:
        a, e = f"a:{event.artifact_id}", f"e:{event.execution_id}"
        links[a].append(e)
        links[e].append(a)
    start = f"a:{graph.root}"
    seen = {start}
    queue = deque([start])
    while queue and len(seen) < MAX_NODES:
        node = queue.popleft()
        for other in links[node]:
            if other not in seen and len(seen) < MAX_NODES:
                seen.add(other)
                queue.append(other)
    total = len(graph.artifacts) + len(graph.executions)
    return seen, max(0, total - len(seen))


__all__ = ["router"]
