"""Render a record's ground truth as a model would write it, in each mode (the oracle's answers).

The oracle backend and the parity tests need an output that BFCL's checker accepts for each record:
the first non-optional alternative of each parameter, written as prompt-mode text (Python, or Java /
JavaScript source for those categories), as InternLM2 plugin calls, or as OpenAI `tool_calls`.

Java and JavaScript values go to BFCL's checker as *source text* (`typeconv` converts them by type),
so each value is first rendered as the text the converter must receive (`java_value_text`,
`js_value_text`), then, in prompt mode, as source that BFCL's parser turns into that text. Where
BFCL's parser mangles the natural spelling (an `Array` of `String` keeps its quotes; an anonymous
`HashMap` body is dropped), the source is the one spelling that survives, e.g. a string literal
holding `new String[]{a, b}`; see the data README and `javaparse` for why.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .bfcl import is_relevance_category
from .checker import JAVA, JAVASCRIPT, convert_func_name, language_of

#: What the oracle says when the right answer is to call nothing.
NO_CALL_TEXT = "None of the given functions can be used to answer this question."

_JAVA_ELEMENT_TYPES = {
    "integer": "int", "long": "long", "short": "short", "byte": "byte", "float": "float", "double": "double",
    "boolean": "boolean", "char": "char", "String": "String", "any": "Object",
}  # fmt: skip


def first_value(alternatives: list[Any]) -> tuple[bool, Any]:
    """(present, value): the first alternative that is not the "may be omitted" marker `""`."""
    for alternative in alternatives:
        if alternative != "":
            return True, alternative
    return False, None


def _resolve_dict(value: Any) -> Any:
    """A dict answer lists alternatives per key (`{"k": [v1, v2]}`): keep the first of each."""
    if not isinstance(value, dict):
        return value
    resolved = {}
    for key, options in value.items():
        if isinstance(options, str):
            # A bare string where a list of alternatives belongs: BFCL reads it as a list of its
            # characters, so only a one-character value can match (simple_java_64).
            options = list(options)
        if isinstance(options, list):
            present, chosen = first_value(options)
            if present:
                resolved[key] = chosen
        else:
            resolved[key] = options
    return resolved


def answer_arguments(func_doc: dict[str, Any] | None, params: dict[str, list[Any]]) -> dict[str, Any]:
    """The arguments of one answer call: the first alternative per parameter, "" -only ones left out."""
    properties = (func_doc or {}).get("parameters", {}).get("properties", {})
    arguments = {}
    for name, alternatives in params.items():
        present, value = first_value(alternatives)
        if not present:
            continue
        if name not in properties and "" in alternatives:
            continue  # an optional answer parameter the function does not document: passing it fails
        spec = properties.get(name, {})
        kind = spec.get("type")
        if kind in ("dict", "HashMap") and isinstance(value, dict):
            value = _resolve_dict(value)
        elif isinstance(value, list) and spec.get("items", {}).get("type") == "dict":
            value = [_resolve_dict(item) for item in value]
        arguments[name] = value
    return arguments


def answer_calls(
    question: dict[str, Any], ground_truth: list[dict[str, Any]]
) -> list[tuple[str, dict, dict]]:
    """(name, func_doc, arguments) for each call of the answer, in answer order."""
    docs = {doc["name"]: doc for doc in question["function"]}
    calls = []
    for call in ground_truth:
        name, params = next(iter(call.items()))
        doc = docs.get(name)
        calls.append((name, doc, answer_arguments(doc, params)))
    return calls


# ---------------------------------------------------------------------------------------------
# Java
# ---------------------------------------------------------------------------------------------
def _java_scalar(value: Any, kind: str | None) -> str:
    """A Java literal of `value` as BFCL's typed converters read it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}L" if kind == "long" else str(value)
    if isinstance(value, float):
        if kind == "float":
            return f"{value!r}f"
        return repr(value)
    return str(value)


