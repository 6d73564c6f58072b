"""Compile the AST into nested Python closures: parse once, run many times.

Every closure takes the run's Frame. Nothing here ever calls getattr or reaches a
Python attribute: member access is a dict lookup or a list/string index, and calls go
only to the builtins table or to the host functions in `Env.functions`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from kdeps.errors import ExprError, KdepsError
from kdeps.expr import values as V
from kdeps.expr.builtins import BUDGETED, PREDICATE_BUILTINS
from kdeps.expr.builtins.operators import op_contains, op_ends_with, op_in, op_matches, op_starts_with
from kdeps.expr.calls import function_call, method_call, predicate_call
from kdeps.expr.parser import Node, parse
from kdeps.expr.runtime import ACTIVE, ChainNil, Env, Fn, Frame, active_frame, at_pos


class Program:
    """A compiled expression. `run(env)` evaluates it; errors are ExprError with source and position."""

    __slots__ = ("_fn", "budgeted", "kind", "source")

    def __init__(self, source: str, fn: Fn, kind: str, budgeted: bool = True) -> None:
        self.source = source
        self._fn = fn
        self.kind = kind  # kind of the root AST node ("call", "binary", "seq", ...)
        self.budgeted = budgeted  # calls a builtin that charges the active frame (see BUDGETED)

    def run(self, env: Env) -> Any:
        frame = Frame(env)
        token = ACTIVE.set(frame) if self.budgeted else None
        try:
            return self._fn(frame)
        except ExprError as exc:
            if not exc.source:
                exc.source = self.source
            raise
        except KdepsError:
            raise
        except RecursionError:
            raise ExprError("expression or data nested too deeply", self.source) from None
        except MemoryError:
            raise ExprError("expression ran out of memory", self.source) from None
        except Exception as exc:  # a bug or an odd host value: still a clean, typed error
            raise ExprError(f"evaluation failed: {exc}", self.source) from None
        finally:
            if token is not None:
                ACTIVE.reset(token)

    def __repr__(self) -> str:
        return f"Program({self.source!r})"


def compile_expression(source: str) -> Program:
    """Parse and compile `source` (cached by source text); raises ExprError on syntax errors."""
    if not isinstance(source, str):
        raise ExprError(f"expression must be a string, got {type(source).__name__}")
    return _compile_cached(source)


@lru_cache(maxsize=4096)
def _compile_cached(source: str) -> Program:
    root = parse(source)
    try:
        fn = _compile(root, frozenset())
    except ExprError as exc:
        if not exc.source:
            exc.source = source
        raise
    return Program(source, fn, root.kind, _budgeted(root))


def _budgeted(node: Node) -> bool:
    """True when the tree calls a BUDGETED builtin or builds a range (`a..b`)."""
    stack: list[Any] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Node):
            if (item.kind == "call" and item.args[0] in BUDGETED) or (
                    item.kind == "binary" and item.args[0] == ".."):
                return True
            stack.extend(item.args)
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def evaluate(source: str, env: Env) -> Any:
    """Compile (cached) and run `source` against `env`."""
    return compile_expression(source).run(env)


# -- node compilers ----------------------------------------------------------------------------
def _compile(node: Node, scope: frozenset[str]) -> Fn:
    return _COMPILERS[node.kind](node, scope)


def _const(node: Node, scope: frozenset[str]) -> Fn:
    value = node.args[0]
    return lambda f: value


def _ident(node: Node, scope: frozenset[str]) -> Fn:
    name = node.args[0]
    if name in scope:
        return lambda f: f.locals[name]
    if name == "$env":
        return lambda f: dict(f.vars)
    return lambda f: f.vars.get(name)


def _ptr(node: Node, scope: frozenset[str]) -> Fn:
    name = node.args[0]
    if name == "index":
        return lambda f: f.idx
    if name == "acc":
        return lambda f: f.acc
    return lambda f: f.ptr


def _array(node: Node, scope: frozenset[str]) -> Fn:
    items = [_compile(n, scope) for n in node.args[0]]
    return lambda f: [item(f) for item in items]


def _map(node: Node, scope: frozenset[str]) -> Fn:
    pairs = [(_compile(k, scope), _compile(v, scope), k.pos) for k, v in node.args[0]]

    def build(f: Frame) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_fn, value_fn, pos in pairs:
            key = key_fn(f)
            try:
                out[key] = value_fn(f)
            except TypeError:
                raise ExprError(f"invalid map key of type {V.type_name(key)}", pos=pos) from None
        return out

    return build


def _seq(node: Node, scope: frozenset[str]) -> Fn:
    steps = [_compile(n, scope) for n in node.args[0]]

    def run(f: Frame) -> Any:
        result = None
        for step in steps:
            result = step(f)
        return result

    return run


def _let(node: Node, scope: frozenset[str]) -> Fn:
    name, value_node, body_node = node.args
    value = _compile(value_node, scope)
    body = _compile(body_node, scope | {name})
    missing = object()

    def run(f: Frame) -> Any:
        bound = value(f)
        saved = f.locals.get(name, missing)
        f.locals[name] = bound
        try:
            return body(f)
        finally:
            if saved is missing:
                del f.locals[name]
            else:
                f.locals[name] = saved

    return run


def _bool(value: Any, what: str, pos: int) -> bool:
    if value is True or value is False:
        return value
    raise ExprError(f"non-bool value ({V.type_name(value)}) used {what}", pos=pos)


def _cond(node: Node, scope: frozenset[str]) -> Fn:
    cond, yes, no = (_compile(n, scope) for n in node.args)
    pos = node.args[0].pos

    def run(f: Frame) -> Any:
        c = cond(f)
        if c is True:
            return yes(f)
        if c is False:
            return no(f)
        return yes(f) if _bool(c, "as condition", pos) else no(f)

    return run


def _elvis(node: Node, scope: frozenset[str]) -> Fn:
    left, right = (_compile(n, scope) for n in node.args)

    def run(f: Frame) -> Any:
        value = left(f)
        return value if V.truthy(value) else right(f)

    return run


def _unary(node: Node, scope: frozenset[str]) -> Fn:
    op, operand_node = node.args
    operand = _compile(operand_node, scope)
    pos = node.pos
    if op in ("!", "not"):

        def run_not(f: Frame) -> bool:
            value = operand(f)
            if value is True or value is False:
                return not value
            raise ExprError(f"invalid operation: {op} {V.type_name(value)}", pos=pos)

        return run_not
    if op == "-":
        if operand_node.kind == "const" and V.is_number(operand_node.args[0]):
            negative = -operand_node.args[0]
            return lambda f: negative

        def run_neg(f: Frame) -> Any:
            try:
                return V.negate(operand(f))
            except ExprError as exc:
                raise at_pos(exc, pos) from None

        return run_neg

    def run_plus(f: Frame) -> Any:
        value = operand(f)
        if V.is_number(value):
            return value
        raise ExprError(f"invalid operation: + {V.type_name(value)}", pos=pos)

    return run_plus


def _range(a: Any, b: Any) -> list[int]:
    """`a..b`, counted against the evaluation's budget."""
    if type(a) is int and type(b) is int and 0 < b - a + 1 <= V.MAX_ITEMS:
        active_frame().charge(b - a + 1)  # before building it
    return V.make_range(a, b)


