"""Tokenizer for the expr-lang dialect: numbers, strings, names, operators, brackets."""

from __future__ import annotations

from typing import NamedTuple

from kdeps.errors import ExprError

# Token kinds.
NUMBER, STRING, IDENT, OP = "number", "string", "name", "operator"
BRACKET, POINTER, EOF = "bracket", "#", "end"

# Words the lexer turns into operator tokens instead of names.
WORD_OPERATORS = frozenset(
    {"not", "in", "or", "and", "matches", "contains", "startsWith", "endsWith", "let", "if", "else"}
)
_TWO_CHAR = frozenset({"==", "!=", "<=", ">=", "&&", "||", "**", "??", "?.", ".."})
_ONE_CHAR = frozenset("+-*/%^!<>=?:,;|&.")
_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
}
MAX_INT = 2**63 - 1


class Token(NamedTuple):
    kind: str
    value: object  # str for most kinds; int/float for NUMBER
    pos: int

    def describe(self) -> str:
        if self.kind == EOF:
            return "end of expression"
        if self.kind == STRING:
            return f"string {self.value!r}"
        if self.kind == POINTER:
            return f"'#{self.value}'"
        return f"'{self.value}'"


def _is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_" or ch == "$"


def tokenize(source: str) -> list[Token]:
    """Split `source` into tokens; raises ExprError at the first bad character."""
    tokens: list[Token] = []
    append = tokens.append
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch in " \t\r\n\f\v":
            i += 1
            continue
        start = i
        if ch == "/" and source.startswith("//", i):
            end = source.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if ch == "/" and source.startswith("/*", i):
            end = source.find("*/", i + 2)
            if end < 0:
                raise ExprError("unclosed comment", source, start)
            i = end + 2
            continue
        if ch == "'" or ch == '"':
            value, i = _scan_string(source, i)
            append(Token(STRING, value, start))
            continue
        if ch == "`":
            end = source.find("`", i + 1)
            if end < 0:
                raise ExprError("literal not terminated", source, start)
            append(Token(STRING, source[i + 1 : end], start))
            i = end + 1
            continue
        if ch.isdigit() or (ch == "." and i + 1 < n and source[i + 1].isdigit()):
            number, i = _scan_number(source, i)
            append(Token(NUMBER, number, start))
            continue
        if ch == "#":
            i += 1
            while i < n and _is_name_char(source[i]):
                i += 1
            append(Token(POINTER, source[start + 1 : i], start))
            continue
        if _is_name_char(ch):
            while i < n and _is_name_char(source[i]):
                i += 1
            word = source[start:i]
            append(Token(OP if word in WORD_OPERATORS else IDENT, word, start))
            continue
        if ch in "()[]{}":
            append(Token(BRACKET, ch, start))
            i += 1
            continue
        two = source[i : i + 2]
        if two in _TWO_CHAR:
            append(Token(OP, two, start))
            i += 2
            continue
        if ch in _ONE_CHAR:
            append(Token(OP, ch, start))
            i += 1
            continue
        raise ExprError(f"unrecognized character {ch!r}", source, start)
    append(Token(EOF, "", n))
    return tokens


def _scan_number(source: str, i: int) -> tuple[int | float, int]:
    start, n = i, len(source)
    digits = "0123456789_"
    base = 10
    if source.startswith(("0x", "0X"), i):
        digits, base, i = "0123456789abcdefABCDEF_", 16, i + 2
    elif source.startswith(("0o", "0O"), i):
        digits, base, i = "01234567_", 8, i + 2
    elif source.startswith(("0b", "0B"), i):
        digits, base, i = "01_", 2, i + 2
    while i < n and source[i] in digits:
        i += 1
    is_float = False
    if base == 10:
        # "1..3" is a range, not the float "1." followed by ".3".
        if i < n and source[i] == "." and not source.startswith("..", i):
            is_float = True
            i += 1
            while i < n and source[i] in digits:
                i += 1
        if i < n and source[i] in "eE":
            is_float = True
            i += 1
            if i < n and source[i] in "+-":
                i += 1
            while i < n and source[i] in digits:
                i += 1
    if i < n and _is_name_char(source[i]):
        raise ExprError(f"bad number syntax: {source[start : i + 1]!r}", source, start)
    text = source[start:i].replace("_", "")
    try:
        if is_float:
            value: int | float = float(text)
            if value == float("inf"):
                raise ExprError("float literal is too large", source, start)
            return value, i
        value = int(text, base) if base == 10 else int(text[2:], base)
    except ValueError:
        raise ExprError(f"bad number syntax: {source[start:i]!r}", source, start) from None
    if value > MAX_INT:
        raise ExprError("integer literal is too large", source, start)
    return value, i


def _scan_string(source: str, i: int) -> tuple[str, int]:
    quote, start, n = source[i], i, len(source)
    i += 1
    out: list[str] = []
    while True:
        j = i
        while j < n and source[j] not in (quote, "\\", "\n"):
            j += 1
        out.append(source[i:j])
        if j >= n or source[j] == "\n":
            raise ExprError("literal not terminated", source, start)
        if source[j] == quote:
            return "".join(out), j + 1
        # Escape sequence.
        if j + 1 >= n:
            raise ExprError("literal not terminated", source, start)
        esc = source[j + 1]
        i = j + 2
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
        elif esc == quote:
            out.append(quote)
        elif esc in "01234567":
            code = source[j + 1 : j + 4]
            if len(code) != 3 or any(c not in "01234567" for c in code) or int(code, 8) > 255:
                raise ExprError("invalid octal escape in string", source, j)
            out.append(chr(int(code, 8)))
            i = j + 4
        elif esc in "xuU":
            if esc == "u" and source.startswith("{", i):
                end = source.find("}", i)
                code, i = (source[i + 1 : end], end + 1) if end > 0 else ("", i)
            else:
                width = {"x": 2, "u": 4, "U": 8}[esc]
                code, i = source[i : i + width], i + width
                if len(code) != width:
                    code = ""
            try:
                out.append(chr(int(code, 16)))
            except ValueError:
                raise ExprError("invalid escape in string", source, j) from None
        else:
            raise ExprError(f"unknown escape sequence '\\{esc}' in string", source, j)
