"""Machinery shared by the Java and JavaScript call decoders (`javaparse`, `jsparse`).

BFCL reads Java and JavaScript prompt-mode output with tree-sitter; both decoders replace it with a
hand-written recursive-descent parser over a token list. This module holds what the two parsers have
in common, language-neutral:

- `Token` (a lexed token) and `Node` (a syntax node named like the tree-sitter grammar's; leaves are
  tokens, `fields` holds the grammar's named children where a decoder needs them);
- `TokenParser`, the base class with the token cursor and node builders (`at`, `expect`, `leaf`,
  `node`, bracket matching, skipping a `{...}` body); each language sets the token kinds its
  operators have and the prefix of its error messages, which copy BFCL's wording per language;
- the grammar the two languages share: `a ? b : c`, `(expression)`, prefix operators, comma-separated lists in
  brackets;
- `collect_arguments` / `add_argument`, BFCL's reading of a call's arguments (`name=value` pairs by
  name, some positional kinds under `None`, others ignored; a name given twice fails the decode).

Each language module keeps its own tokenizer, grammar and BFCL extraction rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .pyparse import DecodeError


@dataclass(slots=True)
class Token:
    """A token: `kind` is the lexer's class (language-specific names, `eof` at the end)."""

    kind: str
    text: str
    start: int
    end: int
    newline_before: bool = False  # a line break precedes it (JavaScript's semicolon insertion)


@dataclass(slots=True)
class Node:
    """A syntax node named like tree-sitter's; leaves are tokens (type = node kind or the token)."""

    type: str
    start: int
    end: int
    children: list[Node] = field(default_factory=list)
    fields: dict[str, Node] = field(default_factory=dict)


def add_argument(arguments: dict[Any, Any], key: Any, value: Any) -> None:
    """Store one decoded argument; a name given twice fails the decode, as in BFCL."""
    if key in arguments:
        raise DecodeError("Error: Multiple arguments with the same name are not supported.")
    arguments[key] = value


def collect_arguments(
    source: str, nodes: Iterable[Node], positional: tuple[str, ...], value_text: Callable[[Node], str]
) -> dict[Any, Any]:
    """BFCL's reading of a call's argument nodes: `{name: value_text(value)}` for each `name=value`.

    Positional arguments whose node type is in `positional` are stored under `None`; other
    positional arguments (and the punctuation) are ignored; a name given twice fails the decode.
    """
    arguments: dict[Any, Any] = {}
    for argument in nodes:
        if argument.type == "assignment_expression":
            left = argument.children[0]
            add_argument(arguments, source[left.start : left.end], value_text(argument.children[2]))
        elif argument.type in positional:
            add_argument(arguments, None, value_text(argument))
    return arguments


class TokenParser:
    """Cursor over `tokenize(source)` with the helpers both recursive-descent parsers build on.

    Subclasses set `error_prefix` (the start of every decode error message), `punct_kind` (the token
    kind of operators and brackets) and `at_kinds` (the kinds `at` matches by text).
    """

    error_prefix = "Error parsing the source code"
    punct_kind = "punct"
    at_kinds: tuple[str, ...] = ("punct", "keyword")

    def __init__(self, source: str, tokens: list[Token]):
        self.source = source
        self.tokens = tokens
        self.index = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def at(self, text: str) -> bool:
        return self.token.text == text and self.token.kind in self.at_kinds

    def fail(self, what: str) -> DecodeError:
        token = self.token
        found = repr(token.text) if token.kind != "eof" else "end of input"
        return DecodeError(f"{self.error_prefix}: expected {what}, found {found} at {token.start}")

    def leaf(self, node_type: str | None = None) -> Node:
        token = self.token
        self.index += 1
        return Node(node_type or token.text, token.start, token.end)

    def expect(self, text: str) -> Node:
        if not self.at(text):
            raise self.fail(repr(text))
        return self.leaf()

    @staticmethod
    def node(node_type: str, children: list[Node], **fields: Node) -> Node:
        return Node(node_type, children[0].start, children[-1].end, children, fields)

    def text(self, node: Node) -> str:
        return self.source[node.start : node.end]

    def matching(self, index: int, open_text: str, close_text: str) -> int | None:
        """Index of the token closing the bracket opened at `index`, or None if it is never closed."""
        depth = 0
        for position in range(index, len(self.tokens)):
            token = self.tokens[position]
            if token.kind == self.punct_kind and token.text == open_text:
                depth += 1
            elif token.kind == self.punct_kind and token.text == close_text:
                depth -= 1
                if depth == 0:
                    return position
        return None

    def skip_group(self, node_type: str, close: int) -> Node:
        """A node of the tokens from the cursor to `close`, unparsed (their texts as leaf types)."""
        leaves = [Node(t.text, t.start, t.end) for t in self.tokens[self.index : close + 1]]
        self.index = close + 1
        return self.node(node_type, leaves)

    def skip_braces(self, node_type: str) -> Node:
        """The `{...}` at the cursor as one node, skipped by brace matching without being checked."""
        close = self.matching(self.index, "{", "}")
        if close is None:
            raise self.fail("'}'")
        return self.skip_group(node_type, close)

    # -- grammar both languages share; subclasses provide the rest --
    def conditional(self) -> Node:
        """`condition ? consequence : alternative` (branches at assignment level), or `binary(0)`."""
        condition = self.binary(0)
        if not self.at("?"):
            return condition
        question = self.leaf()
        consequence = self.assignment()
        colon = self.expect(":")
        return self.node("ternary_expression", [condition, question, consequence, colon, self.assignment()])

    def parenthesized(self) -> Node:
        open_node = self.expect("(")
        inner = self.expression()
        return self.node("parenthesized_expression", [open_node, inner, self.expect(")")])

    def prefixed(self, node_type: str) -> Node:
        """The prefix operator at the cursor applied to the `unary()` expression after it."""
        operator_node = self.leaf()
        return self.node(node_type, [operator_node, self.unary()])

    def delimited(self, node_type: str, open_text: str, close_text: str, item: Callable[[], Node]) -> Node:
        """`open item, item, close` (a trailing comma allowed) as one node of `node_type`."""
        children = [self.expect(open_text)]
        while not self.at(close_text):
            children.append(item())
            if self.at(","):
                children.append(self.leaf())
            elif not self.at(close_text):
                raise self.fail(f"',' or {close_text!r}")
        children.append(self.expect(close_text))
        return self.node(node_type, children)

    def binary(self, min_power: int) -> Node:
        raise NotImplementedError

    def assignment(self) -> Node:
        raise NotImplementedError

    def unary(self) -> Node:
        raise NotImplementedError

    def expression(self) -> Node:
        raise NotImplementedError
