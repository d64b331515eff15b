"""A layered (Sugiyama-style) layout of a DAG, left to right: longest-path layers, long edges routed
through placeholder slots, crossings reduced by barycenter sweeps, boxes sized to their labels. Pure.

Deterministic: the same graph (in the same declaration order) gives the same coordinates, so a drawing
can be compared between runs and kept under version control.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipeline.graph import Graph

# Labels are drawn in a monospace font, so a label's width is known without measuring text: 12px
# monospace fonts (DejaVu Sans Mono, Menlo, Consolas) advance about 0.6em per character.
FONT_SIZE = 12
CHAR_WIDTH = 7.3
LINE_HEIGHT = 16
PAD_X = 10
PAD_Y = 7
MIN_WIDTH = 60
LAYER_GAP = 56  # between columns, where the edges bend
NODE_GAP = 18  # between boxes of one column
SLOT_HEIGHT = 6  # the room a long edge takes where it passes a column
MARGIN = 8
SWEEPS = 4  # down-and-up barycenter passes; small graphs settle in two or three


@dataclass(frozen=True)
class Box:
    key: str
    lines: tuple[str, ...]
    x: float
    y: float
    width: float
    height: float

    @property
    def left(self) -> tuple[float, float]:
        return (self.x, self.y + self.height / 2)

    @property
    def right(self) -> tuple[float, float]:
        return (self.x + self.width, self.y + self.height / 2)


@dataclass(frozen=True)
class Edge:
    """From a dependency to its dependant (build order), through `points`: the source box's right
    side, a pair of points per column it passes, the target box's left side."""

    source: str
    target: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Layout:
    boxes: dict[str, Box]  # in the graph's declaration order
    edges: tuple[Edge, ...]
    layers: tuple[tuple[str, ...], ...]  # each column's boxes, top to bottom
    width: float
    height: float


def layout(graph: Graph, labels: Mapping[str, Sequence[str]] | None = None) -> Layout:
    """Lay out `graph` (node -> its dependencies); `labels` gives a node's text lines (default: its name).
    Dependencies outside the graph are left out; an edge that would close a cycle is left out too."""
    keys = list(graph)
    index = {key: i for i, key in enumerate(keys)}
    deps = [[index[d] for d in dict.fromkeys(graph[key]) if d in index and d != key] for key in keys]
    order, deps = _acyclic_order(deps)
    layer = [0] * len(keys)
    for node in order:
        layer[node] = 1 + max((layer[d] for d in deps[node]), default=-1)

    # Every edge becomes a chain of unit-length edges; placeholders (ids from len(keys) up) stand where
    # a long edge crosses a column, so crossings are counted and boxes avoided there too.
    node_layer = list(layer)
    chains: list[tuple[int, int, list[int]]] = []
    for node in order:
        for dep in deps[node]:
            chain = [dep]
            for column in range(layer[dep] + 1, layer[node]):
                node_layer.append(column)
                chain.append(len(node_layer) - 1)
            chain.append(node)
            chains.append((dep, node, chain))
    succ: list[list[int]] = [[] for _ in node_layer]
    pred: list[list[int]] = [[] for _ in node_layer]
    for _, _, chain in chains:
        for a, b in zip(chain, chain[1:], strict=False):
            succ[a].append(b)
            pred[b].append(a)
    columns: list[list[int]] = [[] for _ in range(max(layer, default=-1) + 1)]
    for node in order:
        columns[layer[node]].append(node)
    for node in range(len(keys), len(node_layer)):
        columns[node_layer[node]].append(node)
    columns = _reduce_crossings(columns, pred, succ)

    texts = [tuple(labels[key]) if labels and key in labels and labels[key] else (key,) for key in keys]
    sizes = [_box_size(lines) for lines in texts]
    return _place(keys, texts, sizes, columns, chains)


