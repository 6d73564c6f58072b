"""Author-time Jinja2 preprocessing of workflow and resource files, as KDeps does before YAML parsing.

Only files that use Jinja2 statements or comments (`{%`, `{#`) and `.j2` files are rendered, so a
plain YAML file is never altered. The template sees `env` (the process environment) and Jinja2's
built-in filters and tests, in a sandbox. Every `{{ … }}` that is a KDeps runtime expression
(`get(…)`, `info(…)`, `item.x`, `request.body`, … anything naming something the template does not
define) is wrapped in `{% raw %}` first, so it reaches the runtime untouched. Request data never
goes through Jinja2: this runs once, on the files, when the agent is loaded.
"""

from __future__ import annotations

import os
import re
import traceback
from pathlib import Path
from typing import Any

from kdeps.errors import SpecError

_TEMPLATE_NAME = "<kdeps-yaml>"
_RAW_BLOCK = re.compile(r"\{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\}", re.S)
_EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.S)
# Names a file binds itself: {% for a, b in … %}, {% set x = … %}, {% macro m(p, q) %}, {% with y = … %}.
_FOR = re.compile(r"\{%-?\s*for\s+([\w\s,()]+?)\s+in\s")
_SET = re.compile(r"\{%-?\s*(?:set|with)\s+([\w\s,]+?)\s*=")
_MACRO = re.compile(r"\{%-?\s*macro\s+(\w+)\s*\(([^)]*)\)")
_IDENT = re.compile(r"[A-Za-z_]\w*")
# KDeps' `loop.index()` and `env('X')` are calls; Jinja2's `loop.index` (inside a for) and `env.X` are not.
_KDEPS_CALL = re.compile(r"\bloop\s*\.\s*\w+\s*\(|(?<![\w.])env\s*\(")
_JINJA_GLOBALS = frozenset({"range", "lipsum", "dict", "cycler", "joiner", "namespace", "env", "loop"})

# A file becomes a template by containing `{%` or `{#`; say how to keep them literal.
_LITERAL_HINT = (" (a file containing {% or {# is a Jinja2 template; for literal text write "
                 "{% raw %}…{% endraw %} around it)")

_environment: Any = None


def needs_rendering(text: str, file: str) -> bool:
    """True for `.j2` files and for files that use Jinja2 statements or comments."""
    return file.endswith(".j2") or "{%" in text or "{#" in text


def preprocess(text: str, file: str) -> str:
    """`text` rendered through Jinja2 when it needs it (see `needs_rendering`), else unchanged.
    Raises `SpecError` at file:line for a template error."""
    if not needs_rendering(text, file):
        return text
    from jinja2 import TemplateError, TemplateSyntaxError

    env = _env()
    protected = protect_runtime_expressions(text)
    try:
        template = env.from_string(protected)
    except TemplateSyntaxError as exc:
        hint = "" if file.endswith(".j2") else _LITERAL_HINT
        raise SpecError(f"Jinja2 template error: {exc.message}{hint}", file, exc.lineno or 1, 1) from None
    try:
        return str(template.render(env=dict(os.environ)))
    except TemplateError as exc:
        raise SpecError(f"Jinja2 template error: {exc.message or exc}", file, _line_of(exc), 1) from None
    except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
        raise SpecError(f"Jinja2 template error: {exc}", file, _line_of(exc), 1) from None


def protect_runtime_expressions(text: str) -> str:
    """Wrap every `{{ … }}` that Jinja2 should not evaluate in `{% raw %}…{% endraw %}`."""
    raw_spans = [m.span() for m in _RAW_BLOCK.finditer(text)]
    bound = _bound_names(text)
    out: list[str] = []
    pos = 0
    for match in _EXPRESSION.finditer(text):
        start, end = match.span()
        if any(a <= start and end <= b for a, b in raw_spans) or not _is_runtime(match.group(1), bound):
            continue
        out.append(text[pos:start])
        out.append("{% raw %}" + match.group(0) + "{% endraw %}")
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _is_runtime(expression: str, bound: frozenset[str]) -> bool:
    """True when `expression` is for the KDeps runtime: not valid Jinja2, or it names anything
    other than `env`, Jinja2's globals and what the file binds itself."""
    from jinja2 import TemplateSyntaxError, meta

    inner = expression.strip().strip("-+").strip()
    if not inner or _KDEPS_CALL.search(inner):
        return True
    try:
        tree = _env().parse("{{ " + inner + " }}")
    except TemplateSyntaxError:
        return True
    return not meta.find_undeclared_variables(tree) <= (_JINJA_GLOBALS | bound)


def _bound_names(text: str) -> frozenset[str]:
    names: set[str] = set()
    for pattern in (_FOR, _SET):
        for match in pattern.finditer(text):
            names.update(_IDENT.findall(match.group(1)))
    for match in _MACRO.finditer(text):
        names.add(match.group(1))
        names.update(_IDENT.findall(re.sub(r"=[^,]*", "", match.group(2))))
    return frozenset(names)


def _env() -> Any:
    global _environment
    if _environment is None:
        from jinja2.sandbox import SandboxedEnvironment

        _environment = SandboxedEnvironment(keep_trailing_newline=True, autoescape=False)
    return _environment


def _line_of(exc: BaseException) -> int:
    """The template line a render error happened on (Jinja2 rewrites tracebacks to template lines)."""
    line = 1
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == "<template>" and frame.lineno:
            line = frame.lineno
    return line


def resource_files(folder: Path) -> list[Path]:
    """The resource files of `folder`, sorted: *.yaml and *.yml, and *.yaml.j2 / *.yml.j2 unless the
    file they render to is there too (that file wins, as in KDeps)."""
    found: list[Path] = []
    for p in folder.iterdir():
        rendered = Path(p.stem)
        template = p.suffix == ".j2" and rendered.suffix in (".yaml", ".yml")
        fresh = template and not (folder / rendered).is_file()
        if p.is_file() and (p.suffix in (".yaml", ".yml") or fresh):
            found.append(p)
    return sorted(found)
