"""Decode BFCL prompt-mode output for the JavaScript category the way BFCL's tree-sitter parser reads it.

BFCL parses `[f(a=1, b="x")]` (brackets dropped) as a JavaScript program with tree-sitter and keeps
the first expression statement that *is* a call (`f(a=1), g(b=2)` is a sequence, not a call, and
decodes to nothing). Each `name=value` argument becomes the value's *source text*, with one pair of
surrounding quotes removed; `typeconv.js_convert` later converts that text by the documented type.
Positional identifiers and `true` are stored under `None`; other positional arguments are ignored; a
name given twice, or any syntax error, fails the decode.

This is a hand-written recursive-descent parser covering JavaScript expressions (literals, template
strings, regexes, arrays, objects, arrow and function expressions, `new`, optional chaining,
operators) and expression / `let` / `const` / `var` statements with automatic semicolon insertion
at line breaks; other statements fail the decode (documented difference from tree-sitter). Function
and class bodies are skipped by brace matching.

This module holds the JavaScript tokenizer, grammar and BFCL's extraction; the token cursor, `Token`,
`Node`, the grammar shared with Java and BFCL's argument rules come from `callparse`.
"""

from __future__ import annotations

import re
from typing import Any

from .callparse import Node, Token, TokenParser, collect_arguments
from .pyparse import DecodeError, wrap_prompt_output

_ERROR = "Error js parsing the source code"

_PUNCTUATORS = sorted(
    """>>>= ... === !== **= <<= >>= >>> &&= ||= ??= => == != <= >= && || ?? ?. ++ -- += -= *= /= %= &= |= ^=
    ** << >> { } ( ) [ ] ; , < > + - * / % & | ^ ! ~ ? : = . @""".split(),
    key=len,
    reverse=True,
)
_PUNCT = re.compile("|".join(re.escape(p) for p in _PUNCTUATORS))
_SPACE = re.compile(r"(?:\s+|//[^\n]*|/\*.*?\*/)+", re.DOTALL)
_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F_]+n?|0[oO][0-7_]+n?|0[bB][01_]+n?|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?n?"
)
_IDENT = re.compile(r"#?[A-Za-z_$\u0080-\uffff][\w$\u0080-\uffff]*")
_STRING = re.compile(r"""'(?:[^'\\\n]|\\.|\\\n)*'|"(?:[^"\\\n]|\\.|\\\n)*\"""", re.DOTALL)
_REGEX = re.compile(r"/(?:[^/\\\[\n]|\\.|\[(?:[^\]\\\n]|\\.)*\])+/[a-z]*")

_RESERVED = {
    "break", "case", "catch", "class", "const", "continue", "debugger", "default", "delete", "do", "else",
    "export", "extends", "finally", "for", "function", "if", "import", "in", "instanceof", "new", "return",
    "super", "switch", "this", "throw", "try", "typeof", "var", "void", "while", "with", "enum",
    "true", "false", "null",
}  # fmt: skip
_REGEX_AFTER_KEYWORDS = {
    "return", "typeof", "case", "do", "else", "in", "instanceof", "new", "delete", "void", "throw",
}  # fmt: skip
_ASSIGN = {
    "=", "+=", "-=", "*=", "/=", "%=", "**=", "<<=", ">>=", ">>>=", "&=", "|=", "^=", "&&=", "||=", "??=",
}  # fmt: skip
_BINARY = {
    "??": 1, "||": 2, "&&": 3, "|": 4, "^": 5, "&": 6, "==": 7, "!=": 7, "===": 7, "!==": 7,
    "<": 8, ">": 8, "<=": 8, ">=": 8, "instanceof": 8, "in": 8, "<<": 9, ">>": 9, ">>>": 9,
    "+": 10, "-": 10, "*": 11, "/": 11, "%": 11, "**": 12,
}  # fmt: skip
_UNARY = {"!", "~", "+", "-", "typeof", "void", "delete", "await"}