def _acyclic_order(deps: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """A topological order (declaration order among ready nodes) and the dependencies that respect it:
    where a cycle blocks every node, the first one declared goes next and its pending edges are dropped."""
    remaining = [set(d) for d in deps]
    placed: set[int] = set()
    order: list[int] = []
    kept = [list(d) for d in deps]
    while len(order) < len(deps):
        ready = [n for n in range(len(deps)) if n not in placed and not remaining[n]]
        if not ready:
            stuck = next(n for n in range(len(deps)) if n not in placed)
            kept[stuck] = [d for d in kept[stuck] if d in placed]
            ready = [stuck]
        for node in ready:
            order.append(node)
            placed.add(node)
        for pending in remaining:
            pending.difference_update(ready)
    return order, kept


def _reduce_crossings(columns: list[list[int]], pred: list[list[int]], succ: list[list[int]]) -> list[list[int]]:
    """Barycenter sweeps: reorder each column by the mean position of its neighbours in the column
    before (going right) or after (going left); keep the first ordering with the fewest crossings."""
    best = [list(c) for c in columns]
    best_crossings = _crossings(best, succ)
    current = [list(c) for c in columns]
    for _ in range(SWEEPS):
        if best_crossings == 0:
            break
        for i in range(1, len(current)):
            current[i] = _by_barycenter(current[i], current[i - 1], pred)
        for i in range(len(current) - 2, -1, -1):
            current[i] = _by_barycenter(current[i], current[i + 1], succ)
        found = _crossings(current, succ)
        if found < best_crossings:
            best, best_crossings = [list(c) for c in current], found
    return best


def _by_barycenter(column: list[int], fixed: list[int], neighbours: list[list[int]]) -> list[int]:
    position = {node: i for i, node in enumerate(fixed)}

    def weight(item: tuple[int, int]) -> float:
        i, node = item
        near = [position[n] for n in neighbours[node] if n in position]
        # A node with no neighbour there keeps its place; scaled so it competes fairly with the others.
        return sum(near) / len(near) if near else i * max(len(fixed), 1) / max(len(column), 1)

    # sorted() is stable: ties keep the current order, so the result is deterministic.
    return [node for _, node in sorted(enumerate(column), key=weight)]


def _crossings(columns: list[list[int]], succ: list[list[int]]) -> int:
    total = 0
    for left, right in zip(columns, columns[1:], strict=False):
        position = {node: i for i, node in enumerate(right)}
        segments = [(i, position[t]) for i, node in enumerate(left) for t in succ[node] if t in position]
        for a, (s1, t1) in enumerate(segments):
            for s2, t2 in segments[a + 1 :]:
                if (s1 - s2) * (t1 - t2) < 0:
                    total += 1
    return total


def _box_size(lines: tuple[str, ...]) -> tuple[float, float]:
    width = max(MIN_WIDTH, max(len(line) for line in lines) * CHAR_WIDTH + 2 * PAD_X)
    return (round(width, 1), len(lines) * LINE_HEIGHT + 2 * PAD_Y)


def _place(
    keys: list[str],
    texts: list[tuple[str, ...]],
    sizes: list[tuple[float, float]],
    columns: list[list[int]],
    chains: list[tuple[int, int, list[int]]],
) -> Layout:
    """Columns left to right, each as wide as its widest box and centred vertically; boxes centred in
    their column, so the room between a box and its column's edge is free for edges to pass."""
    real = len(keys)

    def height(node: int) -> float:
        return sizes[node][1] if node < real else SLOT_HEIGHT

    column_heights = [sum(height(n) for n in c) + NODE_GAP * (len(c) - 1) for c in columns]
    total_height = max(column_heights, default=0.0) + 2 * MARGIN
    x = float(MARGIN)
    centre_y: dict[int, float] = {}
    column_x: dict[int, tuple[float, float]] = {}
    boxes: dict[int, Box] = {}
    for column, column_height in zip(columns, column_heights, strict=True):
        width = max((sizes[n][0] for n in column if n < real), default=MIN_WIDTH)
        y = (total_height - column_height) / 2
        for node in column:
            column_x[node] = (x, x + width)
            centre_y[node] = y + height(node) / 2
            if node < real:
                w, h = sizes[node]
                boxes[node] = Box(keys[node], texts[node], round(x + (width - w) / 2, 1), round(y, 1), w, h)
            y += height(node) + NODE_GAP
        x += width + LAYER_GAP
    edges = []
    for source, target, chain in chains:
        points = [boxes[source].right]
        for slot in chain[1:-1]:
            left, right = column_x[slot]
            points += [(left, round(centre_y[slot], 1)), (right, round(centre_y[slot], 1))]
        points.append(boxes[target].left)
        edges.append(Edge(keys[source], keys[target], tuple(points)))
    width = x - LAYER_GAP + MARGIN if columns else 2 * MARGIN
    return Layout(
        boxes={keys[n]: boxes[n] for n in range(real)},
        edges=tuple(edges),
        layers=tuple(tuple(keys[n] for n in column if n < real) for column in columns),
        width=round(width, 1),
        height=round(total_height, 1),
    )
