"""What the model is sent for one benchmark record, in each mode.

- prompt: BFCL's default system prompt for prompt-mode models (the functions as JSON, the answer as
  `[func_name1(params_name1=params_value1, ...), func_name2(params)]`), merged with the record's own
  system message as BFCL does;
- internlm2: the InternLM2 protocol's system prompts (meta, interpreter when the record offers
  `IPythonInterpreter`, plugin listing every function with its full schema), then the record's turn;
- hermes / react: the agent's `HermesProtocol` / `ReActProtocol` prompt listing the functions (JSON Schema
  types), then the record's turn;
- openai (alias native): the record's messages, with the functions as OpenAI `tools` (names with "."
  written "_", BFCL types mapped to JSON Schema types).

In every mode the function docs first get BFCL's language-specific treatment: a note on the syntax
is appended to each description, and Java / JavaScript parameter types become "string" with a note
saying which Java / JavaScript type to write (BFCL reads those values as source text).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from .checker import JAVA, JAVASCRIPT, language_of

INTERPRETER_NAME = "IPythonInterpreter"

# BFCL's default ("classic", plain text, JSON docs, Python-list answers) system prompt for prompt mode.
BFCL_SYSTEM_PROMPT = (
    "You are an expert in composing functions.You are given a question and a set of possible functions. "
    "Based on the question, you will need to make one or more function/tool calls to achieve the purpose. "
    "If none of the functions can be used, point it out. If the given question lacks the parameters "
    "required by the function, also point it out.\n\n"
    "You should only return the function calls in your response.\n\n"
    "If you decide to invoke any of the function(s), you MUST put it in the format of "
    "[func_name1(params_name1=params_value1, params_name2=params_value2...), func_name2(params)]. "
    " You SHOULD NOT include any other text in the response.\n\n"
    "At each turn, you should try your best to complete the tasks requested by the user within the current "
    "turn. Continue to output functions to call until you have fulfilled the user's request to the best of "
    "your ability. Once you have no more functions to call, the system will consider the current turn "
    "complete and proceed to the next turn or task.\n\n"
    "Here is a list of functions in json format that you can invoke.\n{functions}\n"
)

_SYNTAX_HINTS = {
    JAVA: " Note that the provided function is in Java 8 SDK syntax.",
    JAVASCRIPT: " Note that the provided function is in JavaScript syntax.",
}
_PYTHON_HINT = " Note that the provided function is in Python 3 syntax."

# BFCL's GORILLA_TO_OPENAPI: documented types -> JSON Schema types for function-calling APIs.
OPENAPI_TYPES = {
    "integer": "integer", "number": "number", "float": "number", "string": "string", "boolean": "boolean",
    "bool": "boolean", "array": "array", "list": "array", "dict": "object", "object": "object",
    "tuple": "array", "any": "string", "byte": "integer", "short": "integer", "long": "integer",
    "double": "number", "char": "string", "ArrayList": "array", "Array": "array", "HashMap": "object",
    "Hashtable": "object", "Queue": "array", "Stack": "array", "Any": "string", "String": "string",
    "Bigint": "integer",
}  # fmt: skip


def function_docs(functions: list[dict[str, Any]], category: str, hints: bool = True) -> list[dict[str, Any]]:
    """BFCL's language-specific pre-processing of a record's function docs (a modified copy).

    `hints=False` leaves the descriptions alone (inkagent-tools: the tools are shown as the agent shows them).
    """
    docs = copy.deepcopy(functions)
    if not hints:
        return docs
    language = language_of(category)
    for doc in docs:
        doc["description"] = doc.get("description", "") + _SYNTAX_HINTS.get(language, _PYTHON_HINT)
        if language not in (JAVA, JAVASCRIPT):
            continue
        label = "Java" if language == JAVA else "JavaScript"
        for spec in doc.get("parameters", {}).get("properties", {}).values():
            kind = spec.get("type")
            if kind == "any":
                spec["description"] = spec.get("description", "") + (
                    f" This parameter can be of any type of {label} object in string representation."
                )
            else:
                spec["description"] = spec.get("description", "") + (
                    f" This is {label} {kind} type parameter in string representation."
                )
            if kind in ("ArrayList", "Array", "array") and "items" in spec:
                spec["description"] += (
                    f" The list elements are of type {spec['items'].get('type')}; they are not in string representation."
                )
                del spec["items"]
            if language == JAVASCRIPT and kind == "dict" and "properties" in spec:
                spec["description"] += (
                    " The dictionary entries have the following schema; they are not in string representation. "
                    + json.dumps(spec["properties"])
                )
                del spec["properties"]
            spec["type"] = "string"
    return docs


def to_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A BFCL parameter schema ("dict", "float", "tuple"...) as JSON Schema, recursively."""
    out = dict(schema)
    kind = out.get("type")
    if kind is None:
        out["type"] = "string"
    elif kind in OPENAPI_TYPES:
        out["type"] = OPENAPI_TYPES[kind]
        if kind == "float":  # as BFCL tells function-calling models
            out["format"] = "float"
            out["description"] = out.get("description", "") + " This is a float type value."
    else:
        out["type"] = "string"
    if isinstance(out.get("properties"), dict):
        out["properties"] = {name: to_json_schema(spec) for name, spec in out["properties"].items()}
    if isinstance(out.get("items"), dict):
        out["items"] = to_json_schema(out["items"])
    return out


