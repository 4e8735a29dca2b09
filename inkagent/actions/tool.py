"""Schemas from Python signatures, and the `@tool` decorator.

A tool's parameters come from its type hints (pydantic does the typing: nested models, dataclasses,
TypedDicts, lists, dicts, Literal, Enum, Optional, dates, defaults, `Annotated[..., Field(...)]`) and
their descriptions from its docstring (Google, NumPy or Sphinx style, parsed by griffe) or from an
`Annotated[T, "description"]` hint. The same pydantic model validates the model's arguments with
lossless coercion only: "3" -> 3 and 3.0 -> 3 pass, 3.5 -> int does not; an object or list that a
model sent JSON-encoded in a string is decoded.

The schema goes out in two forms: JSON Schema (`FunctionTool.spec.openai_tool()`, the OpenAI tools
format) and lagent's description format (`FunctionTool.lagent_description()`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import json
import logging
import re
import typing
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PydanticUserError,
    ValidationError,
    create_model,
    model_validator,
)

from ..schema import ToolSpec

logging.getLogger("griffe").setLevel(logging.ERROR)

# JSON Schema keys whose values map names to schemas (a property may be *called* "title")
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
# JSON Schema keys whose values are schemas or lists of schemas
_SCHEMA_VALUES = (
    "items",
    "additionalProperties",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "prefixItems",
    "contains",
)


class ArgumentsModel(BaseModel):
    """Base of the argument models `signature_model` builds: unknown parameters are refused, numbers
    are accepted for strings, and structured parameters sent as JSON text are decoded first."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, arbitrary_types_allowed=True)
    json_fields: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _decode_json_text(cls, data: Any) -> Any:
        # some models write {"to": "{\"city\": \"Paris\"}"}: decoding that loses nothing
        if not isinstance(data, dict) or not cls.json_fields:
            return data
        decoded = dict(data)
        for name in cls.json_fields & decoded.keys():
            value = decoded[name]
            if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
                try:
                    decoded[name] = json.loads(value)
                except ValueError:
                    pass  # not JSON after all: validation names the parameter and what it expected
        return decoded


class ParsedDocstring(typing.NamedTuple):
    summary: str
    params: dict[str, str]


def _docstring_style(text: str) -> str:
    if re.search(r"^\s*:param\s", text, re.MULTILINE):
        return "sphinx"
    if re.search(
        r"^\s*(Parameters|Arguments|Args|Returns|Yields|Raises)\s*\n\s*-{3,}\s*$", text, re.MULTILINE
    ):
        return "numpy"
    return "google"


def parse_docstring(doc: str | None) -> ParsedDocstring:
    """The description (text before the first section) and the parameter descriptions of a Google,
    NumPy or Sphinx docstring."""
    text = inspect.cleandoc(doc or "")
    if not text:
        return ParsedDocstring("", {})
    from griffe import Docstring

    summary, params = "", {}
    for section in Docstring(text).parse(_docstring_style(text)):
        kind = section.kind.value
        if kind == "text" and not summary:
            summary = _unwrap(section.value.strip())
        elif kind in ("parameters", "other parameters"):
            for param in section.value:
                params[param.name.lstrip("*")] = " ".join(param.description.split())
    return ParsedDocstring(summary, params)


def _unwrap(text: str) -> str:
    """Paragraphs of prose joined into single lines (a docstring's line breaks are only layout);
    paragraphs with code, lists or indentation are kept as written."""
    paragraphs = re.split(r"\n\s*\n", text)
    out = []
    for paragraph in paragraphs:
        lines = paragraph.splitlines()
        literal = "```" in paragraph or any(re.match(r"\s|[-*+] |\d+[.)] |>", line) for line in lines[1:])
        out.append(paragraph if literal else " ".join(line.strip() for line in lines))
    return "\n\n".join(out)