def _template_end(source: str, start: int) -> int:
    """Index after the template literal opening at `start` (nested `${...}` and strings allowed)."""
    position = start + 1
    while position < len(source):
        char = source[position]
        if char == "\\":
            position += 2
            continue
        if char == "`":
            return position + 1
        if source.startswith("${", position):
            depth, position = 1, position + 2
            while position < len(source) and depth:
                char = source[position]
                if char in "'\"":
                    match = _STRING.match(source, position)
                    position = match.end() if match else position + 1
                    continue
                if char == "`":
                    position = _template_end(source, position)
                    continue
                depth += {"{": 1, "}": -1}.get(char, 0)
                position += 1
            continue
        position += 1
    raise DecodeError(f"{_ERROR}: unterminated template string")


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    position, newline = 0, False
    while position < len(source):
        space = _SPACE.match(source, position)
        if space:
            newline = newline or "\n" in space.group()
            position = space.end()
            continue
        char = source[position]
        previous = tokens[-1] if tokens else None
        regex_allowed = (
            previous is None
            or (previous.kind == "punct" and previous.text not in (")", "]", "}"))
            or (previous.kind == "keyword" and previous.text in _REGEX_AFTER_KEYWORDS)
        )
        if char in "'\"":
            match = _STRING.match(source, position)
            kind = "string"
        elif char == "`":
            end = _template_end(source, position)
            tokens.append(Token("template", source[position:end], position, end, newline))
            position, newline = end, False
            continue
        elif char == "/" and regex_allowed:
            match = _REGEX.match(source, position)
            kind = "regex"
        elif char.isdigit() or (char == "." and source[position + 1 : position + 2].isdigit()):
            match = _NUMBER.match(source, position)
            kind = "number"
        elif _IDENT.match(source, position):
            match = _IDENT.match(source, position)
            kind = "keyword" if match.group() in _RESERVED else "ident"
        else:
            match = _PUNCT.match(source, position)
            kind = "punct"
        if not match:
            raise DecodeError(f"{_ERROR}: unexpected {source[position : position + 10]!r}")
        tokens.append(Token(kind, match.group(), match.start(), match.end(), newline))
        position, newline = match.end(), False
    tokens.append(Token("eof", "", len(source), len(source), True))
    return tokens


