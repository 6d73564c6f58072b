"""Read YAML documents into plain Python data while remembering where every key and value sits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from kdeps.errors import SpecError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path_ = tuple[str | int, ...]
Mark = tuple[int, int]  # 1-based (line, column)


@dataclass
class Document:
    """One YAML document: its data, where it starts, and the position of every key and value."""

    data: Any
    line: int
    col: int
    keys: dict[Path_, Mark] = field(default_factory=dict)
    values: dict[Path_, Mark] = field(default_factory=dict)

    def key_mark(self, path: Path_) -> Mark:
        """Position of the key at `path` (the closest enclosing one if it is not in the file)."""
        while path:
            if path in self.keys:
                return self.keys[path]
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return (self.line, self.col)

    def sub(self, path: Path_) -> Document:
        """The value at `path` as a document of its own (positions kept, paths made relative)."""
        n = len(path)
        line, col = self.values.get(path, (self.line, self.col))
        data: Any = self.data
        for part in path:
            data = data[part]
        return Document(
            data=data,
            line=line,
            col=col,
            keys={k[n:]: m for k, m in self.keys.items() if k[:n] == path and len(k) > n},
            values={k[n:]: m for k, m in self.values.items() if k[:n] == path and len(k) > n},
        )

    def value_mark(self, path: Path_) -> Mark:
        """Position of the value at `path` (the closest enclosing one if it is not in the file)."""
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return (self.line, self.col)


MAX_NODES = 200_000  # bounds alias expansion ("billion laughs")
MAX_DEPTH = 200


def _mark(node: yaml.Node) -> Mark:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self, file: str, errors: list[SpecError]) -> None:
        self.file = file
        self.errors = errors
        self.constructor = SafeConstructor()
        self.active: set[int] = set()  # nodes on the current path: an alias back to one is a loop
        self.budget = MAX_NODES

    def _fail(self, message: str, node: yaml.Node) -> None:
        line, col = _mark(node)
        self.errors.append(SpecError(message, self.file, line, col))

    def build(self, node: yaml.Node) -> Document:
        doc = Document(data=None, line=_mark(node)[0], col=_mark(node)[1])
        doc.data = self._value(node, (), doc)
        return doc

    def _value(self, node: yaml.Node, path: Path_, doc: Document) -> Any:
        doc.values[path] = _mark(node)
        self.budget -= 1
        if self.budget < 0:
            if self.budget == -1:
                self._fail(f"document too large: over {MAX_NODES} values once aliases are expanded", node)
            return None
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            if id(node) in self.active:
                self._fail("an alias refers to a value that contains it (recursive anchor)", node)
                return None
            if len(path) > MAX_DEPTH:
                self._fail(f"nesting deeper than {MAX_DEPTH} levels", node)
                return None
            self.active.add(id(node))
            try:
                if isinstance(node, yaml.MappingNode):
                    return self._mapping(node, path, doc)
                return [self._value(item, (*path, i), doc) for i, item in enumerate(node.value)]
            finally:
                self.active.discard(id(node))
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            line, col = _mark(node)
            self.errors.append(
                SpecError(f"bad YAML value: {getattr(exc, 'problem', exc)}", self.file, line, col)
            )
            return None

    def _mapping(self, node: yaml.MappingNode, path: Path_, doc: Document) -> dict[str, Any]:
        own_keys = {id(k) for k, _ in node.value}  # keys written here, not merged in from an anchor
        try:
            self.constructor.flatten_mapping(node)  # resolves `<<: *anchor` merges
        except yaml.YAMLError as exc:
            line, col = _mark(node)
            self.errors.append(
                SpecError(f"bad YAML merge: {getattr(exc, 'problem', exc)}", self.file, line, col)
            )
        out: dict[str, Any] = {}
        written: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                line, col = _mark(key_node)
                message = "mapping keys must be plain scalars"
                if key_node.flow_style and isinstance(key_node, yaml.MappingNode):
                    line, col = _mark(node)  # `key: {{ x }}` unquoted reads as a mapping in a mapping
                    message = "a value that starts with '{{' must be quoted: key: \"{{ ... }}\""
                self.errors.append(SpecError(message, self.file, line, col))
                continue
            # The key's source text: `on:` stays "on" rather than YAML 1.1's True.
            key = key_node.value
            key_path = (*path, key)
            if key in out and id(key_node) in own_keys and key in written:
                line, col = _mark(key_node)
                first = doc.keys[key_path]
                self.errors.append(
                    SpecError(
                        f"duplicate key '{key}' (first defined at line {first[0]})", self.file, line, col
                    )
                )
            if id(key_node) in own_keys:
                written.add(key)
            doc.keys[key_path] = _mark(key_node)
            out[key] = self._value(value_node, key_path, doc)
        return out


def read_documents(text: str, file: str, errors: list[SpecError]) -> list[Document]:
    """Parse every non-empty document of `text`. Syntax and structure problems are appended to
    `errors` (with `file`, line and column); documents read before a syntax error are still returned."""
    builder = _Builder(file, errors)
    docs: list[Document] = []
    try:
        for node in yaml.compose_all(text, Loader=_Loader):
            if node is None:
                continue
            doc = builder.build(node)
            if doc.data is not None:
                docs.append(doc)
    except yaml.MarkedYAMLError as exc:
        errors.append(syntax_error(exc, text, file))
    except yaml.YAMLError as exc:
        errors.append(SpecError(f"YAML error: {exc}", file, 1, 1))
    except RecursionError:
        errors.append(SpecError("YAML nested too deeply to read", file, 1, 1))
    return docs


def syntax_error(exc: yaml.MarkedYAMLError, text: str, file: str) -> SpecError:
    """A YAML syntax error in words a person acts on, at the line and column of the mistake
    (PyYAML reports where it noticed, which for a key without ':' is the line after)."""
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    lines = text.splitlines()
    problem = exc.problem or "invalid YAML"

    for n in sorted({line, *([exc.context_mark.line + 1] if exc.context_mark else [])}):
        src = lines[n - 1] if 0 < n <= len(lines) else ""
        indent = src[: len(src) - len(src.lstrip(" \t"))]
        if "\t" in indent:
            return SpecError("YAML syntax error: a tab character; YAML indents with spaces",
                             file, n, indent.index("\t") + 1)
    if "tab" in problem and 0 < line <= len(lines) and "\t" in lines[line - 1]:
        return SpecError("YAML syntax error: a tab character; YAML indents with spaces",
                         file, line, lines[line - 1].index("\t") + 1)

    if problem == "could not find expected ':'" and exc.context_mark is not None:
        at = exc.context_mark
        src = lines[at.line] if at.line < len(lines) else ""
        word = src.strip()[:40]
        return SpecError(f"YAML syntax error: '{word}' has no ':' after it; write 'key: value' "
                         "(or make it a list item with '- ')", file, at.line + 1, at.column + 1)

    if problem.startswith("mapping values are not allowed") and 0 < line <= len(lines):
        src = lines[line - 1]
        start = len(src) - len(src.lstrip(" "))
        above = _previous_content_line(lines, line - 1)
        if above is not None:
            above_text = lines[above]
            above_indent = len(above_text) - len(above_text.lstrip(" "))
            body = above_text.strip().removeprefix("- ")
            if above_indent == start and ": " not in body and not body.endswith(":"):
                # the line above is not a `key: value` line, so YAML read it as text running on
                # into this one: the mistake is up there
                hint = (f"'{body[:40]}' needs a space after ':'" if ":" in body
                        else f"'{body[:40]}' has no ':' after it; write 'key: value'")
                return SpecError(f"YAML syntax error: {hint}", file, above + 1, above_indent + 1)
            key, sep, value = above_text.strip().partition(":")
            if start > above_indent and sep and value.strip() and not src[:col - 1].strip().count(": "):
                return SpecError(
                    f"YAML syntax error: this line is indented deeper than '{key.lstrip('- ')}' on line "
                    f"{above + 1}, so YAML reads it as the rest of that value and then finds ': '; "
                    f"align it with '{key.lstrip('- ')}', or quote the value", file, line, start + 1)
        return SpecError("YAML syntax error: a value contains ': ' - put the value in quotes "
                         "(key: \"text: more\")", file, line, col)

    if problem == "found unexpected end of stream" and exc.context == "while scanning a quoted scalar" \
            and exc.context_mark is not None:
        at = exc.context_mark
        return SpecError("YAML syntax error: the quoted value that starts here is never closed; "
                         "add the closing quote", file, at.line + 1, at.column + 1)

    if problem.startswith("did not find expected ',' or") and exc.context_mark is not None:
        at = exc.context_mark
        bracket = "[" if "]" in problem else "{"
        opened = lines[at.line] if at.line < len(lines) else ""
        hint = "; a value starting with '{{' must be quoted" if "{{" in opened else ""
        return SpecError(f"YAML syntax error: the '{bracket}' opened here is not closed (or a ',' is "
                         f"missing){hint}", file, at.line + 1, at.column + 1)

    if problem == "did not find expected '-' indicator" and exc.context_mark is not None:
        at = exc.context_mark
        return SpecError(f"YAML syntax error: this line does not line up with the list items above it "
                         f"(they start at column {at.column + 1}); fix its indentation", file, line, col)

    if problem == "did not find expected key" and exc.context_mark is not None:
        at = exc.context_mark
        return SpecError(f"YAML syntax error: this line does not line up with the keys above it "
                         f"(they start at column {at.column + 1}); fix its indentation", file, line, col)

    if exc.context:
        problem = f"{problem} ({exc.context})"
    return SpecError(f"YAML syntax error: {problem}", file, line, col)


def _previous_content_line(lines: list[str], index: int) -> int | None:
    """Index of the closest line before `index` that is neither blank nor a comment."""
    for i in range(index - 1, -1, -1):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            return i
    return None
