"""`Action`: the base of inkagent's own actions, and adapters that give any action one calling surface.

An action subclass either defines `run(...)` (one API, named after the action) or marks several methods
with `@api` (a toolkit, whose APIs the model calls as `Action.method`, like lagent's `@tool_api`).
Schemas come from the methods' type hints and docstrings, as with `@tool`.

inkagent's actions do not subclass lagent's `BaseAction` on purpose: lagent registers every subclass in
a global registry that rejects a second class named `ArxivSearch` or `IPythonInterpreter`.
lagent actions are still accepted everywhere (`bind_apis`), and inkagent actions offer lagent's surface:
`action(inputs, name)` (JSON text in, lagent's `ActionReturn` out) and the `description` / `parser` /
`enable` keywords (`Action.lagent_options`).
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..schema import ToolSpec
from .tool import FunctionTool, json_schema, parse_docstring, signature_model


def api(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a method of an `Action` subclass as one API of a toolkit."""
    fn.__inkagent_api__ = True
    return fn


@dataclass
class BoundApi:
    """One callable API: what the model sees (`spec`), how arguments are checked, and the function."""

    spec: ToolSpec
    arguments_model: type[BaseModel]
    fn: Callable[..., Any]
    owner: Any = None  # the action object, for close()


class Action:
    """Base class of inkagent actions (see the module docstring)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: The executor's time limit for one call of this action; None means the executor's own limit.
    call_timeout_s: ClassVar[float | None] = None
    #: lagent's `enable`: a disabled action is neither shown to the model nor callable.
    enable: bool = True
    _lagent_parser: Any = None
    _api_descriptions: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("name"):
            cls.name = cls.__name__
        if not cls.__dict__.get("description"):
            cls.description = parse_docstring(cls.__doc__).summary

    def apis(self) -> list[BoundApi]:
        """This action's APIs, bound to this instance."""
        marked = [
            name
            for name, member in inspect.getmembers(type(self), inspect.isfunction)
            if getattr(member, "__inkagent_api__", False)
        ]
        if not marked:
            return [_bind(self.run, self.name, self.description, self)]
        out = []
        for method_name in marked:
            method = getattr(self, method_name)
            summary = self._api_descriptions.get(method_name) or parse_docstring(method.__doc__).summary
            out.append(_bind(method, f"{self.name}.{method_name}", summary, self))
        return out

    # -- lagent's surface ----------------------------------------------------------------------
    def lagent_options(self, description: dict | str | None = None, parser: Any = None, enable: bool = True) -> None:
        """Apply lagent `BaseAction`'s constructor keywords (subclasses taking them call this).

        Args:
            description: lagent's description dict: its `name` renames the action, its `description`
                (and those of its `api_list` entries, by API name) replace what the model is told.
                A plain string replaces the description.
            parser: lagent's `JsonParser` (the default) or `TupleParser`: how `action(inputs)` reads
                text inputs (JSON object / Python tuple). Arguments are then validated by type hints.
            enable: False hides the action from the model and refuses its calls.
        """
        self.enable = enable
        self._lagent_parser = parser
        if isinstance(description, str):
            self.description = description  # type: ignore[misc]
        elif isinstance(description, dict):
            self.name = description.get("name") or self.name  # type: ignore[misc]
            self.description = description.get("description", self.description)  # type: ignore[misc]
            self._api_descriptions = {  # type: ignore[misc]
                api["name"]: api.get("description", "") for api in description.get("api_list", []) if "name" in api
            }

    def lagent_args(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The `args` lagent's `ActionReturn` shows for these arguments (the arguments themselves)."""
        return arguments

    def __call__(self, inputs: str | dict | tuple = "", name: str = "run") -> Any:
        """lagent's `BaseAction.__call__`: run the API `name` ("run" for a one-API action) on `inputs`.

        `inputs` is JSON text (a ```json fence is allowed) or a dict; with lagent's `TupleParser`, a
        tuple or its text. Returns lagent's `ActionReturn`: `ARGS_ERROR` for inputs that cannot be read
        or validated, `API_ERROR` for an unknown API or a failing call, as lagent does.
        """
        from lagent.schema import ActionReturn, ActionStatusCode

        from ..schema import ToolCall
        from .executor import ActionExecutor

        apis = {bound.spec.name: bound for bound in self.apis()} if self.enable else {}
        full_name = self.name if name == "run" and self.name in apis else f"{self.name}.{name}"
        bound = apis.get(full_name)
        if bound is None:
            return ActionReturn(
                {"inputs": inputs, "name": name}, type=self.name, errmsg=f"invalid API: {name}",
                state=ActionStatusCode.API_ERROR,
            )
        arguments = _lagent_inputs(inputs, bound.spec.parameters, self._lagent_parser)
        if isinstance(arguments, str):
            return ActionReturn(
                {"inputs": inputs, "name": name}, type=self.name, errmsg=arguments, state=ActionStatusCode.ARGS_ERROR
            )
        executor = ActionExecutor(timeout_s=None)
        executor.add_action(self)
        result = executor.run(ToolCall(name=full_name, arguments=arguments))
        action_return = result.to_lagent(args=self.lagent_args(arguments))
        action_return.type = self.name
        if result.error_type not in (None, "invalid_arguments"):
            action_return.state = ActionStatusCode.API_ERROR
        return action_return

    def run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} defines neither run() nor @api methods")

    def close(self) -> None:
        """Release what the action holds (kernels, clients). Called by `ActionExecutor.close()`."""


