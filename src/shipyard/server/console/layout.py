"""Layered drawing of a directed graph, left to right, computed on the server (no
JavaScript graph library): the pipeline DAG and the lineage graph are drawn from it as SVG.

Each node goes in the column of its longest path from a source; nodes in a column are
ordered by the mean position of their neighbours (two sweeps), which keeps most edges
short and uncrossed on the graphs Shipyard draws (tens of nodes). A cycle (which neither
graph should have) does not loop: its remaining nodes go in one last column.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

__all__ = ["Layout", "Placed", "layered"]

NODE_WIDTH = 200
NODE_HEIGHT = 58
GAP_X = 70
GAP_Y = 22
MARGIN = 12


@dataclass(frozen=True)
class Placed:
    key: Hashable
    x: int
    y: int
    width: int = NODE_WIDTH
    height: int = NODE_HEIGHT


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    nodes: list[Placed]
    edges: list[str]  # SVG path data, one per edge


def layered(nodes: Sequence[Hashable], edges: Sequence[tuple[Hashable, Hashable]]) -> Layout:
    """Positions for ``nodes`` and paths for ``edges`` (pairs of node keys; pairs naming
    an unknown node are dropped)."""
    known = set(nodes)
    edges = [(a, b) for a, b in dict.fromkeys(edges) if a in known and b in known and a != b]
    parents: dict[Hashable, list[Hashable]] = defaultdict(list)
    children: dict[Hashable, list[Hashable]] = defaultdict(list)
    for a, b in edges:
        parents[b].append(a)
        children[a].append(b)
    column = _columns(nodes, parents, children)
    columns: dict[int, list[Hashable]] = defaultdict(list)
    for node in nodes:
        columns[column[node]].append(node)
    order = [columns[c] for c in sorted(columns)]
    for sweep in range(4):  # down, up, down, up
        forward = sweep % 2 == 0
        indices = range(1, len(order)) if forward else range(len(order) - 2, -1, -1)
        for i in indices:
            neighbours = parents if forward else children
            ref = {n: k for k, n in enumerate(order[i - 1 if forward else i + 1])}
            order[i] = sorted(order[i], key=lambda n: _barycentre(n, neighbours, ref))
    tallest = max((len(col) for col in order), default=0)
    height = 2 * MARGIN + max(0, tallest * (NODE_HEIGHT + GAP_Y) - GAP_Y)
    placed: dict[Hashable, Placed] = {}
    for c, col in enumerate(order):
        offset = (tallest - len(col)) * (NODE_HEIGHT + GAP_Y) // 2
        for r, node in enumerate(col):
            placed[node] = Placed(node, MARGIN + c * (NODE_WIDTH + GAP_X),
                                  MARGIN + offset + r * (NODE_HEIGHT + GAP_Y))
    width = 2 * MARGIN + max(0, len(order) * (NODE_WIDTH + GAP_X) - GAP_X)
    paths = [_path(placed[a], placed[b]) for a, b in edges]
    return Layout(width=width, height=height, nodes=[placed[n] for n in nodes], edges=paths)


def _columns(nodes: Sequence[Hashable], parents: dict[Hashable, list[Hashable]],
             children: dict[Hashable, list[Hashable]]) -> dict[Hashable, int]:
    waiting = {n: len(parents.get(n, [])) for n in nodes}
    ready = [n for n in nodes if waiting[n] == 0]
    column: dict[Hashable, int] = {}
    while ready:
        node = ready.pop(0)
        column[node] = max((column[p] + 1 for p in parents.get(node, []) if p in column),
                           default=0)
        for child in children.get(node, []):
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    last = max(column.values(), default=-1) + 1
    for node in nodes:  # left in a cycle
        column.setdefault(node, last)
    return column


def _barycentre(node: Hashable, neighbours: dict[Hashable, list[Hashable]],
                ref: dict[Hashable, int]) -> float:
    """The mean position of ``node``'s neighbours in the column ``ref`` orders (nodes
    without any go last)."""
    found = [ref[m] for m in neighbours.get(node, []) if m in ref]
    return sum(found) / len(found) if found else float(len(ref))


def _path(a: Placed, b: Placed) -> str:
    x1, y1 = a.x + a.width, a.y + a.height // 2
    x2, y2 = b.x, b.y + b.height // 2
    if x2 <= x1:  # same or earlier column (a cycle): go round below
        return f"M{x1},{y1} C{x1 + 40},{y1 + 60} {x2 - 40},{y2 + 60} {x2},{y2}"
    bend = (x2 - x1) // 2
    return f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
