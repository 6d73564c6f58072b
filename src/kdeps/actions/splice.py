"""Splicing `{{ }}` values into code and URLs so that a value is always data, never code.

The author's text decides the context of each `{{ }}` (read from the literal parts only, never
from values), and the value is encoded for that context:

* shell (`exec.command`): one shell word, whatever quotes surround it — the author's quote is
  closed, a single-quoted value is written, and the quote is reopened;
* Python (`python.script`): in code a literal built without quotes or braces; inside a string
  or f-string escaped text (every non-alphanumeric character as an escape, braces included);
* URL (`httpClient.url`): in the path one percent-encoded segment, in the query or fragment one
  encoded value; only a value that starts the URL (a base URL, e.g. from `env`) may set scheme
  and host, and a value in the authority may only be a host name or port.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from kdeps.errors import ExprError
from kdeps.expr import Program, compile_template
from kdeps.expr.values import render_text

Evaluate = Callable[[Program], Any]


def _parts(text: str) -> list[str | Program]:
    return list(compile_template(text).parts)


# -- shell ---------------------------------------------------------------------------------------
def shell(text: str, evaluate: Evaluate) -> str:
    """`text` with each `{{ }}` value spliced as exactly one shell word (or part of the author's word)."""
    if "{{" not in text:
        return text
    state = _ShellState()
    out: list[str] = []
    for part in _parts(text):
        if isinstance(part, str):
            state.feed(part)
            out.append(part)
            continue
        value = render_text(evaluate(part))
        if state.comment:
            out.append(shlex.quote(value.replace("\n", " ").replace("\r", " ")))
            continue
        # A backslash the author wrote right before the value must not escape our quote: pair it.
        lead = "\\" if state.escaped else ""
        state.escaped = False
        if state.quote == "'":
            out.append("'" + shlex.quote(value) + "'")
        elif state.quote == '"':
            out.append(lead + '"' + shlex.quote(value) + '"')
        else:
            out.append(lead + shlex.quote(value))
    return "".join(out)


class _ShellState:
    """Quoting state of POSIX sh after the author's literal text (quotes, backslashes, comments)."""

    __slots__ = ("comment", "escaped", "quote", "word_start")

    def __init__(self) -> None:
        self.quote = ""  # "", "'" or '"'
        self.escaped = False
        self.comment = False
        self.word_start = True

    def feed(self, text: str) -> None:
        for ch in text:
            if self.comment:
                if ch == "\n":
                    self.comment, self.word_start = False, True
                continue
            if self.escaped:
                self.escaped, self.word_start = False, False
                continue
            if self.quote == "'":
                if ch == "'":
                    self.quote = ""
                continue
            if ch == "\\":
                self.escaped = True
                continue
            if self.quote == '"':
                if ch == '"':
                    self.quote = ""
                continue
            if ch in "'\"":
                self.quote, self.word_start = ch, False
            elif ch == "#" and self.word_start:
                self.comment = True
            else:
                self.word_start = ch in " \t\n;&|()<>"


# -- python --------------------------------------------------------------------------------------
def python(text: str, evaluate: Evaluate) -> str:
    """`text` with each `{{ }}` value spliced as a Python literal (code) or escaped text (strings)."""
    if "{{" not in text:
        return text
    lexer = _PyLexer()
    out: list[str] = []
    for part in _parts(text):
        if isinstance(part, str):
            lexer.feed(part)
            out.append(part)
            continue
        value = evaluate(part)
        context = lexer.context()
        if context is None:
            out.append("(" + py_literal(value) + ")")
        elif context == "#":
            out.append(_escape_text(render_text(value).replace("\n", " "), b=False))
        else:
            assert isinstance(context, tuple)
            prefix, quote_chars = context
            lower = prefix.lower()
            escaped = _escape_text(render_text(value), b="b" in lower)
            if "r" in lower:  # raw strings cannot escape: close, add an escaped literal, reopen
                bare = lower.replace("r", "").replace("f", "")
                out.append(f'{quote_chars} {bare}"{escaped}" {prefix}{quote_chars}')
            else:
                out.append(escaped)
    return "".join(out)


_WORD = re.compile(r"[A-Za-z0-9 _]")


def _escape_text(text: str, *, b: bool) -> str:
    """Text as string-literal content that holds no quote, brace or backslash of its own: valid
    and identical in '…', "…", triple-quoted strings and f-strings (escaped braces are literal)."""
    out: list[str] = []
    for ch in text:
        if _WORD.match(ch):
            out.append(ch)
        elif b or ord(ch) < 0x80:
            out.extend(f"\\x{byte:02x}" for byte in ch.encode())
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def py_literal(value: Any) -> str:
    """A Python expression rebuilding `value` without quote, brace or backslash characters, so it
    stays inert even if the surrounding text were a string."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(value)
        return f"float({py_literal(repr(value))})"
    if isinstance(value, str):
        if not value:
            return "str()"
        return "bytes((" + ",".join(str(b) for b in value.encode()) + ",)).decode()"
    if isinstance(value, list | tuple):
        return "[" + ",".join(py_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "dict((" + "".join(f"({py_literal(str(k))},{py_literal(v)})," for k, v in value.items()) + "))"
    return py_literal(render_text(value))


_PREFIX = re.compile(r"(?i)(rb|br|fr|rf|b|r|u|f)?$")


class _PyLexer:
    """Python's lexical context (code, comment, string) after the author's literal text.

    A stack of frames: `["code", depth]` (depth: open brackets, inside an f-string replacement
    field) and `["str", prefix, quote, in_spec]`. Only the author's literal text is fed.
    """

    def __init__(self) -> None:
        self.stack: list[list[Any]] = [["code", 0]]
        self.comment = False

    def context(self) -> tuple[str, str] | str | None:
        """None in code, "#" in a comment, else (prefix, quote) of the open string."""
        if self.comment:
            return "#"
        top = self.stack[-1]
        return None if top[0] == "code" else (top[1], top[2])

    def feed(self, src: str) -> None:
        i = 0
        while i < len(src):
            if self.comment:
                if src[i] == "\n":
                    self.comment = False
                i += 1
            elif self.stack[-1][0] == "code":
                i = self._code(src, i, self.stack[-1])
            else:
                i = self._string(src, i, self.stack[-1])

    def _code(self, src: str, i: int, top: list[Any]) -> int:
        ch = src[i]
        in_field = len(self.stack) > 1
        if ch == "#" and not in_field:
            self.comment = True
        elif ch in "'\"":
            j = i
            while j > 0 and src[j - 1].isalpha():
                j -= 1
            word = src[j:i]
            standalone = j == 0 or not (src[j - 1].isalnum() or src[j - 1] == "_")
            prefix = word if standalone and _PREFIX.match(word) else ""
            quote_chars = ch * 3 if src.startswith(ch * 3, i) else ch
            self.stack.append(["str", prefix, quote_chars, False])
            return i + len(quote_chars)
        elif in_field:
            if ch in "([{":
                top[1] += 1
            elif ch in ")]" or (ch == "}" and top[1] > 0):
                top[1] -= 1
            elif ch == "}":
                self.stack.pop()  # the replacement field ends
            elif top[1] == 0 and (ch == ":" or (ch == "!" and not src.startswith("!=", i))):
                self.stack.pop()  # a conversion or format spec follows, up to the closing brace
                self.stack[-1][3] = True
        return i + 1

    def _string(self, src: str, i: int, top: list[Any]) -> int:
        ch = src[i]
        if ch == "\\":
            return i + 2
        if src.startswith(top[2], i) and not top[3]:
            self.stack.pop()
            return i + len(top[2])
        if "f" in top[1].lower():
            if top[3]:  # inside a format spec: '{' opens a nested field, '}' ends the outer one
                if ch == "{":
                    self.stack.append(["code", 0])
                elif ch == "}":
                    top[3] = False
                return i + 1
            if src.startswith("{{", i) or src.startswith("}}", i):
                return i + 2
            if ch == "{":
                self.stack.append(["code", 0])
        return i + 1


# -- URL -----------------------------------------------------------------------------------------
class UrlError(ExprError):
    """A spliced value cannot go where it was placed in a URL."""


_HOSTISH = re.compile(r"^[A-Za-z0-9.\-\[\]:]*$")


def url(text: str, evaluate: Evaluate) -> str:
    """`text` with each `{{ }}` value percent-encoded for its place in the URL (see module doc)."""
    if "{{" not in text:
        return text
    out = ""
    for part in _parts(text):
        if isinstance(part, str):
            out += part
            continue
        value = render_text(evaluate(part))
        where = _url_place(out)
        if where == "start":
            out += value
        elif where == "authority":
            if not _HOSTISH.match(value):
                raise UrlError(f"a value placed in the host part of the URL must be a host name or port, "
                               f"got {value[:40]!r}")
            out += value
        elif where == "path":
            encoded = quote(value, safe="")
            if encoded.strip(".") == "":
                encoded = encoded.replace(".", "%2E")  # '.' and '..' segments would climb the path
            out += encoded
        else:
            out += quote(value, safe="")
    return out


def _url_place(prefix: str) -> str:
    """Where text appended to `prefix` lands: start, authority, path, query or fragment."""
    if "#" in prefix:
        return "fragment"
    if "?" in prefix:
        return "query"
    scheme_end = prefix.find("://")
    if scheme_end < 0:
        return "start" if "/" not in prefix else "path"
    return "path" if "/" in prefix[scheme_end + 3:] else "authority"


def check_url(value: str) -> None:
    """Only absolute http(s) URLs with a host go out."""
    try:
        parts = urlsplit(value)
    except ValueError as err:
        raise UrlError(f"invalid URL: {err}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlError("the URL must be absolute http:// or https:// with a host")