_JSON_FENCE = re.compile(r"^\s*(```json\n)?(.*)\n```\s*$", re.DOTALL)


def _lagent_inputs(inputs: Any, parameters: dict[str, Any], parser: Any) -> dict[str, Any] | str:
    """Arguments from lagent-style inputs, or the reason they cannot be read (lagent's wording)."""
    if isinstance(inputs, dict):
        return inputs
    if getattr(parser, "__name__", "") == "TupleParser":
        if not isinstance(inputs, tuple):
            try:
                inputs = ast.literal_eval(str(inputs))
            except (ValueError, SyntaxError):
                return f"invalid tuple format: {inputs}"
            if not isinstance(inputs, tuple):
                inputs = (inputs,)
        names = list(parameters.get("properties", {}))
        if len(inputs) > len(names):
            return f"API takes {len(names)} positional arguments but {len(inputs)} were given"
        return dict(zip(names, inputs, strict=False))
    text = str(inputs)
    match = _JSON_FENCE.match(text)
    if match:
        text = match.group(2).strip()
    try:
        arguments = json.loads(text)
    except json.JSONDecodeError:
        return f"invalid json format: {inputs}"
    if not isinstance(arguments, dict):
        return f"invalid json format: {inputs} (expected a JSON object)"
    return arguments


def _bind(method: Callable[..., Any], full_name: str, description: str, owner: Any) -> BoundApi:
    doc = parse_docstring(method.__doc__)
    model = signature_model(method, full_name, doc.params)
    spec = ToolSpec(name=full_name, description=description or doc.summary, parameters=json_schema(model))
    return BoundApi(spec=spec, arguments_model=model, fn=method, owner=owner)


# lagent's type names -> Python types, for lagent APIs whose parameters carry no type hints
_FROM_LAGENT_TYPE: dict[str, Any] = {
    "STRING": str,
    "NUMBER": int | float,
    "FLOAT": float,
    "BOOLEAN": bool,
    "ARRAY": list,
}


def _lagent_api(action: Any, api_desc: dict[str, Any], method_name: str, full_name: str) -> BoundApi:
    method = getattr(action, method_name)
    documented = {p["name"]: p for p in api_desc.get("parameters", [])}
    required = set(api_desc.get("required", []))
    try:
        hints = typing.get_type_hints(method)
    except Exception:
        hints = {}
    signature = inspect.signature(method)
    fields: dict[str, Any] = {}
    for name, param in signature.parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        doc = documented.get(name, {})
        annotation = hints.get(name)
        if annotation is None:
            annotation = _FROM_LAGENT_TYPE.get(str(doc.get("type", "")).upper(), Any)
        if param.default is not inspect.Parameter.empty:
            default = param.default
        else:
            default = ... if name in required or not documented else None
        fields[name] = (annotation, Field(default, description=doc.get("description") or None))
    config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, arbitrary_types_allowed=True)
    model = create_model(full_name.replace(".", "_") + "Arguments", __config__=config, **fields)
    spec = ToolSpec(name=full_name, description=api_desc.get("description", ""), parameters=json_schema(model))
    return BoundApi(spec=spec, arguments_model=model, fn=method, owner=action)


def bind_apis(action: Any) -> list[BoundApi]:
    """The APIs of any supported action: an inkagent `Action`, a `@tool` function, or a lagent `BaseAction`."""
    if isinstance(action, Action):
        return action.apis() if action.enable else []
    if hasattr(action, "as_action"):  # a skill agent offering itself as a tool
        return bind_apis(action.as_action())
    if isinstance(action, FunctionTool):
        return [BoundApi(spec=action.spec, arguments_model=action.arguments_model, fn=action.fn, owner=action)]
    description = getattr(action, "description", None)
    if isinstance(description, dict) and hasattr(action, "is_toolkit"):  # a lagent BaseAction
        if not getattr(action, "enable", True):
            return []
        if action.is_toolkit:
            return [
                _lagent_api(action, desc, desc["name"], f"{action.name}.{desc['name']}")
                for desc in description.get("api_list", [])
            ]
        return [_lagent_api(action, description, "run", action.name)]
    if callable(action):  # a plain function: treat it as if decorated with @tool
        return bind_apis(FunctionTool(action))
    raise TypeError(
        f"cannot use {action!r} as an action: expected an inkagent Action, a @tool function or a lagent BaseAction"
    )