class _Parser(TokenParser):
    error_prefix = _ERROR
    punct_kind = "punct"
    at_kinds = ("punct", "keyword", "ident")

    def __init__(self, source: str):
        super().__init__(source, tokenize(source))

    # -- statements ------------------------------------------------------------------------------
    def program(self) -> Node:
        statements = []
        while self.token.kind != "eof":
            if self.at(";"):
                statements.append(self.node("empty_statement", [self.leaf()]))
                continue
            if self.token.text in ("let", "const", "var") and self.peek().kind in ("ident", "punct"):
                statements.append(self.declaration())
                continue
            children = [self.expression()]
            self.end_statement(children)
            statements.append(self.node("expression_statement", children))
        return Node("program", 0, len(self.source), statements)

    def end_statement(self, children: list[Node]) -> None:
        if self.at(";"):
            children.append(self.leaf())
        elif not (self.token.newline_before or self.at("}")):  # automatic semicolon insertion
            raise self.fail("';'")

    def declaration(self) -> Node:
        children = [self.leaf()]
        while True:
            target = self.primary()
            parts = [target]
            if self.at("="):
                parts += [self.leaf(), self.assignment()]
            children.append(self.node("variable_declarator", parts))
            if not self.at(","):
                break
            children.append(self.leaf())
        self.end_statement(children)
        return self.node("lexical_declaration", children)

    # -- expressions -------------------------------------------------------------------------------
    def expression(self) -> Node:
        first = self.assignment()
        if not self.at(","):
            return first
        children = [first]
        while self.at(","):
            children += [self.leaf(), self.assignment()]
        return self.node("sequence_expression", children)

    def assignment(self) -> Node:
        arrow = self.try_arrow()
        if arrow is not None:
            return arrow
        left = self.conditional()
        if self.token.kind == "punct" and self.token.text in _ASSIGN:
            if left.type not in (
                "identifier",
                "member_expression",
                "subscript_expression",
                "array",
                "object",
            ):
                raise self.fail("an assignable expression")
            operator_node = self.leaf()
            right = self.assignment()
            node_type = (
                "assignment_expression" if operator_node.type == "=" else "augmented_assignment_expression"
            )
            return self.node(node_type, [left, operator_node, right])
        return left

    def try_arrow(self) -> Node | None:
        start = self.index
        prefix: list[Node] = []
        if self.at("async") and self.peek().kind in ("ident", "punct") and not self.peek().newline_before:
            if self.peek().text == "(" or (self.peek().kind == "ident" and self.peek(2).text == "=>"):
                prefix = [self.leaf()]
        if self.token.kind == "ident" and self.peek().text == "=>":
            params = self.leaf("identifier")
        elif self.at("("):
            close = self.matching(self.index, "(", ")")
            if close is None or self.tokens[close + 1].text != "=>":
                self.index = start
                return None
            params = self.skip_group("formal_parameters", close)
        else:
            self.index = start
            return None
        arrow = self.expect("=>")
        body = self.skip_braces("statement_block") if self.at("{") else self.assignment()
        return self.node("arrow_function", [*prefix, params, arrow, body])

    def binary(self, min_power: int) -> Node:
        left = self.unary()
        while True:
            token = self.token
            power = _BINARY.get(token.text) if token.kind in ("punct", "keyword") else None
            if power is None or power <= min_power:
                return left
            operator_node = self.leaf()
            right = self.binary(power - 1 if operator_node.type == "**" else power)  # ** is right-assoc
            left = self.node("binary_expression", [left, operator_node, right])

    def unary(self) -> Node:
        token = self.token
        if token.text in _UNARY and token.kind in ("punct", "keyword", "ident"):
            if (
                token.text != "await"
                or self.peek().kind not in ("punct",)
                or self.peek().text in ("(", "[", "!", "-", "+")
            ):
                return self.prefixed("await_expression" if token.text == "await" else "unary_expression")
        if token.kind == "punct" and token.text in ("++", "--"):
            return self.prefixed("update_expression")
        node = self.call_member(self.primary())
        if self.token.kind == "punct" and self.token.text in ("++", "--") and not self.token.newline_before:
            node = self.node("update_expression", [node, self.leaf()])
        return node

    def call_member(self, node: Node, allow_call: bool = True) -> Node:
        while True:
            token = self.token
            if self.at("."):
                dot = self.leaf()
                if self.token.kind not in ("ident", "keyword"):
                    raise self.fail("a property name")
                node = self.node("member_expression", [node, dot, self.leaf("property_identifier")])
            elif self.at("?."):
                chain = self.leaf("optional_chain")
                if self.at("(") and allow_call:
                    node = self.node("call_expression", [node, chain, self.arguments()])
                elif self.at("["):
                    node = self.node("subscript_expression", [node, chain, *self.bracket()])
                elif self.token.kind in ("ident", "keyword"):
                    node = self.node("member_expression", [node, chain, self.leaf("property_identifier")])
                else:
                    raise self.fail("a property name")
            elif self.at("["):
                node = self.node("subscript_expression", [node, *self.bracket()])
            elif self.at("(") and allow_call:
                node = self.node("call_expression", [node, self.arguments()])
            elif token.kind == "template":
                node = self.node("call_expression", [node, self.leaf("template_string")])
            else:
                return node

    def bracket(self) -> list[Node]:
        open_node = self.leaf()
        index = self.expression()
        return [open_node, index, self.expect("]")]

    def arguments(self) -> Node:
        return self.delimited("arguments", "(", ")", self.element)

    def element(self) -> Node:
        """An argument, array element or object member: `...spread` or an assignment expression."""
        if self.at("..."):
            spread = self.leaf()
            return self.node("spread_element", [spread, self.assignment()])
        return self.assignment()

    def primary(self) -> Node:
        token = self.token
        if token.kind == "number":
            return self.leaf("number")
        if token.kind == "string":
            return self.leaf("string")
        if token.kind == "template":
            return self.leaf("template_string")
        if token.kind == "regex":
            return self.leaf("regex")
        if token.kind == "ident":
            return self.leaf("identifier")
        if token.kind == "keyword":
            if token.text in ("true", "false", "null", "this", "super"):
                return self.leaf(token.text)
            if token.text == "new":
                return self.new_expression()
            if token.text == "function":
                return self.function_expression()
            if token.text == "class":
                children = [self.leaf()]
                if self.token.kind == "ident":
                    children.append(self.leaf("identifier"))
                if self.at("extends"):
                    children += [self.leaf(), self.call_member(self.primary())]
                children.append(self.skip_braces("class_body"))
                return self.node("class", children)
        if self.at("("):
            return self.parenthesized()
        if self.at("["):
            return self.array()
        if self.at("{"):
            return self.object()
        raise self.fail("an expression")

    def function_expression(self) -> Node:
        children = [self.leaf()]
        if self.at("*"):
            children.append(self.leaf())
        if self.token.kind == "ident":
            children.append(self.leaf("identifier"))
        close = self.matching(self.index, "(", ")") if self.at("(") else None
        if close is None:
            raise self.fail("'('")
        children.append(self.skip_group("formal_parameters", close))
        children.append(self.skip_braces("statement_block"))
        return self.node("function_expression", children)

    def new_expression(self) -> Node:
        new = self.leaf()
        callee = (
            self.new_expression() if self.at("new") else self.call_member(self.primary(), allow_call=False)
        )
        children = [new, callee]
        if self.at("("):
            children.append(self.arguments())
        return self.node("new_expression", children)

    def array(self) -> Node:
        children = [self.expect("[")]
        while not self.at("]"):
            if self.at(","):
                children.append(self.leaf())
                continue
            children.append(self.element())
            if self.at(","):
                children.append(self.leaf())
            elif not self.at("]"):
                raise self.fail("',' or ']'")
        children.append(self.expect("]"))
        return self.node("array", children)

    def object(self) -> Node:
        return self.delimited("object", "{", "}", self.property)

    def property(self) -> Node:
        if self.at("..."):
            return self.element()
        parts: list[Node] = []
        if self.token.text in ("get", "set", "async") and self.peek().text not in (",", ":", "(", "}"):
            parts.append(self.leaf())
        if self.at("*"):
            parts.append(self.leaf())
        if self.at("["):
            key = self.node("computed_property_name", self.bracket())
        elif self.token.kind in ("ident", "keyword", "string", "number"):
            key = self.leaf(
                "property_identifier" if self.token.kind in ("ident", "keyword") else self.token.kind
            )
        else:
            raise self.fail("a property name")
        parts.append(key)
        if self.at(":"):
            parts += [self.leaf(), self.assignment()]
            return self.node("pair", parts)
        if self.at("("):  # method
            close = self.matching(self.index, "(", ")")
            if close is None:
                raise self.fail("')'")
            parts.append(self.skip_group("formal_parameters", close))
            parts.append(self.skip_braces("statement_block"))
            return self.node("method_definition", parts)
        if key.type != "property_identifier" or len(parts) > 1:
            raise self.fail("':'")
        if self.at("="):  # shorthand with default, only valid in patterns
            parts += [self.leaf(), self.assignment()]
            return self.node("shorthand_property_identifier_pattern", parts)
        return self.node("shorthand_property_identifier", parts)


# ---------------------------------------------------------------------------------------------
# BFCL's extraction
# ---------------------------------------------------------------------------------------------
def _strip_quotes(text: str) -> str:
    if (text.startswith('"') and text.endswith('"')) or (text.startswith("'") and text.endswith("'")):
        return text[1:-1]
    return text


def parse_javascript_calls(source: str) -> Any:
    """BFCL's `parse_javascript_function_call`: `[{name: {param: text}}]`, or None when no call."""
    parser = _Parser(source)
    tree = parser.program()
    for statement in tree.children:
        if statement.type != "expression_statement":
            continue
        for child in statement.children:
            if child.type != "call_expression":
                continue
            name = source[child.children[0].start : child.children[0].end]
            arguments = collect_arguments(
                source,
                child.children[1].children,
                ("identifier", "true"),
                lambda n: _strip_quotes(parser.text(n)),
            )
            return [{name: arguments}]
    return None


def decode_javascript_calls(text: str) -> Any:
    """Prompt-mode output of a JavaScript record -> BFCL's decoded form (brackets stripped first)."""
    return parse_javascript_calls(wrap_prompt_output(text)[1:-1])