_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": V.add, "-": V.sub, "*": V.mul, "/": V.div, "%": V.mod, "**": V.power, "^": V.power,
    "..": _range, "in": op_in, "contains": op_contains, "startsWith": op_starts_with,
    "endsWith": op_ends_with, "matches": op_matches,
}


def _binary(node: Node, scope: frozenset[str]) -> Fn:
    op, left_node, right_node = node.args
    left, right = _compile(left_node, scope), _compile(right_node, scope)
    pos = node.pos

    if op in ("&&", "and", "||", "or"):
        return _short_circuit(op, left, right, pos)
    if op == "??":

        def run_coalesce(f: Frame) -> Any:
            a = left(f)
            return right(f) if a is None or (a == "" and type(a) is str) else a

        return run_coalesce
    if op == "==":
        equal = V.equal
        return lambda f: equal(left(f), right(f))
    if op == "!=":
        equal = V.equal
        return lambda f: not equal(left(f), right(f))
    if op in ("<", ">", "<=", ">="):
        compare = V.compare

        def run_compare(f: Frame) -> bool:
            a, b = left(f), right(f)
            if type(a) is int and type(b) is int:
                return a < b if op == "<" else a > b if op == ">" else a <= b if op == "<=" else a >= b
            try:
                return compare(op, a, b)
            except ExprError as exc:
                raise at_pos(exc, pos) from None

        return run_compare
    if op == "in" and right_node.kind == "binary" and right_node.args[0] == "..":
        return _in_range(left, right_node, scope, pos)

    fn = _ARITH[op]

    def run_op(f: Frame) -> Any:
        a, b = left(f), right(f)
        try:
            return fn(a, b)
        except ExprError as exc:
            raise at_pos(exc, pos) from None

    return run_op


def _short_circuit(op: str, left: Fn, right: Fn, pos: int) -> Fn:
    """`&&` and `||`: the left side decides alone when it is the operator's absorbing value (false
    for `&&`, true for `||`); both sides must be booleans."""
    decided = op in ("||", "or")
    undecided = not decided

    def run(f: Frame) -> Any:
        a = left(f)
        if a is decided:
            return decided
        if a is undecided:
            return right(f)
        raise ExprError(f"non-bool value ({V.type_name(a)}) used with '{op}'", pos=pos)

    return run


def _in_range(needle: Fn, range_node: Node, scope: frozenset[str], pos: int) -> Fn:
    """`x in a..b` without building the list."""
    low, high = _compile(range_node.args[1], scope), _compile(range_node.args[2], scope)

    def run(f: Frame) -> bool:
        value, a, b = needle(f), low(f), high(f)
        if type(a) is not int or type(b) is not int:
            raise at_pos(V.mismatch("..", a, b), pos)
        return V.is_number(value) and a <= value <= b and value == int(value)

    return run


