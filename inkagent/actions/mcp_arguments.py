"""Checking the arguments of a call to an MCP tool against the tool's own JSON Schema.

An MCP server describes each tool's arguments by a JSON Schema (`inputSchema`, any draft the schema's
`$schema` names; https://json-schema.org). `_schema_model` turns one into a pydantic-shaped model whose
`model_validate` runs jsonschema and reports what is wrong as pydantic line errors (`missing`,
`extra_forbidden`, or `json_schema` with jsonschema's message), so the executor tells the model about a
bad call the same way as for any other action. The checked arguments are passed on as `arguments`.
jsonschema is imported when the first schema is checked.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from ..errors import ActionError


class _SchemaArguments(BaseModel):
    """Arguments checked against a server's JSON Schema; the executor passes them on as `arguments`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    arguments: dict[str, Any]
    validator: ClassVar[Any] = None

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> _SchemaArguments:  # type: ignore[override]
        arguments = dict(obj or {})
        errors = sorted(cls.validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, [_line_error(e) for e in errors])
        return cls.model_construct(arguments=arguments)


def _line_error(error: Any) -> InitErrorDetails:
    path = tuple(error.absolute_path)
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in (error.instance or {})]
        return {"type": "missing", "loc": (*path, *missing[:1]), "input": error.instance}
    if error.validator == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        extra = [name for name in error.instance if name not in allowed]
        return {"type": "extra_forbidden", "loc": (*path, *extra[:1]), "input": error.instance}
    return {
        "type": PydanticCustomError("json_schema", "{reason}", {"reason": error.message}),
        "loc": path or ("(arguments)",),
        "input": error.instance,
    }


def _schema_model(name: str, schema: dict[str, Any]) -> type[_SchemaArguments]:
    from jsonschema.validators import validator_for

    cls = validator_for(schema)
    try:
        cls.check_schema(schema)
    except Exception as exc:
        raise ActionError(f"the MCP tool {name} has an invalid input schema: {exc}") from exc
    model_name = re.sub(r"\W", "_", name) + "Arguments"
    return type(model_name, (_SchemaArguments,), {"validator": cls(schema), "__module__": __name__})