def _annotated_description(annotation: Any) -> str | None:
    """The description in `Annotated[T, "description"]`, the style LangChain and others use."""
    if typing.get_origin(annotation) is typing.Annotated:
        for extra in typing.get_args(annotation)[1:]:
            if isinstance(extra, str):
                return extra
    return None


def _infer_from_default(default: Any) -> Any:
    """The type of an unannotated parameter, from a plain default value (`def f(n=3)` -> int)."""
    if isinstance(default, bool | int | float | str):
        return type(default)
    return Any


def signature_model(
    fn: Callable[..., Any], name: str, param_docs: dict[str, str] | None = None
) -> type[ArgumentsModel]:
    """A pydantic model of `fn`'s parameters (`self`, `*args` and `**kwargs` skipped).

    Raises `TypeError` naming the tool and the parameter when a hint cannot be turned into a schema.
    """
    param_docs = param_docs or {}
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        hints = {}
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(param.name, param.annotation)
        has_default = param.default is not inspect.Parameter.empty
        if annotation is inspect.Parameter.empty:
            annotation = _infer_from_default(param.default) if has_default else Any
        description = param_docs.get(param.name) or _annotated_description(annotation)
        fields[param.name] = (
            annotation,
            Field(param.default if has_default else ..., description=description),
        )
    model_name = re.sub(r"\W", "_", name) + "Arguments"
    try:
        model = create_model(model_name, __base__=ArgumentsModel, **fields)
        schema = model.model_json_schema()
    except (PydanticUserError, TypeError, ValueError) as exc:
        culprit = _failing_field(model_name, fields)
        where = f" parameter {culprit!r}" if culprit else ""
        raise TypeError(f"cannot build the schema of tool {name!r}{where}: {exc}") from exc
    model.json_fields = frozenset(
        field for field, prop in schema.get("properties", {}).items() if _structured_only(prop, schema)
    )
    return model


def _failing_field(model_name: str, fields: dict[str, Any]) -> str | None:
    for field_name, definition in fields.items():
        try:
            create_model(model_name, __base__=ArgumentsModel, **{field_name: definition}).model_json_schema()
        except Exception:
            return field_name
    return None


