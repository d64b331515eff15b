"""Dependency graphs of images (name -> direct dependencies, as config.resolve.dependencies_of gives them):
cycles, topological order, dependants. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping

Graph = Mapping[str, tuple[str, ...]]


def find_cycle(graph: Graph) -> list[str] | None:
    """A cycle as a path that returns to its start (`[a, b, a]`), or None. Edges point at dependencies,
    so the path is reversed to read in build order: `base -> app -> base`."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        stack.append(node)
        for dep in graph.get(node, ()):
            if colour.get(dep, black) == grey:
                cycle = stack[stack.index(dep) :] + [dep]
                return list(reversed(cycle))
            if colour.get(dep) == white:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        colour[node] = black
        return None

    for node in graph:
        if colour[node] == white:
            found = visit(node)
            if found:
                return found
    return None


def topological_order(graph: Graph) -> list[str]:
    """Dependencies before dependants; ties keep declaration order. The graph must be acyclic."""
    remaining = {node: set(deps) for node, deps in graph.items()}
    order: list[str] = []
    while remaining:
        ready = [n for n, deps in remaining.items() if not deps]
        if not ready:
            raise ValueError("graph has a cycle")
        for node in ready:
            order.append(node)
            del remaining[node]
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


def dependants_closure(graph: Graph, roots: set[str]) -> set[str]:
    """`roots` plus everything that depends on them, transitively."""
    result = set(roots)
    changed = True
    while changed:
        changed = False
        for node, deps in graph.items():
            if node not in result and result.intersection(deps):
                result.add(node)
                changed = True
    return result
