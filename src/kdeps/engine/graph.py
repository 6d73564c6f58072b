"""Dependency graph of resources: what the target needs, in an order that respects `requires`."""

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
