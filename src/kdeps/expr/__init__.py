"""The KDeps expression language: the expr-lang dialect, compiled to Python closures.

Hand-written (lexer -> precedence-climbing parser -> closures) because no maintained
Python library implements expr-lang's syntax and semantics; the Go library
`expr-lang/expr` is the reference (its tests were used to check behaviour).

    >>> from kdeps.expr import Env, evaluate, render
    >>> env = Env(functions={"get": {"q": "hi"}.get})
    >>> evaluate("get('q') != ''", env)
    True
    >>> render("Q: {{ upper(get('q')) }}", env)
    'Q: HI'

Semantics worth knowing (see the tests for the full table):

* `/` always divides as floats; `**`/`^` give floats (Go's math.Pow); ints are 64-bit and
  overflow is an error; `%` truncates toward zero like Go; division by zero is an error.
* `==` compares ints and floats by value, containers element-wise; `nil == nil`;
  `nil == ''` is true (unlike expr-lang), so the documented preflight idiom `get('q') != ''`
  rejects a missing `q` as well as an empty one.
* `??` returns the right side when the left is nil *or the empty string*, as the KDeps
  documentation states (plain expr-lang only checks nil); `a ?: b` returns `a` when it is
  truthy (not nil/false/0/''/empty).
* `&&`, `||`, `!` and the ternary condition need booleans (an error otherwise), as in expr-lang.
* `a.b`, `a?.b`, `a['b']` read dict keys only (missing key -> nil); `.b` on nil is an
  error unless written `?.`, which makes the rest of the chain nil.
* Unknown identifiers are nil. Calls reach only builtins and `Env.functions`; host
  functions win over builtins of the same name (e.g. KDeps' `get`), except predicate
  builtins (`filter`, `map`, `all`, `any`, `none`, `one`, `count`, `sum`, `find*`,
  `groupBy`, `sortBy`, `reduce`) whose arguments are closures.
* Methods exist only on dates and durations (`now().Year()`, `duration('1h').Hours()`);
  `contains`, `startsWith`, `endsWith`, `matches` also work as functions.
* Limits (each an ExprError): 64 KiB of source, nesting depth, 64-bit ints, strings and
  lists of at most 1e6 items, 2 s of iteration per evaluation.
"""

from kdeps.expr.compiler import Program, compile_expression, evaluate
from kdeps.expr.runtime import Env
from kdeps.expr.template import compile_template, is_bare_expression, render

__all__ = [
    "Env",
    "Program",
    "compile_expression",
    "compile_template",
    "evaluate",
    "is_bare_expression",
    "render",
]