def _fetch(obj: Any, key: Any) -> Any:
    if type(obj) is dict or isinstance(obj, dict):
        try:
            return obj.get(key)
        except TypeError:
            raise ExprError(f"invalid map key of type {V.type_name(key)}") from None
    if isinstance(obj, list | tuple | str):
        if type(key) is not int:
            if V.is_number(key) and key == int(key):
                key = int(key)
            elif isinstance(key, str):
                if isinstance(obj, V.TextWithFields):
                    return obj.fields.get(key)
                raise ExprError(f"cannot fetch '{key}' from {V.type_name(obj)}")
            else:
                raise ExprError(f"cannot use {V.type_name(key)} as an index of {V.type_name(obj)}")
        size = len(obj)
        index = key + size if key < 0 else key
        if not 0 <= index < size:
            raise ExprError(f"index out of range: {key} (length is {size})")
        return obj[index]
    if obj is None:
        shown = f"'{key}'" if isinstance(key, str) else V.to_text(key)
        raise ExprError(f"cannot fetch {shown} from nil (use '?.' to allow nil)")
    raise ExprError(f"cannot fetch {V.to_text(key)} from {V.type_name(obj)}")


def _member(node: Node, scope: frozenset[str]) -> Fn:
    obj_node, key_node, optional = node.args
    obj = _compile(obj_node, scope)
    pos = node.pos
    if key_node.kind == "const":
        key = key_node.args[0]

        def run_const(f: Frame) -> Any:
            target = obj(f)
            if type(target) is dict:
                return target.get(key)
            if target is None and optional:
                raise ChainNil
            try:
                return _fetch(target, key)
            except ExprError as exc:
                raise at_pos(exc, pos) from None

        return run_const
    key_fn = _compile(key_node, scope)

    def run(f: Frame) -> Any:
        target = obj(f)
        if target is None and optional:
            raise ChainNil
        index = key_fn(f)
        try:
            return _fetch(target, index)
        except ExprError as exc:
            raise at_pos(exc, pos) from None

    return run


def _chain(node: Node, scope: frozenset[str]) -> Fn:
    inner = _compile(node.args[0], scope)

    def run(f: Frame) -> Any:
        try:
            return inner(f)
        except ChainNil:
            return None

    return run


def _slice(node: Node, scope: frozenset[str]) -> Fn:
    obj_node, low_node, high_node = node.args
    obj = _compile(obj_node, scope)
    low = _compile(low_node, scope) if low_node is not None else None
    high = _compile(high_node, scope) if high_node is not None else None
    pos = node.pos

    def bound(value: Any) -> int:
        if type(value) is int:
            return value
        if V.is_number(value) and value == int(value):
            return int(value)
        raise ExprError(f"slice bounds must be integers, got {V.type_name(value)}", pos=pos)

    def run(f: Frame) -> Any:
        target = obj(f)
        if not isinstance(target, list | tuple | str):
            raise ExprError(f"cannot slice {V.type_name(target)}", pos=pos)
        size = len(target)
        a = 0 if low is None else bound(low(f))
        b = size if high is None else bound(high(f))
        a = max(a + size if a < 0 else a, 0)
        b = min(max(b + size if b < 0 else b, 0), size)
        result = target[min(a, b) : b]
        return list(result) if isinstance(result, tuple) else result

    return run


def _call(node: Node, scope: frozenset[str]) -> Fn:
    name, arg_nodes = node.args
    if name in PREDICATE_BUILTINS:
        parts = [(True, _compile(a.args[0], scope)) if a.kind == "pred" else (False, _compile(a, scope))
                 for a in arg_nodes]
        return predicate_call(name, parts, node.pos)
    return function_call(name, [_compile(a, scope) for a in arg_nodes], node.pos)


def _method(node: Node, scope: frozenset[str]) -> Fn:
    obj_node, name, arg_nodes, optional = node.args
    args = [_compile(a, scope) for a in arg_nodes]
    namespace = obj_node.args[0] if obj_node.kind == "ident" and obj_node.args[0] not in scope else None
    return method_call(_compile(obj_node, scope), name, args, namespace, optional, node.pos)


def _pred(node: Node, scope: frozenset[str]) -> Fn:  # only reached for a predicate outside a call
    raise ExprError("unexpected predicate", pos=node.pos)


_COMPILERS: dict[str, Callable[[Node, frozenset[str]], Fn]] = {
    "const": _const, "ident": _ident, "ptr": _ptr, "array": _array, "map": _map, "seq": _seq,
    "let": _let, "cond": _cond, "elvis": _elvis, "unary": _unary, "binary": _binary, "member": _member,
    "chain": _chain, "slice": _slice, "call": _call, "method": _method, "pred": _pred,
}
