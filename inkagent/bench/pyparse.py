"""Decode BFCL prompt-mode output (a Python list of calls) the way BFCL's `ast_parse` does.

`[f(a=1, b='x'), mod.g(c=[1, 2])]` -> `[{"f": {"a": 1, "b": "x"}}, {"mod.g": {"c": [1, 2]}}]`.

Rules reproduced from BFCL (they decide verdicts, so they are kept even where odd):
- the text is stripped of backticks, newlines and spaces and wrapped in `[...]` when it lacks them;
- only keyword arguments are kept; positional ones vanish;
- a dotted callee keeps its dotted name; a call whose callee is not a name keeps only the attributes;
- values: literals, lists, dicts, tuples; a bare name becomes its name as a string; a call without
  keywords becomes its source text, one with keywords a nested `{name: {...}}`; `x[i]` its text;
- a unary operator always *negates* its operand's value (`+5` -> -5, `not True` -> -1): BFCL
  computes `-operand.value` whatever the operator;
- arithmetic (`2**10`, `1/3`) is evaluated. BFCL runs `eval()` on it; this module evaluates only
  literal arithmetic, with size limits, and fails the decode on names or calls inside arithmetic
  (deliberate difference: model output is never executed);
- everything else (attributes like `math.pi`, f-strings, comparisons, lambdas...) fails the decode.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

from ..errors import InkAgentError


class DecodeError(InkAgentError):
    """The output could not be decoded into calls (BFCL: `ast_decoder:decoder_failed`)."""


def wrap_prompt_output(text: str) -> str:
    """BFCL's `default_decode_ast_prompting` pre-processing: strip fences and wrap in brackets."""
    text = text.strip("`\n ")
    if not text.startswith("["):
        text = "[" + text
    if not text.endswith("]"):
        text = text + "]"
    return text


def decode_python_calls(text: str) -> list[dict[str, dict[Any, Any]]]:
    """Decode prompt-mode output into `[{name: {param: value}}]`; raise `DecodeError` if BFCL fails."""
    return parse_python_calls(wrap_prompt_output(text))


def parse_python_calls(source: str) -> list[dict[str, dict[Any, Any]]]:
    """BFCL's `ast_parse` for Python: a call, or a list/tuple/set of calls."""
    try:
        tree = ast.parse(source.strip().strip("'"), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise DecodeError(f"Invalid syntax: {exc}") from exc
    body = tree.body
    if isinstance(body, ast.Call):
        return [resolve_call(body)]
    elements = getattr(body, "elts", None)
    if elements is None:
        raise DecodeError(f"Expected a list of function calls, got {type(body).__name__}")
    calls = []
    for element in elements:
        if not isinstance(element, ast.Call):
            raise DecodeError(f"Expected a function call, got {type(element).__name__}")
        calls.append(resolve_call(element))
    return calls


def resolve_call(node: ast.Call) -> dict[str, dict[Any, Any]]:
    """`mod.f(a=1)` -> `{"mod.f": {"a": 1}}` (positional arguments dropped, as BFCL does)."""
    parts = []
    func = node.func
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    # `**kwargs` has no name: BFCL stores it under the key None, and so do we.
    arguments = {keyword.arg: resolve_value(keyword.value) for keyword in node.keywords}
    return {".".join(reversed(parts)): arguments}


def resolve_value(node: ast.AST) -> Any:
    """The value of one argument, by BFCL's `resolve_ast_by_type` rules."""
    if isinstance(node, ast.Constant):
        return "..." if node.value is Ellipsis else node.value
    if isinstance(node, ast.UnaryOp):
        # Quirk kept: BFCL negates whatever the operator; a non-constant operand fails.
        operand = node.operand
        if not isinstance(operand, ast.Constant):
            raise DecodeError(f"Unsupported operand of a unary operator: {type(operand).__name__}")
        try:
            return -operand.value
        except TypeError as exc:
            raise DecodeError(str(exc)) from exc
    if isinstance(node, ast.List):
        return [resolve_value(item) for item in node.elts]
    if isinstance(node, ast.Dict):
        result = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                raise DecodeError("Unsupported AST type: NoneType (** in a dict)")
            try:
                result[resolve_value(key)] = resolve_value(value)
            except TypeError as exc:  # an unhashable key
                raise DecodeError(str(exc)) from exc
        return result
    if isinstance(node, ast.BinOp):
        return evaluate_arithmetic(node)
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return resolve_call(node) if node.keywords else ast.unparse(node)
    if isinstance(node, ast.Tuple):
        return tuple(resolve_value(item) for item in node.elts)
    if isinstance(node, ast.Subscript):
        return ast.unparse(node.value) + "[" + ast.unparse(node.slice) + "]"
    # ast.Lambda lands here too: BFCL's lambda branch always raises.
    raise DecodeError(f"Unsupported AST type: {type(node).__name__}")


# ---------------------------------------------------------------------------------------------
# literal arithmetic (BFCL: eval(ast.unparse(node)))
# ---------------------------------------------------------------------------------------------
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
    ast.BitAnd: operator.and_,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_, ast.Invert: operator.invert}
_MAX_BITS = 4096  # results beyond this are refused instead of computed (model output could be 9**9**9)
_MAX_LEN = 100_000


def evaluate_arithmetic(node: ast.AST) -> Any:
    """Evaluate literal arithmetic like Python's eval would, refusing names, calls and huge results."""
    try:
        return _evaluate(node)
    except DecodeError:
        raise
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise DecodeError(f"{type(exc).__name__}: {exc}") from exc


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_evaluate(item) for item in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_evaluate(k): _evaluate(v) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        _guard(type(node.op), left, right)
        return _BINARY[type(node.op)](left, right)
    raise DecodeError(f"Only literal arithmetic is evaluated, not {type(node).__name__}")


def _guard(op: type, left: Any, right: Any) -> None:
    def bits(x: Any) -> int:
        return (
            abs(int(x)).bit_length()
            if isinstance(x, (int, float)) and x == x and abs(x) != float("inf")
            else 0
        )

    if op is ast.Pow and isinstance(right, (int, float)) and right > 1:
        if bits(left) * min(float(right), 1e18) > _MAX_BITS:
            raise DecodeError("Arithmetic result too large to evaluate")
    if op is ast.LShift and isinstance(right, int) and right > _MAX_BITS:
        raise DecodeError("Arithmetic result too large to evaluate")
    if op is ast.Mult:
        for seq, count in ((left, right), (right, left)):
            if (
                isinstance(seq, (str, bytes, list, tuple))
                and isinstance(count, int)
                and len(seq) * count > _MAX_LEN
            ):
                raise DecodeError("Arithmetic result too large to evaluate")