def _java_untyped(value: Any) -> str:
    """A Java literal for BFCL's `parse_java_value` (elements of untyped collections, map values)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return _java_scalar(value, None)


def java_value_text(spec: dict[str, Any], value: Any) -> str:
    """The text BFCL's Java converter must receive for `value` of the documented type."""
    kind = spec.get("type")
    if isinstance(value, str):  # a string, or a variable name standing for a value of another type
        return value
    item_type = spec.get("items", {}).get("type")
    if kind == "Array" and isinstance(value, list):
        element = _JAVA_ELEMENT_TYPES.get(item_type or "any", "Object")
        # String/char/any elements are kept as written by BFCL, quotes included: write them bare.
        items = [v if isinstance(v, str) else _java_scalar(v, item_type) for v in value]
        return f"new {element}[]{{{', '.join(items)}}}"
    if kind == "ArrayList" and isinstance(value, list):
        if not value:
            return "new ArrayList<>()"
        if item_type in ("String",):
            items = [json.dumps(str(v), ensure_ascii=False) for v in value]
        elif item_type == "char":
            items = [f"'{v}'" for v in value]
        elif item_type:
            items = [v if isinstance(v, str) else _java_scalar(v, item_type) for v in value]
        else:
            items = [_java_untyped(v) for v in value]
        return f"new ArrayList<>(Arrays.asList({', '.join(items)}))"
    if kind == "HashMap" and isinstance(value, dict):
        puts = " ".join(
            f"put({json.dumps(str(k), ensure_ascii=False)}, {_java_untyped(v)});" for k, v in value.items()
        )
        return f"new HashMap<String, Object>() {{{{ {puts} }}}}" if puts else "new HashMap<>()"
    return _java_scalar(value, kind)


def _java_string_literal(text: str) -> str | None:
    if any(ch in text for ch in '"\\\n\r'):
        return None  # BFCL keeps escapes as written, so such text cannot travel in a literal
    return f'"{text}"'


def java_value_source(spec: dict[str, Any], value: Any) -> str:
    """Java source that BFCL's parser reads back as `java_value_text(spec, value)`."""
    text = java_value_text(spec, value)
    kind = spec.get("type")
    if isinstance(value, str) or kind == "Array" and any(isinstance(v, str) for v in value):
        literal = _java_string_literal(text)
        if literal is not None:
            return literal
        return text
    if kind == "HashMap" and text.startswith("new HashMap<String"):
        # BFCL drops the body of `new HashMap<..>() {{ put(..); }}`; inside a call it is kept verbatim.
        return f"Collections.unmodifiableMap({text})"
    return text


# ---------------------------------------------------------------------------------------------
# JavaScript
# ---------------------------------------------------------------------------------------------
def _js_number(value: int | float, kind: str | None) -> str:
    if isinstance(value, float) or kind == "float":
        number = float(value)
        text = repr(number)
        if "e" in text or "inf" in text or "nan" in text:
            text = f"{number:.17f}".rstrip("0") if math.isfinite(number) else text
        return text
    return f"{value}n" if kind == "Bigint" else str(value)


def _js_quote(text: str) -> str:
    if '"' not in text:
        return f'"{text}"'
    if "'" not in text:
        return f"'{text}'"
    return json.dumps(text, ensure_ascii=False)


