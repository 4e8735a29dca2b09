"""Decode BFCL prompt-mode output for the Java category the way BFCL's tree-sitter parser reads it.

BFCL parses `[Cls.method(a=1, b="x")]` (brackets dropped) as a Java program with tree-sitter, takes
the first method invocation, and turns each `name=value` argument into the *text* of the value as its
`traverse_node` renders it. That text is what `typeconv.java_convert` later converts by type, so the
rendering rules decide verdicts and are reproduced here:

- a string or char literal at the top level loses its quotes (`"x"` -> `x`); nested ones keep them;
- identifiers, class literals and method invocations keep their source text verbatim;
- `new T[]{...}` becomes `new T[]{...}` with the tokens of T and of the initializer joined without
  spaces; `new T<...>(args)` becomes `new T<...>(a, b)` -- its anonymous class body (`{{ put(..); }}`)
  is dropped;
- any other expression is its tokens joined without spaces (`1 + 2` -> `1+2`);
- only the first method invocation counts; positional identifiers are stored under `None`; a name
  given twice, or any syntax error, fails the decode; no invocation at all decodes to `{}`.

This is a hand-written recursive-descent parser for the expression subset models write (literals,
names, field access, calls, `new`, arrays, casts, lambdas, operators), not all of Java: statements
other than expression statements (declarations, `if`, ...) fail the decode, and anonymous class bodies
are skipped by brace matching without being checked (documented difference from tree-sitter).
`callparse` holds the token cursor, `Token`, `Node`, the grammar shared with JavaScript and BFCL's
argument rules; the Java tokenizer, grammar and value rendering are here.
"""

from __future__ import annotations

import re
from typing import Any

from .callparse import Node, Token, TokenParser, collect_arguments
from .pyparse import DecodeError, wrap_prompt_output

