"""kdeps.actions.splice on its own: the context read from the author's text and the encoding of a
value for it (shell word, Python literal or escaped text, URL segment or value)."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from kdeps.actions import splice
from kdeps.expr import Program


def const(value: object):
    return lambda _program: value


@pytest.mark.parametrize(("command", "words"), [
    ("printf '%s|' {{ v }}", ["a b'c"]),
    ("printf '%s|' 'x{{ v }}y'", ["xa b'cy"]),
    ('printf \'%s|\' "x{{ v }}y"', ["xa b'cy"]),
    ("printf '%s|' x\\{{ v }}", ["x\\a b'c"]),
])
def test_shell_value_is_one_word(command: str, words: list[str]) -> None:
    out = subprocess.run(["/bin/sh", "-c", splice.shell(command, const("a b'c"))], capture_output=True,
                         text=True, check=True).stdout
    assert out.split("|")[:-1][-len(words):] == words


@pytest.mark.parametrize(("source", "context"), [
    ("x = ", None),
    ("x = 1  # ", "#"),
    ("x = 'a", ("", "'")),
    ('x = rb"a', ("rb", '"')),
    ("x = f'''a {y} ", ("f", "'''")),
    ("x = f'{", None),
    ("x = f'{y:", ("f", "'")),
    ("x = f'{y:{", None),
    ("x = f'{d[\"", ("", '"')),
    ("x = f'{a != b} ", ("f", "'")),
    ("x = 'it\\'s ", ("", "'")),
    ("x = 'a' # 'b", "#"),
    ("x = \"a\" + '", ("", "'")),
])
def test_python_context(source: str, context: object) -> None:
    lexer = splice._PyLexer()
    lexer.feed(source)
    assert lexer.context() == context


@pytest.mark.parametrize("value", ["", "plain", "q'\"\\{}", "日本 😀", None, True, -3, 2.5, float("inf"),
                                   [1, "a", None], {"k": ["v", {"n": 1}]}])
def test_python_literal_rebuilds_the_value(value: object) -> None:
    code = splice.py_literal(value)
    assert not set(code) & set("'\"{}\\")
    got = eval(compile(ast.parse(code, mode="eval"), "<literal>", "eval"))
    assert got == value


def test_python_escaped_text_in_every_string_kind() -> None:
    value = "a'b\"c\\d{e}f\n日"
    script = ("import sys\nout = [f'{{ v }}', '{{ v }}', \"{{ v }}\", '''{{ v }}''', r'{{ v }}', "
              "rf'{{ v }}', b'{{ v }}'.decode()]\nsys.stdout.write(repr(out))")
    code = splice.python(script, const(value))
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert ast.literal_eval(out) == [value] * 7


@pytest.mark.parametrize(("template", "value", "url"), [
    ("http://h/a/{{ v }}/b", "../x?y#z", "http://h/a/..%2Fx%3Fy%23z/b"),
    ("http://h/a/{{ v }}", "..", "http://h/a/%2E%2E"),
    ("http://h/a?q={{ v }}&r=1", "1&r=2", "http://h/a?q=1%26r%3D2&r=1"),
    ("http://h/a#{{ v }}", "x y", "http://h/a#x%20y"),
    ("{{ v }}/api/x", "https://base.example:8443", "https://base.example:8443/api/x"),
    ("http://{{ v }}:8080/x", "internal-host", "http://internal-host:8080/x"),
])
def test_url_place_and_encoding(template: str, value: str, url: str) -> None:
    assert splice.url(template, const(value)) == url


@pytest.mark.parametrize("value", ["evil.example/", "a@b", "h?x", "h#x", "h\\x"])
def test_url_host_value_must_be_a_host(value: str) -> None:
    with pytest.raises(splice.UrlError):
        splice.url("http://{{ v }}/x", const(value))


@pytest.mark.parametrize("url", ["ftp://h/x", "file:///etc/passwd", "/relative", "http:///nohost"])
def test_only_absolute_http_urls(url: str) -> None:
    with pytest.raises(splice.UrlError):
        splice.check_url(url)


def test_evaluate_receives_programs() -> None:
    seen: list[str] = []

    def evaluate(program: Program) -> str:
        seen.append(program.source)
        return "v"

    splice.shell("echo {{ a }} {{ upper('b') }}", evaluate)
    assert seen == ["a", "upper('b')"]
