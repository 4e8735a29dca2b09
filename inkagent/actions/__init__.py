"""Actions: the `ActionExecutor`, the `@tool` decorator, and the built-in actions (imported on first use)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import Action, api
from .executor import ActionExecutor
from .tool import FunctionTool, tool

if TYPE_CHECKING:  # for type checkers and IDEs; at run time names load on first use
    from .arxiv import ArxivSearch  # noqa: F401
    from .image_caption import ImageCaption  # noqa: F401
    from .image_retrieval import ImageRetrieval  # noqa: F401
    from .ipython import IPythonInterpreter  # noqa: F401
    from .mcp_client import MCPToolset  # noqa: F401
    from .weather import Weather  # noqa: F401

_LAZY = {
    "ArxivSearch": ".arxiv",
    "IPythonInterpreter": ".ipython",
    "Weather": ".weather",
    "ImageCaption": ".image_caption",
    "ImageRetrieval": ".image_retrieval",
    "MCPToolset": ".mcp_client",
}
__all__ = ["Action", "ActionExecutor", "FunctionTool", "api", "tool", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