def _structured_only(prop: dict[str, Any], root: dict[str, Any]) -> bool:
    """Whether a property takes objects or arrays but never a string (so a JSON string is a wrapped value)."""
    kinds: set[str] = set()

    def collect(node: dict[str, Any], depth: int = 0) -> None:
        if depth > 5:
            return
        if "$ref" in node:
            collect(root.get("$defs", {}).get(node["$ref"].rsplit("/", 1)[-1], {}), depth + 1)
        kind = node.get("type")
        if isinstance(kind, str):
            kinds.add(kind)
        elif isinstance(kind, list):
            kinds.update(kind)
        if "enum" in node or "const" in node:
            kinds.add("string")
        for option in node.get("anyOf", []) + node.get("oneOf", []) + node.get("allOf", []):
            collect(option, depth + 1)
        if not node:
            kinds.add("any")

    collect(prop)
    return bool(kinds & {"object", "array"}) and not kinds & {"string", "any"}


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema as tools expect it: `$ref`s inlined (recursive ones kept, with their
    `$defs`) and pydantic's generated titles dropped."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})
    kept_defs: dict[str, Any] = {}

    def clean_schema(node: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [clean_schema(item, stack) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = node["$ref"].rsplit("/", 1)[-1]
            rest = {k: v for k, v in node.items() if k != "$ref"}
            if ref in stack:  # a recursive model: keep the reference and its definition
                if ref not in kept_defs:
                    kept_defs[ref] = {}  # placeholder: stops endless recursion
                    kept_defs[ref] = clean_schema(defs.get(ref, {}), (ref,))
                return {"$ref": f"#/$defs/{ref}", **clean_schema(rest, stack)}
            return clean_schema({**defs.get(ref, {}), **rest}, (*stack, ref))
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "title" and isinstance(value, str):
                continue
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {name: clean_schema(sub, stack) for name, sub in value.items()}
            elif key in _SCHEMA_VALUES:
                out[key] = clean_schema(value, stack)
            else:
                out[key] = value
        return out

    result = clean_schema(schema, ())
    result.setdefault("properties", {})
    result["required"] = list(result.get("required", []))
    result["type"] = "object"
    if kept_defs:
        result["$defs"] = kept_defs
    return result


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


_NEVER_AWAITABLE = frozenset({str, int, float, bool, bytes, dict, list, tuple, type(None)})  # checked first: cheap


def call_maybe_async(fn: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Call `fn`; if it returns an awaitable, run it to completion and return its result.

    In a thread without an event loop a fresh loop is used; inside a running loop (a caller that is
    itself async) the coroutine runs on a helper thread, since a loop cannot block on itself.
    """
    result = fn(**kwargs)
    if type(result) in _NEVER_AWAITABLE or not inspect.isawaitable(result):
        return result
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_await(result))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _await(result)).result()


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _keyword_callable(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` callable with keywords only, even if some of its parameters are positional-only."""
    signature = inspect.signature(fn)
    positional = [p.name for p in signature.parameters.values() if p.kind is p.POSITIONAL_ONLY]
    if not positional:
        return fn

    @functools.wraps(fn)
    def call(**kwargs: Any) -> Any:
        args = [kwargs.pop(name) for name in positional if name in kwargs]
        return fn(*args, **kwargs)

    return call


class FunctionTool:
    """A typed, documented function turned into an action with one API (made by `@tool`).

    Calling the object calls the function, so decorated functions keep working as functions.

    Attributes:
        spec: the `ToolSpec` (name, description, JSON Schema); `spec.openai_tool()` is the OpenAI form.
        arguments_model: the pydantic model that validates the model's arguments.
        fn: what the executor calls with the validated arguments, as keywords.
    """

    def __init__(self, fn: Callable[..., Any], name: str | None = None, description: str | None = None):
        if not callable(fn):
            raise TypeError(f"@tool needs a function, got {fn!r}")
        self.__wrapped__ = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        if not re.fullmatch(r"[A-Za-z_][\w.-]*", self.name):
            raise ValueError(f"tool name {self.name!r} must be letters, digits, '_', '-' or '.'")
        doc = parse_docstring(fn.__doc__)
        self.description = description if description is not None else doc.summary
        self.arguments_model = signature_model(fn, self.name, doc.params)
        self.spec = ToolSpec(
            name=self.name, description=self.description, parameters=json_schema(self.arguments_model)
        )
        self.fn = _keyword_callable(fn)
        self.is_async = inspect.iscoroutinefunction(fn)
        self.__doc__ = fn.__doc__
        self.__name__ = self.name
        self.__qualname__ = getattr(fn, "__qualname__", self.name)
        self.__module__ = getattr(fn, "__module__", __name__)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__wrapped__(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<tool {self.name}>"

    def openai_tool(self) -> dict[str, Any]:
        """This tool in the OpenAI `tools` format."""
        return self.spec.openai_tool()

    def lagent_description(self) -> dict[str, Any]:
        """This tool in lagent's description format (name, description, parameters list, required)."""
        from ..protocols.prompts import describe_tool

        described = describe_tool(self.spec)
        described["description"] = self.description
        return described


@typing.overload
def tool(
    fn: Callable[..., Any], /, *, name: str | None = None, description: str | None = None
) -> FunctionTool: ...
@typing.overload
def tool(
    *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[..., Any]], FunctionTool]: ...
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
    The function may be `async`. `@tool(name=..., description=...)` overrides what the function says.
    Put the result in an `ActionExecutor`, an agent's actions, or reference it from a config
    (`./my_tools.py:convert`).
    """
    if fn is not None:
        return FunctionTool(fn, name=name, description=description)
    return lambda f: FunctionTool(f, name=name, description=description)