def openai_tools(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Function docs as OpenAI `tools` (BFCL's `convert_to_tool` for function-calling models)."""
    tools = []
    for doc in docs:
        parameters = to_json_schema(doc.get("parameters") or {"type": "dict", "properties": {}})
        parameters["type"] = "object"
        function = {
            "name": doc["name"].replace(".", "_"),
            "description": doc.get("description", ""),
            "parameters": parameters,
        }
        tools.append({"type": "function", "function": function})
    return tools


@dataclass(frozen=True)
class ToolSpec:
    """A function doc in the shape `Internlm2Protocol` lists in its plugin prompt."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)


def _turn(question: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's (single) turn of messages, copied."""
    turns = question.get("question") or [[]]
    return [dict(message) for message in turns[0]]


@dataclass
class Request:
    """One model request: the messages, and for native mode the tools."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None


def build_request(
    mode: str,
    category: str,
    question: dict[str, Any],
    *,
    prompt_language: str = "en",
    language_hints: bool = True,
) -> Request:
    """The request for `question` in `mode`; see the module docstring.

    `language_hints`: apply BFCL's language-specific notes to the function docs (BFCL records).
    """
    docs = function_docs(question.get("function", []), category, language_hints)
    messages = _turn(question)
    if mode == "prompt":
        system = BFCL_SYSTEM_PROMPT.replace("{functions}", json.dumps(docs, indent=4))
        if messages and messages[0].get("role") == "system":
            messages[0]["content"] = system + "\n\n" + messages[0]["content"]
        else:
            messages.insert(0, {"role": "system", "content": system})
        return Request(messages)
    if mode == "internlm2":
        from ..protocols.internlm2 import Internlm2Protocol

        protocol = Internlm2Protocol(language=prompt_language)
        interpreter = next((d for d in docs if d["name"] == INTERPRETER_NAME), None)
        plugins = [
            ToolSpec(d["name"], d.get("description", ""), to_json_schema(d.get("parameters") or {}))
            for d in docs
            if d is not interpreter
        ]
        system = protocol.system_messages(plugins, ToolSpec(INTERPRETER_NAME, "") if interpreter else None)
        return Request(system + messages)
    if mode in ("openai", "native"):
        return Request(messages, openai_tools(docs))
    if mode in ("hermes", "react"):
        from ..protocols import get_protocol

        specs = [ToolSpec(d["name"], d.get("description", ""), _object_schema(d)) for d in docs]
        return Request(get_protocol(mode).format(messages, specs))
    raise ValueError(f"unknown mode {mode!r}")


def _object_schema(doc: dict[str, Any]) -> dict[str, Any]:
    """A function doc's parameters as a JSON Schema object."""
    schema = to_json_schema(doc.get("parameters") or {"type": "dict", "properties": {}})
    schema["type"] = "object"
    return schema
