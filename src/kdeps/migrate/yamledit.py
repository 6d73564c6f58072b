"""Edits of a ruamel.yaml round-trip tree that keep the comments with the keys they describe.

ruamel stores a full-line comment as the tail of whatever precedes it, so moving, renaming or
dropping a key moves, renames or re-homes its comments too; a block moved to a shallower depth has
its comments dedented with it.
"""

from __future__ import annotations

import io
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken


def round_trip() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long prompts
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def line_of(node: Any, key: Any = None) -> int | None:
    """1-based line of `node` (or of its `key`) in the source file."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        return int(lc.key(key)[0]) + 1 if key is not None else int(lc.line) + 1
    except (KeyError, TypeError, AttributeError):
        return None


def dedent_tokens(tokens: Any, by: int) -> None:
    """Shift the full-line comments among `tokens` left by `by` columns."""
    pattern = re.compile(r"\n {" + str(by) + r"}(?= *#)")
    if isinstance(tokens, CommentToken):
        tokens.value = pattern.sub("\n", tokens.value)
        if tokens.value.startswith("#") and tokens.column >= by:  # printed at its own column
            tokens.column = tokens.column - by
    elif isinstance(tokens, list):
        for token in tokens:
            dedent_tokens(token, by)


def dedent_comments(node: Any, by: int) -> None:
    """Shift the full-line comments inside a block moved `by` columns left along with its keys."""
    ca = getattr(node, "ca", None)
    if ca is not None:
        dedent_tokens(ca.comment, by)
        for tokens in ca.items.values():
            dedent_tokens(tokens, by)
        dedent_tokens(getattr(ca, "end", None), by)
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        dedent_comments(child, by)


def move(src: CommentedMap, key: str, dst: CommentedMap, new_key: str | None = None, *,
          dedent: int = 0) -> None:
    """Move `src[key]` to `dst[new_key or key]` with the comments attached to it."""
    value = src.pop(key)
    target = new_key or key
    dst[target] = value
    if key in src.ca.items:
        dst.ca.items[target] = src.ca.items.pop(key)
    if dedent:
        dedent_comments(value, dedent)
        dedent_tokens(dst.ca.items.get(target), dedent)


def rename(node: CommentedMap, old: str, new: str) -> None:
    """Rename a key in place, keeping its position and comments."""
    keys = list(node.keys())
    pos = keys.index(old)
    value = node.pop(old)
    comment = node.ca.items.pop(old, None)
    node.insert(pos, new, value)
    if comment is not None:
        node.ca.items[new] = comment


def _trail(container: Any, key: Any) -> list[tuple[Any, Any]]:
    """(container, key) from `container[key]` down to its last block-style element."""
    slots = [(container, key)]
    node = container[key]
    while isinstance(node, CommentedMap | CommentedSeq) and node and not node.fa.flow_style():
        last = list(node)[-1] if isinstance(node, dict) else len(node) - 1
        slots.append((node, last))
        node = node[last]
    return slots


def _slot(container: Any) -> int:
    return 2 if isinstance(container, dict) else 0


def detach_following(container: Any, key: Any) -> str:
    """Remove and return the full-line comments after `container[key]` (its end-of-line comment stays)."""
    for node, last in reversed(_trail(container, key)):
        tokens = node.ca.items.get(last)
        token = tokens[_slot(node)] if tokens and len(tokens) > _slot(node) else None
        if isinstance(token, CommentToken) and "\n" in token.value:
            first, _, rest = token.value.partition("\n")
            if "#" in rest:
                token.value = first + "\n"
                return rest
    return ""


def attach_following(container: Any, key: Any, text: str) -> None:
    node, last = _trail(container, key)[-1]
    tokens = node.ca.items.setdefault(last, [None, None, None, None])
    token = tokens[_slot(node)]
    if token is None:
        tokens[_slot(node)] = CommentToken("\n" + text, CommentMark(0), None)
    else:
        joined = (token.value if token.value.endswith("\n") else token.value + "\n") + text
        token.value = re.sub(r"\n{3,}", "\n\n", joined)


def comment_text(tokens: list[Any]) -> str:
    return "".join(t.value if t.value.startswith("\n") else " " * t.column + t.value for t in tokens)


def dedent_text(text: str, by: int) -> str:
    return re.sub(r"(?m)^ {" + str(by) + r"}", "", text)


def drop(node: CommentedMap, key: str) -> None:
    """Delete a key and its end-of-line comment; full-line comments after it move to the key before."""
    keys = list(node)
    pos = keys.index(key)
    tokens = node.ca.items.pop(key, None)
    del node[key]
    token = tokens[2] if isinstance(tokens, list) and len(tokens) > 2 else None
    if token is None or pos == 0:
        return
    text = token.value
    rest = text[text.index("\n") + 1:] if "\n" in text and not text.startswith("\n") else text
    if not rest.strip(" \n") and "\n\n" not in text:
        return
    prev = node.ca.items.setdefault(keys[pos - 1], [None, None, None, None])
    if prev[2] is None:
        prev[2] = CommentToken("\n" + rest.lstrip("\n") if not rest.startswith("\n") else rest,
                               token.start_mark, None)


def dump(yaml: YAML, docs: list[Any], explicit_start: bool = False) -> str:
    stream = io.StringIO()
    yaml.explicit_start = explicit_start
    yaml.dump_all(docs, stream)
    return stream.getvalue()