_ERROR = "Error parsing java the source code"

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<textblock>\"\"\".*?(?<!\\)\"\"\")
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<char>'(?:[^'\\\n]|\\(?:u+[0-9a-fA-F]{4}|[0-7]{1,3}|.))')
  | (?P<number>0[xX][0-9a-fA-F_]+[lL]?|0[bB][01_]+[lL]?
        |(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?[lLfFdD]?)
  | (?P<ident>[A-Za-z_$\u0080-\uffff][\w$\u0080-\uffff]*)
  | (?P<op>->|::|\+\+|--|&&|\|\||==|!=|<=|<<=|<<|\+=|-=|\*=|/=|%=|&=|\|=|\^=|\.\.\.|[-+*/%=<>!~?:;,.@(){}\[\]&|^])
    """,
    re.VERBOSE | re.DOTALL,
)

_LITERAL_KEYWORDS = {
    "true": "true",
    "false": "false",
    "null": "null_literal",
    "this": "this",
    "super": "super",
}
_PRIMITIVES = {"int", "long", "short", "byte", "char", "float", "double", "boolean", "void"}
_RESERVED = {
    "new", "class", "if", "else", "for", "while", "do", "return", "switch", "case", "default", "break",
    "continue", "try", "catch", "finally", "throw", "throws", "import", "package", "public", "private",
    "protected", "static", "final", "abstract", "instanceof", "enum", "interface", "extends",
    "implements", "synchronized", "volatile", "transient", "native", "assert", "goto", "const",
}  # fmt: skip
_ASSIGN_OPS = {"=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=", ">>>="}
# binding powers of binary operators (tree-sitter-java's precedences, in order)
_BINARY = {
    "||": 3, "&&": 4, "|": 5, "^": 6, "&": 7, "==": 8, "!=": 8,
    "<": 9, ">": 9, "<=": 9, ">=": 9, "instanceof": 9,
    "<<": 10, ">>": 10, ">>>": 10, "+": 11, "-": 11, "*": 12, "/": 12, "%": 12,
}  # fmt: skip


def tokenize(source: str) -> list[Token]:
    tokens = []
    position = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if not match or match.end() == position:
            raise DecodeError(f"{_ERROR}: unexpected {source[position : position + 10]!r}")
        kind = match.lastgroup
        if kind != "ws":
            text = match.group()
            if kind == "textblock":
                kind = "string"
            elif kind == "ident" and (text in _LITERAL_KEYWORDS or text in _RESERVED | _PRIMITIVES):
                kind = "keyword"
            tokens.append(Token(kind, text, match.start(), match.end()))
        position = match.end()
    tokens.append(Token("eof", "", len(source), len(source)))
    return tokens


class _Parser(TokenParser):
    error_prefix = _ERROR
    punct_kind = "op"
    at_kinds = ("op", "keyword")

    def __init__(self, source: str):
        super().__init__(source, tokenize(source))

    # -- token helpers --------------------------------------------------------------------------
    def _merged_greater(self) -> str | None:
        """`>` is lexed alone (generics need it); merge adjacent `>`/`=` into `>>`, `>=`, `>>>=`."""
        if not (self.token.kind == "op" and self.token.text == ">"):
            return None
        text, end, offset = ">", self.token.end, 1
        while True:
            nxt = self.peek(offset)
            if nxt.kind == "op" and nxt.start == end and nxt.text in (">", "=") and "=" not in text:
                text += nxt.text
                end = nxt.end
                offset += 1
            else:
                break
        while text not in (">", ">>", ">>>", ">=", ">>=", ">>>="):
            text = text[:-1]
        return text

    def take_merged(self, text: str) -> Node:
        start = self.token.start
        consumed = 0
        while consumed < len(text):
            consumed += len(self.token.text)
            self.index += 1
        return Node(text, start, start + len(text))

    # -- program --------------------------------------------------------------------------------
    def program(self) -> Node:
        statements = []
        while self.token.kind != "eof":
            if self.at(";"):
                statements.append(self.leaf())
                continue
            expression = self.expression()
            children = [expression]
            if self.at(";"):
                children.append(self.leaf())
            elif self.token.kind != "eof":  # tree-sitter only tolerates a missing ';' at the end
                raise self.fail("';'")
            statements.append(self.node("expression_statement", children))
        return Node("program", 0, len(self.source), statements)

    # -- expressions ----------------------------------------------------------------------------
    def expression(self) -> Node:
        lambda_node = self.try_lambda()
        if lambda_node is not None:
            return lambda_node
        left = self.conditional()
        op = (
            self._merged_greater() if self.at(">") else (self.token.text if self.token.kind == "op" else None)
        )
        if op in _ASSIGN_OPS:
            if left.type not in ("identifier", "field_access", "array_access"):
                raise self.fail("an assignable expression")
            operator_node = self.take_merged(op) if op.startswith(">") else self.leaf()
            right = self.expression()
            return self.node("assignment_expression", [left, operator_node, right], left=left, right=right)
        return left

    assignment = expression  # Java has no comma expression: the branches of `a ? b : c` are expressions

    def try_lambda(self) -> Node | None:
        if self.token.kind == "ident" and self.peek().text == "->":
            params = self.leaf("identifier")
        elif self.at("("):
            close = self.matching(self.index, "(", ")")
            if close is None or self.tokens[close + 1].text != "->":
                return None
            start = self.index
            self.index = close + 1
            params = Node("formal_parameters", self.tokens[start].start, self.tokens[close].end,
                          [Node(t.text if t.kind == "op" else "identifier", t.start, t.end)
                           for t in self.tokens[start:close + 1]])  # fmt: skip
        else:
            return None
        arrow = self.expect("->")
        body = self.block() if self.at("{") else self.expression()
        return self.node("lambda_expression", [params, arrow, body], body=body)

    def block(self) -> Node:
        children = [self.expect("{")]
        while not self.at("}"):
            if self.token.kind == "eof":
                raise self.fail("'}'")
            if self.at("return"):
                parts = [self.leaf()]
                if not self.at(";"):
                    parts.append(self.expression())
                parts.append(self.expect(";"))
                children.append(self.node("return_statement", parts))
            elif self.at(";"):
                children.append(self.leaf())
            else:
                children.append(self.node("expression_statement", [self.expression(), self.expect(";")]))
        children.append(self.expect("}"))
        return self.node("block", children)

    def binary(self, min_power: int) -> Node:
        left = self.unary()
        while True:
            if self.at(">"):
                op = self._merged_greater()
            elif self.token.kind in ("op", "keyword"):
                op = self.token.text
            else:
                op = None
            power = _BINARY.get(op) if op else None
            if power is None or power <= min_power:
                return left
            if op == "instanceof":
                operator_node = self.leaf()
                right = self.type_node()
                left = self.node("instanceof_expression", [left, operator_node, right])
                continue
            operator_node = self.take_merged(op) if op.startswith(">") else self.leaf()
            right = self.binary(power)
            left = self.node("binary_expression", [left, operator_node, right])

    def unary(self) -> Node:
        if self.token.kind == "op" and self.token.text in ("+", "-", "!", "~"):
            return self.prefixed("unary_expression")
        if self.token.kind == "op" and self.token.text in ("++", "--"):
            return self.prefixed("update_expression")
        cast = self.try_cast()
        if cast is not None:
            return cast
        node = self.postfix(self.primary())
        while self.token.kind == "op" and self.token.text in ("++", "--"):
            node = self.node("update_expression", [node, self.leaf()])
        return node

    def try_cast(self) -> Node | None:
        if not self.at("("):
            return None
        close = self.matching(self.index, "(", ")")
        if close is None:
            return None
        inner = self.tokens[self.index + 1 : close]
        after = self.tokens[close + 1]
        if not inner or not all(t.kind in ("ident", "keyword", "op") for t in inner):
            return None
        if not all(t.kind != "op" or t.text in (".", "<", ">", ",", "[", "]", "?", "&") for t in inner):
            return None
        first = inner[0]
        if first.kind == "keyword" and first.text not in _PRIMITIVES:
            return None
        starts_operand = after.kind in ("ident", "number", "string", "char") or after.text in ("(", "!", "~")
        if after.kind == "keyword":
            starts_operand = after.text in _LITERAL_KEYWORDS or after.text == "new"
        if first.kind == "keyword" and after.text in ("+", "-"):
            starts_operand = True  # (int) -1 is a cast; (x) - 1 is a subtraction
        if not starts_operand:
            return None
        open_node = self.leaf()
        type_node = self.type_node()
        close_node = self.expect(")")
        return self.node("cast_expression", [open_node, type_node, close_node, self.unary()])

    def primary(self) -> Node:
        token = self.token
        if token.kind == "number":
            node_type = "decimal_floating_point_literal" if re.search(r"[.eEfFdD]", token.text) and not \
                token.text.lower().startswith("0x") else "decimal_integer_literal"  # fmt: skip
            return self.leaf(node_type)
        if token.kind == "string":
            return self.leaf("string_literal")
        if token.kind == "char":
            return self.leaf("character_literal")
        if token.kind == "ident":
            if self.peek().text == "(":
                name = self.leaf("identifier")
                arguments = self.argument_list()
                return self.node("method_invocation", [name, arguments], name=name, arguments=arguments)
            return self.leaf("identifier")
        if token.kind == "keyword":
            if token.text in _LITERAL_KEYWORDS:
                return self.leaf(_LITERAL_KEYWORDS[token.text])
            if token.text == "new":
                return self.creation()
            if token.text in _PRIMITIVES:  # int.class, int[].class
                type_node = self.type_node()
                if self.at(".") and self.peek().text == "class":
                    return self.node("class_literal", [type_node, self.leaf(), self.leaf()])
                raise self.fail("an expression")
        if self.at("("):
            return self.parenthesized()
        raise self.fail("an expression")

    def postfix(self, node: Node) -> Node:
        while True:
            if self.at("."):
                dot = self.leaf()
                if self.at("class"):
                    node = self.node("class_literal", [node, dot, self.leaf()])
                    continue
                if self.token.kind == "keyword" and self.token.text in ("this", "super", "new"):
                    raise self.fail("a member name")
                if self.token.kind != "ident":
                    raise self.fail("a member name")
                name = self.leaf("identifier")
                if self.at("("):
                    arguments = self.argument_list()
                    node = self.node(
                        "method_invocation",
                        [node, dot, name, arguments],
                        object=node,
                        name=name,
                        arguments=arguments,
                    )
                else:
                    node = self.node("field_access", [node, dot, name], object=node, field=name)
            elif self.at("["):
                if self.peek().text == "]":  # Foo[].class
                    dims = [self.leaf(), self.leaf()]
                    node = self.node("array_type", [node, self.node("dimensions", dims)])
                    if not (self.at(".") and self.peek().text == "class"):
                        raise self.fail("'.class'")
                    continue
                open_node = self.leaf()
                index = self.expression()
                node = self.node("array_access", [node, open_node, index, self.expect("]")])
            elif self.at("::"):
                colons = self.leaf()
                if not (self.token.kind == "ident" or self.at("new")):
                    raise self.fail("a method name")
                node = self.node("method_reference", [node, colons, self.leaf()])
            else:
                return node

    def argument_list(self) -> Node:
        children = [self.expect("(")]
        if not self.at(")"):
            children.append(self.expression())
            while self.at(","):
                children.append(self.leaf())
                children.append(self.expression())
        children.append(self.expect(")"))
        return self.node("argument_list", children)

    # -- types and creation -----------------------------------------------------------------------
    def type_node(self) -> Node:
        token = self.token
        if token.kind == "keyword" and token.text in _PRIMITIVES:
            word = self.leaf()
            node_type = {"boolean": "boolean_type", "void": "void_type"}.get(token.text)
            if node_type is None:
                node_type = "floating_point_type" if token.text in ("float", "double") else "integral_type"
            node = self.node(node_type, [word])
        elif token.kind == "ident":
            node = self.leaf("type_identifier")
            while self.at(".") and self.peek().kind == "ident":
                dot = self.leaf()
                node = self.node("scoped_type_identifier", [node, dot, self.leaf("type_identifier")])
            if self.at("<"):
                node = self.node("generic_type", [node, self.type_arguments()])
        elif self.at("?"):  # wildcard inside type arguments
            node = self.leaf("wildcard")
            if self.token.kind == "keyword" and self.token.text in ("extends", "super"):
                node = self.node("wildcard", [node, self.leaf(), self.type_node()])
        else:
            raise self.fail("a type")
        while self.at("[") and self.peek().text == "]":
            dims = self.node("dimensions", [self.leaf(), self.leaf()])
            node = self.node("array_type", [node, dims], element=node, dimensions=dims)
        return node

    def type_arguments(self) -> Node:
        children = [self.expect("<")]
        if not self.at(">"):
            children.append(self.type_node())
            while self.at(","):
                children.append(self.leaf())
                children.append(self.type_node())
        if not (self.token.kind == "op" and self.token.text == ">"):
            raise self.fail("'>'")
        children.append(self.leaf())
        return self.node("type_arguments", children)

    def creation(self) -> Node:
        new = self.leaf()
        type_node = self.type_node()
        if type_node.type == "array_type" or self.at("["):
            return self.array_creation(new, type_node)
        if not self.at("("):
            raise self.fail("'(' or '['")
        arguments = self.argument_list()
        children = [new, type_node, arguments]
        if self.at("{"):
            children.append(self.skip_braces("class_body"))
        return self.node("object_creation_expression", children, type=type_node, arguments=arguments)

    def array_creation(self, new: Node, type_node: Node) -> Node:
        element = type_node
        dims_children: list[Node] = []
        while element.type == "array_type":  # new int[][]{...} parsed as type int[][]
            dims_children[:0] = element.fields["dimensions"].children
            element = element.fields["element"]
        while self.at("["):
            open_node = self.leaf()
            if self.at("]"):
                dims_children += [open_node, self.leaf()]
            else:
                size = self.expression()
                dims_children.append(self.node("dimensions_expr", [open_node, size, self.expect("]")]))
        dims = self.node("dimensions", dims_children)
        children = [new, element, dims]
        fields = {"type": element, "dimensions": dims}
        if self.at("{"):
            value = self.array_initializer()
            children.append(value)
            fields["value"] = value
        return self.node("array_creation_expression", children, **fields)

    def array_initializer(self) -> Node:
        return self.delimited(
            "array_initializer",
            "{",
            "}",
            lambda: self.array_initializer() if self.at("{") else self.expression(),
        )


# ---------------------------------------------------------------------------------------------
# BFCL's extraction
# ---------------------------------------------------------------------------------------------
def _traverse(node: Node | None, source: str, nested: bool = False) -> str:
    if node is None:  # `new int[5]` has no initializer: BFCL's traversal crashes on it
        raise DecodeError(f"{_ERROR}: array creation without initializer")
    text = source[node.start : node.end]
    if node.type in ("string_literal", "character_literal"):
        return text if nested else text[1:-1]
    if node.type in ("identifier", "class_literal", "type_identifier", "method_invocation"):
        return text
    if node.type == "array_creation_expression":
        type_text = _traverse(node.fields["type"], source, True)
        return f"new {type_text}[]{_traverse(node.fields.get('value'), source, True)}"
    if node.type == "object_creation_expression":
        type_text = _traverse(node.fields["type"], source, True)
        arguments = [
            _traverse(child, source, True)
            for child in node.fields["arguments"].children
            if child.type not in (",", "(", ")")
        ]
        return f"new {type_text}({', '.join(arguments)})"
    if node.children:
        return "".join(_traverse(child, source, True) for child in node.children)
    return text


def _first_invocation(node: Node) -> Node | None:
    if node.type == "method_invocation":
        return node
    for child in node.children:
        found = _first_invocation(child)
        if found is not None:
            return found
    return None


def parse_java_calls(source: str) -> Any:
    """BFCL's `parse_java_function_call`: `[{name: {param: text}}]`, or `{}` when nothing is called."""
    parser = _Parser(source)
    tree = parser.program()
    invocation = _first_invocation(tree)
    if invocation is None:
        return {}
    method = parser.text(invocation.fields["name"])
    receiver = invocation.fields.get("object")
    name = f"{parser.text(receiver)}.{method}" if receiver is not None else method
    argument_nodes = invocation.fields["arguments"].children
    arguments = collect_arguments(
        source, argument_nodes, ("identifier", "class_literal"), lambda n: _traverse(n, source)
    )
    return [{name: arguments}]


def decode_java_calls(text: str) -> Any:
    """Prompt-mode output of a Java record -> BFCL's decoded form (brackets stripped first)."""
    return parse_java_calls(wrap_prompt_output(text)[1:-1])