def _js_untyped(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _js_number(value, None)
    if isinstance(value, list):
        return "[" + ", ".join(_js_untyped(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_js_untyped(v)}" for k, v in value.items()) + "}"
    return _js_quote(str(value))


def js_value_text(spec: dict[str, Any], value: Any) -> str:
    """The text BFCL's JavaScript converter must receive for `value` of the documented type."""
    kind = spec.get("type")
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _js_number(value, kind)
    if isinstance(value, list):
        item_type = spec.get("items", {}).get("type")
        if item_type == "String":
            return "[" + ", ".join(_js_quote(str(v)) for v in value) + "]"
        if item_type in ("float", "integer", "Bigint"):
            return "[" + ", ".join(_js_number(v, item_type) for v in value) + "]"
        return "[" + ", ".join(_js_untyped(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_js_untyped(v)}" for k, v in value.items()) + "}" if value else "{}"
    return str(value)


def js_value_source(spec: dict[str, Any], value: Any) -> str:
    """JavaScript source that BFCL's parser reads back as `js_value_text(spec, value)`."""
    text = js_value_text(spec, value)
    return _js_quote(text) if isinstance(value, str) else text


# ---------------------------------------------------------------------------------------------
# whole outputs
# ---------------------------------------------------------------------------------------------
def _value_texts(language: str, doc: dict | None, arguments: dict[str, Any], source: bool) -> dict[str, Any]:
    if language not in (JAVA, JAVASCRIPT):
        return arguments
    properties = (doc or {}).get("parameters", {}).get("properties", {})
    if language == JAVA:
        render = java_value_source if source else java_value_text
    else:
        render = js_value_source if source else js_value_text
    return {name: render(properties.get(name, {}), value) for name, value in arguments.items()}


def _relevance_call(question: dict[str, Any]) -> list[tuple[str, dict, dict]]:
    """For live_relevance any call passes: call the first function with no arguments."""
    doc = question["function"][0]
    return [(doc["name"], doc, {})]


def oracle_calls(category: str, question: dict[str, Any], answer: Any) -> list[tuple[str, dict, dict]] | None:
    """The calls the oracle makes for a record, or None when it must not call anything."""
    if is_relevance_category(category):
        return None if "irrelevance" in category else _relevance_call(question)
    ground_truth = answer["ground_truth"] if isinstance(answer, dict) else answer
    return answer_calls(question, ground_truth)


def render_prompt_output(category: str, question: dict[str, Any], answer: Any) -> str:
    """Prompt-mode text of the ground truth: `[f(a=1), g(b='x')]` (Java / JavaScript source there)."""
    calls = oracle_calls(category, question, answer)
    if calls is None:
        return NO_CALL_TEXT
    language = language_of(category) if not is_relevance_category(category) else "python"
    rendered = []
    for name, doc, arguments in calls:
        values = _value_texts(language, doc, arguments, source=True)
        if language in (JAVA, JAVASCRIPT):
            parts = [f"{key}={value}" for key, value in values.items()]
        else:
            parts = [f"{key}={value!r}" for key, value in values.items()]
        rendered.append(f"{name}({', '.join(parts)})")
    return "[" + ", ".join(rendered) + "]"


def render_internlm2_output(category: str, question: dict[str, Any], answer: Any) -> str:
    """The ground truth as InternLM2 plugin calls (one `<|action_start|><|plugin|>` block per call)."""
    calls = oracle_calls(category, question, answer)
    if calls is None:
        return NO_CALL_TEXT
    language = language_of(category) if not is_relevance_category(category) else "python"
    blocks = []
    for name, doc, arguments in calls:
        values = _value_texts(language, doc, arguments, source=False)
        if name == "IPythonInterpreter" and set(values) == {"command"}:
            blocks.append(
                f"<|action_start|><|interpreter|>\n```python\n{values['command']}\n```<|action_end|>\n"
            )
            continue
        body = json.dumps({"name": name, "parameters": values}, ensure_ascii=False)
        blocks.append(f"<|action_start|><|plugin|>\n{body}<|action_end|>\n")
    return "".join(blocks)


def render_native_output(category: str, question: dict[str, Any], answer: Any) -> list[dict[str, Any]] | str:
    """The ground truth as OpenAI `tool_calls` (names with "." written as "_"), or text for no call."""
    calls = oracle_calls(category, question, answer)
    if calls is None:
        return NO_CALL_TEXT
    language = language_of(category) if not is_relevance_category(category) else "python"
    tool_calls = []
    for index, (name, doc, arguments) in enumerate(calls):
        values = _value_texts(language, doc, arguments, source=False)
        function = {
            "name": convert_func_name(name, True),
            "arguments": json.dumps(values, ensure_ascii=False),
        }
        tool_calls.append({"id": f"call_{index}", "type": "function", "function": function})
    return tool_calls


def render_protocol_output(mode: str, category: str, question: dict[str, Any], answer: Any) -> str:
    """The ground truth as a text protocol's model turn (hermes, react), written by that protocol."""
    from ..protocols import get_protocol
    from ..schema import Message, ToolCall

    calls = oracle_calls(category, question, answer)
    if calls is None:
        return NO_CALL_TEXT
    language = language_of(category) if not is_relevance_category(category) else "python"
    tool_calls = []
    for name, doc, arguments in calls:
        values = _value_texts(language, doc, arguments, source=False)
        kind = "interpreter" if name == "IPythonInterpreter" and set(values) == {"command"} else "plugin"
        tool_calls.append(ToolCall(kind=kind, name=name, arguments=values))
    return get_protocol(mode).format([Message(role="assistant", tool_calls=tool_calls)])[-1]["content"]


def render_output(mode: str, category: str, question: dict[str, Any], answer: Any) -> Any:
    """The oracle's output for a record in `mode` (prompt, internlm2, hermes, react, openai / native)."""
    if mode == "prompt":
        return render_prompt_output(category, question, answer)
    if mode == "internlm2":
        return render_internlm2_output(category, question, answer)
    if mode in ("hermes", "react"):
        return render_protocol_output(mode, category, question, answer)
    if mode in ("openai", "native"):
        return render_native_output(category, question, answer)
    raise ValueError(f"unknown mode {mode!r}")
