"""Dependency graph of resources: the cycles the loader reports, and what a target needs, in an order
that respects `requires` (what the engine runs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def reachable_order(requires: Mapping[str, Sequence[str]], target: str) -> list[str]:
    """Resources `target` depends on (itself included), dependencies first.

    The spec loader has already rejected cycles and unknown names; this stays iterative so a long
    chain cannot hit the recursion limit.
    """
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[tuple[str, int]] = [(target, 0)]
    while stack:
        node, i = stack.pop()
        deps = requires.get(node, ())
        if i == 0:
            if state.get(node) == 2:
                continue
            state[node] = 1
        if i < len(deps):
            stack.append((node, i + 1))
            dep = deps[i]
            if state.get(dep) is None:
                stack.append((dep, 0))
            elif state[dep] == 1:
                raise ValueError(f"dependency cycle through '{dep}'")
        else:
            state[node] = 2
            order.append(node)
    return order


def cycles(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Each dependency cycle once, as [a, b, …, a], starting from the first resource in file order."""
    order = {aid: i for i, aid in enumerate(graph)}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def visit(aid: str) -> None:
        state[aid] = 1
        stack.append(aid)
        for dep in graph[aid]:
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    start = min(range(len(cycle)), key=lambda i: order[cycle[i]])
                    cycle = cycle[start:] + cycle[:start]
                    found.append([*cycle, cycle[0]])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[aid] = 2

    for aid in graph:
        if aid not in state:
            visit(aid)
    return found
