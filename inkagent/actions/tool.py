"""Schemas from Python signatures, and the `@tool` decorator.

A tool's parameters come from its type hints (pydantic does the typing: nested models, lists, Literal,
Enum, Optional, defaults) and their descriptions from its docstring (Google, NumPy or Sphinx style).
The same pydantic model validates the model's arguments, with lossless coercion ("3" -> 3, not 3.5 -> 3).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..schema import ToolSpec

logging.getLogger("griffe").setLevel(logging.ERROR)

_MODEL_CONFIG = ConfigDict(extra="forbid", coerce_numbers_to_str=True, arbitrary_types_allowed=True)


class ParsedDocstring(typing.NamedTuple):
    summary: str
    params: dict[str, str]


def parse_docstring(doc: str | None) -> ParsedDocstring:
    """Summary and parameter descriptions of a Google, NumPy or Sphinx docstring."""
    text = inspect.cleandoc(doc or "")
    if not text:
        return ParsedDocstring("", {})
    from griffe import Docstring

    if re.search(r"^\s*:param\s", text, re.MULTILINE):
        style = "sphinx"
    elif re.search(r"^\s*(Parameters|Returns)\s*\n\s*-{3,}", text, re.MULTILINE):
        style = "numpy"
    else:
        style = "google"
    summary, params = "", {}
    for section in Docstring(text).parse(style):
        kind = section.kind.value
        if kind == "text" and not summary:
            summary = section.value.strip()
        elif kind == "parameters":
            for param in section.value:
                params[param.name] = " ".join(param.description.split())
    return ParsedDocstring(summary, params)


def signature_model(fn: Callable[..., Any], name: str, param_docs: dict[str, str] | None = None) -> type[BaseModel]:
    """A pydantic model of `fn`'s parameters (self, *args and **kwargs skipped)."""
    param_docs = param_docs or {}
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        hints = {}
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(param.name, param.annotation)
        if annotation is inspect.Parameter.empty:
            annotation = Any
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, Field(default, description=param_docs.get(param.name) or None))
    model_name = re.sub(r"\W", "_", name) + "Arguments"
    return create_model(model_name, __config__=_MODEL_CONFIG, **fields)


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema with `$ref`s inlined and pydantic's titles dropped (what tools expect)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                target = defs.get(node["$ref"].rsplit("/", 1)[-1], {})
                merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
                return clean(merged)
            return {k: clean(v) for k, v in node.items() if k != "title"}
        if isinstance(node, list):
            return [clean(item) for item in node]
        return node

    schema = clean(schema)
    schema.setdefault("properties", {})
    schema["required"] = list(schema.get("required", []))
    schema["type"] = "object"
    return schema


def describe_validation_error(exc: ValidationError) -> str:
    """One line per bad parameter, naming it, saying what was expected and what came."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(arguments)"
        if error["type"] == "missing":
            lines.append(f"missing required parameter '{where}'")
        elif error["type"] == "extra_forbidden":
            lines.append(f"unknown parameter '{where}'")
        else:
            lines.append(f"parameter '{where}': {error['msg']} (got {error.get('input')!r})")
    return "; ".join(lines)


def call_maybe_async(fn: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Call `fn`; if it is a coroutine function, run it to completion in a fresh event loop."""
    result = fn(**kwargs)
    if inspect.isawaitable(result):
        return asyncio.run(_await(result))
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


class FunctionTool:
    """A typed, documented function turned into an action with one API (made by `@tool`).

    Calling the object calls the function, so decorated functions keep working as functions.
    """

    def __init__(self, fn: Callable[..., Any], name: str | None = None, description: str | None = None):
        self.fn = fn
        self.name = name or fn.__name__
        doc = parse_docstring(fn.__doc__)
        self.description = description if description is not None else doc.summary
        self.arguments_model = signature_model(fn, self.name, doc.params)
        self.spec = ToolSpec(name=self.name, description=self.description, parameters=json_schema(self.arguments_model))
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<tool {self.name}>"

    def lagent_description(self) -> dict[str, Any]:
        """This tool in lagent's description format (name, description, parameters list, required)."""
        from ..protocols.prompts import describe_tool

        described = describe_tool(self.spec)
        described["description"] = self.description
        return described


@typing.overload
def tool(fn: Callable[..., Any], /) -> FunctionTool: ...
@typing.overload
def tool(*, name: str | None = None, description: str | None = None) -> Callable[[Callable[..., Any]], FunctionTool]: ...
def tool(fn=None, /, *, name=None, description=None):
    """Turn a typed, documented function into an action.

    ```python
    @tool
    def convert(amount: float, currency: Literal["EUR", "USD"] = "EUR") -> str:
        '''Convert yuan to another currency.

        Args:
            amount: the amount in yuan
            currency: the target currency
        '''
    ```
    The function may be `async`. Put the result in an `ActionExecutor` or an agent's `actions=[...]`.
    """
    if fn is not None:
        return FunctionTool(fn)
    return lambda f: FunctionTool(f, name=name, description=description)
