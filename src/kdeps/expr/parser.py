"""Recursive-descent (precedence-climbing) parser producing a small AST.

Precedences, associativity and the odd corners (comparison chains, `not in`, pipes,
predicates with `#`/`.field`, `let`, `if {} else {}`, `??` not mixing with other
operators) follow expr-lang's parser.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kdeps.errors import ExprError
from kdeps.expr.lexer import BRACKET, EOF, IDENT, NUMBER, OP, POINTER, STRING, Token, tokenize

MAX_SOURCE = 64 * 1024  # characters
MAX_NESTING = 100  # parser recursion: parentheses, calls, unary and right-assoc chains
MAX_DEPTH = 250  # AST depth, which bounds the recursion of the compiled closures
MAX_NODES = 20_000

UNARY = {"not": 50, "!": 50, "-": 90, "+": 90}
BINARY: dict[str, int] = {
    "|": 0, "or": 10, "||": 10, "and": 15, "&&": 15,
    "==": 20, "!=": 20, "<": 20, ">": 20, ">=": 20, "<=": 20,
    "in": 20, "matches": 20, "contains": 20, "startsWith": 20, "endsWith": 20,
    "..": 25, "+": 30, "-": 30, "*": 60, "/": 60, "%": 60,
    "**": 100, "^": 100, "??": 500,
}
RIGHT_ASSOC = frozenset({"**", "^"})
COMPARISONS = frozenset({"<", ">", "<=", ">="})
NEGATABLE = frozenset({"in", "matches", "contains", "startsWith", "endsWith"})
# Operator words that may also be called like functions (`contains(s, 'x')`, as KDeps documents).
CALLABLE_OPERATORS = frozenset({"contains", "startsWith", "endsWith", "matches"})

EXPR, PRED, OPTIONAL = 1, 2, 4
PREDICATES: dict[str, tuple[int, ...]] = {
    "all": (EXPR, PRED), "none": (EXPR, PRED), "any": (EXPR, PRED), "one": (EXPR, PRED),
    "filter": (EXPR, PRED), "map": (EXPR, PRED),
    "count": (EXPR, PRED | OPTIONAL), "sum": (EXPR, PRED | OPTIONAL),
    "find": (EXPR, PRED), "findIndex": (EXPR, PRED), "findLast": (EXPR, PRED), "findLastIndex": (EXPR, PRED),
    "groupBy": (EXPR, PRED), "sortBy": (EXPR, PRED, EXPR | OPTIONAL), "reduce": (EXPR, PRED, EXPR | OPTIONAL),
}


class Node:
    """An AST node: `kind` plus kind-specific `args`; `depth` bounds evaluation recursion."""

    __slots__ = ("args", "depth", "kind", "pos")
    depth: int

    def __init__(self, kind: str, pos: int, *args: Any) -> None:
        self.kind, self.pos, self.args = kind, pos, args
        depth = 0
        for arg in args:
            if isinstance(arg, Node):
                depth = max(depth, arg.depth)
            elif isinstance(arg, list):
                for item in arg:
                    if isinstance(item, Node):
                        depth = max(depth, item.depth)
                    elif isinstance(item, tuple):
                        depth = max(depth, *(x.depth for x in item))
        self.depth = depth + 1

    def __repr__(self) -> str:
        return f"{self.kind}{self.args!r}"


class Parser:
    """Parses one source string; use `parse(source)`."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.i = 0
        self.cur: Token = self.tokens[0]
        self.predicate_depth = 0
        self.nesting = 0
        self.nodes = 0

    # -- helpers ---------------------------------------------------------------------------
    def error(self, message: str, token: Token | None = None) -> ExprError:
        token = token or self.cur
        return ExprError(message, self.source, token.pos)

    def unexpected(self) -> ExprError:
        return self.error(f"unexpected token {self.cur.describe()}")

    def advance(self) -> Token:
        token = self.cur
        self.i += 1
        self.cur = self.tokens[min(self.i, len(self.tokens) - 1)]
        return token

    def peek(self) -> Token:
        return self.tokens[min(self.i + 1, len(self.tokens) - 1)]

    def is_(self, kind: str, value: str | None = None) -> bool:
        return self.cur.kind == kind and (value is None or self.cur.value == value)

    def expect(self, kind: str, value: str | None = None) -> Token:
        if not self.is_(kind, value):
            if self.cur.kind == EOF:
                raise self.error(f"unexpected end of expression, expected '{value or kind}'")
            raise self.error(f"unexpected token {self.cur.describe()}, expected '{value or kind}'")
        return self.advance()

    def node(self, kind: str, pos: int, *args: Any) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExprError("expression is too large", self.source, pos)
        made = Node(kind, pos, *args)
        if made.depth > MAX_DEPTH:
            raise ExprError("expression is nested too deeply", self.source, pos)
        return made

    def enter(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.error("expression is nested too deeply")

    # -- grammar ---------------------------------------------------------------------------
    def parse(self) -> Node:
        node = self.parse_sequence()
        if self.cur.kind != EOF:
            raise self.unexpected()
        return node

    def parse_sequence(self) -> Node:
        nodes = [self.parse_expression(0)]
        while self.is_(OP, ";"):
            self.advance()
            if self.cur.kind == EOF or self.is_(BRACKET, ")") or self.is_(BRACKET, "}"):
                break
            nodes.append(self.parse_expression(0))
        return nodes[0] if len(nodes) == 1 else self.node("seq", nodes[0].pos, nodes)

    def parse_expression(self, precedence: int) -> Node:
        self.enter()
        try:
            return self._parse_expression(precedence)
        finally:
            self.nesting -= 1

    def _parse_expression(self, precedence: int) -> Node:
        if precedence == 0 and self.is_(OP, "let"):
            return self.parse_let()
        if precedence == 0 and self.is_(OP, "if"):
            return self.parse_if()
        left = self.parse_primary()
        prev_op = ""
        while self.cur.kind == OP:
            token = self.cur
            op = str(token.value)
            negate = False
            if op == "not":
                following = self.peek()
                if following.kind != OP or following.value not in NEGATABLE:
                    raise self.error(f"unexpected token {following.describe()} after 'not'", following)
                if BINARY[str(following.value)] < precedence:
                    break
                self.advance()
                token, op, negate = self.cur, str(following.value), True
            prec = BINARY.get(op)
            if prec is None or prec < precedence:
                break
            self.advance()
            if op == "|":
                name = self.cur
                if name.kind == IDENT or (name.kind == OP and name.value in CALLABLE_OPERATORS):
                    self.advance()
                else:
                    raise self.error(f"expected a function name after '|', got {name.describe()}")
                if not self.is_(BRACKET, "("):
                    raise self.error(f"expected '(' after '{name.value}'")
                left = self.parse_call(name, [left])
                prev_op = op
                continue
            if prev_op == "??" and op != "??":
                raise self.error(
                    f"operator '{op}' and coalesce expressions (??) cannot be mixed; "
                    "wrap either in parentheses",
                    token,
                )
            if op in COMPARISONS:
                left = self.parse_comparison(left, token, prec)
            else:
                right = self.parse_expression(prec if op in RIGHT_ASSOC else prec + 1)
                left = self.node("binary", token.pos, op, left, right)
                if negate:
                    left = self.node("unary", token.pos, "not", left)
            prev_op = op
        if precedence == 0:
            left = self.parse_conditional(left)
        return left

    def parse_comparison(self, left: Node, token: Token, prec: int) -> Node:
        root: Node | None = None
        while True:
            right = self.parse_expression(prec + 1)
            cmp = self.node("binary", token.pos, str(token.value), left, right)
            root = cmp if root is None else self.node("binary", token.pos, "&&", root, cmp)
            left = right
            if not (self.cur.kind == OP and self.cur.value in COMPARISONS):
                return root
            token = self.advance()

    def parse_conditional(self, node: Node) -> Node:
        while self.is_(OP, "?"):
            token = self.advance()
            if self.is_(OP, ":"):
                self.advance()
                node = self.node("elvis", token.pos, node, self.parse_expression(0))
            else:
                yes = self.parse_expression(0)
                self.expect(OP, ":")
                node = self.node("cond", token.pos, node, yes, self.parse_expression(0))
        return node

    def parse_let(self) -> Node:
        self.advance()
        name = self.expect(IDENT)
        self.expect(OP, "=")
        value = self.parse_expression(0)
        self.expect(OP, ";")
        body = self.parse_sequence()
        return self.node("let", name.pos, str(name.value), value, body)

    def parse_if(self) -> Node:
        token = self.advance()
        cond = self.parse_expression(0)
        self.expect(BRACKET, "{")
        yes = self.parse_sequence()
        self.expect(BRACKET, "}")
        self.expect(OP, "else")
        if self.is_(OP, "if"):
            self.enter()
            try:
                no = self.parse_if()
            finally:
                self.nesting -= 1
        else:
            self.expect(BRACKET, "{")
            no = self.parse_sequence()
            self.expect(BRACKET, "}")
        return self.node("cond", token.pos, cond, yes, no)

    def parse_primary(self) -> Node:
        token = self.cur
        if token.kind == OP and token.value in UNARY:
            self.advance()
            operand = self.parse_expression(UNARY[str(token.value)])
            return self.parse_postfix(self.node("unary", token.pos, str(token.value), operand))
        if token.kind == BRACKET and token.value == "(":
            self.advance()
            inner = self.parse_sequence()
            self.expect(BRACKET, ")")
            return self.parse_postfix(inner)
        if token.kind == POINTER or (token.kind == OP and token.value == "."):
            if self.predicate_depth == 0:
                raise self.error(f"unexpected token {token.describe()} (only valid inside a predicate)")
            name = ""
            if token.kind == POINTER:
                self.advance()
                name = str(token.value)
                if name not in ("", "index", "acc"):
                    raise self.error(f"unknown pointer '#{name}' (use #, #index or #acc)", token)
            return self.parse_postfix(self.node("ptr", token.pos, name))
        if token.kind == OP and token.value in CALLABLE_OPERATORS and self.peek().value == "(":
            self.advance()
            return self.parse_postfix(self.parse_call(token, []))
        return self.parse_postfix(self.parse_secondary())

    def parse_secondary(self) -> Node:
        token = self.cur
        kind = token.kind
        if kind == IDENT:
            self.advance()
            name = str(token.value)
            if name == "true":
                return self.node("const", token.pos, True)
            if name == "false":
                return self.node("const", token.pos, False)
            if name == "nil":
                return self.node("const", token.pos, None)
            if self.is_(BRACKET, "("):
                return self.parse_call(token, [])
            return self.node("ident", token.pos, name)
        if kind in (NUMBER, STRING):
            self.advance()
            return self.node("const", token.pos, token.value)
        if kind == BRACKET and token.value == "[":
            return self.parse_array()
        if kind == BRACKET and token.value == "{":
            return self.parse_map()
        if kind == EOF:
            raise self.error("unexpected end of expression")
        raise self.unexpected()

    def parse_call(self, name_token: Token, args: list[Node]) -> Node:
        name = str(name_token.value)
        spec = PREDICATES.get(name)
        if spec is None:
            return self.node("call", name_token.pos, name, self.parse_arguments(args))
        self.expect(BRACKET, "(")
        for index, kind in enumerate(spec[len(args) :]):
            if self.is_(BRACKET, ")"):
                if kind & OPTIONAL:
                    break
                raise self.error(f"{name}() expects at least {len(spec) - (1 if spec[-1] & OPTIONAL else 0)} "
                                 "arguments")
            if index > 0:
                self.expect(OP, ",")
            args.append(self.parse_predicate() if kind & PRED else self.parse_expression(0))
        if self.is_(OP, ","):
            self.advance()
        self.expect(BRACKET, ")")
        return self.node("call", name_token.pos, name, args)

    def parse_arguments(self, args: list[Node]) -> list[Node]:
        offset = len(args)
        self.expect(BRACKET, "(")
        while not self.is_(BRACKET, ")"):
            if len(args) > offset:
                self.expect(OP, ",")
                if self.is_(BRACKET, ")"):
                    break
            args.append(self.parse_expression(0))
        self.expect(BRACKET, ")")
        return args

    def parse_predicate(self) -> Node:
        token = self.cur
        braces = self.is_(BRACKET, "{")
        if braces:
            self.advance()
        self.predicate_depth += 1
        try:
            if braces:
                body = self.parse_sequence()
                self.expect(BRACKET, "}")
            else:
                body = self.parse_expression(0)
                if self.is_(OP, ";"):
                    raise self.error("wrap the predicate in braces { and } to use ';'")
        finally:
            self.predicate_depth -= 1
        return self.node("pred", token.pos, body)

    def parse_array(self) -> Node:
        token = self.advance()
        items: list[Node] = []
        while not self.is_(BRACKET, "]"):
            if items:
                self.expect(OP, ",")
                if self.is_(BRACKET, "]"):
                    break
            items.append(self.parse_expression(0))
        self.expect(BRACKET, "]")
        return self.node("array", token.pos, items)

    def parse_map(self) -> Node:
        token = self.advance()
        pairs: list[tuple[Node, Node]] = []
        while not self.is_(BRACKET, "}"):
            if pairs:
                self.expect(OP, ",")
                if self.is_(BRACKET, "}"):
                    break
            key_token = self.cur
            if key_token.kind in (NUMBER, STRING, IDENT) or (
                key_token.kind == OP and str(key_token.value).isidentifier()
            ):
                self.advance()
                key = self.node("const", key_token.pos, _key_text(key_token))
            elif self.is_(BRACKET, "("):
                key = self.parse_expression(0)
            else:
                raise self.error(
                    "a map key must be a quoted string, a number, a name, or an expression in parentheses"
                )
            self.expect(OP, ":")
            pairs.append((key, self.parse_expression(0)))
        self.expect(BRACKET, "}")
        return self.node("map", token.pos, pairs)

    def parse_postfix(self, node: Node) -> Node:
        chained = False
        while True:
            token = self.cur
            if token.kind == OP and token.value in (".", "?."):
                optional = token.value == "?."
                self.advance()
                if optional and self.is_(BRACKET, "["):
                    chained = True
                    node = self.parse_index(node, optional=True)
                    continue
                prop = self.cur
                if prop.kind != IDENT and not (prop.kind == OP and str(prop.value).isidentifier()):
                    raise self.error(f"expected a name after '{token.value}', got {prop.describe()}")
                self.advance()
                chained = chained or optional
                if self.is_(BRACKET, "("):
                    args = self.parse_arguments([])
                    node = self.node("method", prop.pos, node, str(prop.value), args, optional)
                else:
                    key = self.node("const", prop.pos, prop.value)
                    node = self.node("member", prop.pos, node, key, optional)
            elif token.kind == BRACKET and token.value == "[":
                node = self.parse_index(node, optional=False)
            else:
                break
        return self.node("chain", node.pos, node) if chained else node

    def parse_index(self, node: Node, optional: bool) -> Node:
        token = self.advance()  # "["
        if self.is_(OP, ":"):
            self.advance()
            upper = None if self.is_(BRACKET, "]") else self.parse_expression(0)
            self.expect(BRACKET, "]")
            return self.node("slice", token.pos, node, None, upper)
        index = self.parse_expression(0)
        if self.is_(OP, ":"):
            self.advance()
            upper = None if self.is_(BRACKET, "]") else self.parse_expression(0)
            self.expect(BRACKET, "]")
            return self.node("slice", token.pos, node, index, upper)
        self.expect(BRACKET, "]")
        return self.node("member", token.pos, node, index, optional)


def _key_text(token: Token) -> str:
    if token.kind == NUMBER:
        value = token.value
        return str(value)
    return str(token.value)


def walk(node: Any) -> Iterator[Node]:
    """Every node of an AST (or of a list/tuple of them), parents first."""
    if isinstance(node, Node):
        yield node
        for arg in node.args:
            yield from walk(arg)
    elif isinstance(node, list | tuple):
        for item in node:
            yield from walk(item)


def parse(source: str) -> Node:
    """Parse `source` into an AST; raises ExprError with the position of the first problem."""
    if len(source) > MAX_SOURCE:
        raise ExprError(f"expression is too long ({len(source)} characters, limit {MAX_SOURCE})")
    if not source.strip():
        raise ExprError("empty expression", source, 0)
    return Parser(source).parse()
