"""Agents: `ToolAgent` (tools + interpreter on any protocol; `Internlm2Agent`, its InternLM2 default)
and the skills `ChatAgent`, `IllustratedWriter`, `ImageUnderstanding`. Imported on first use."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and IDEs; at run time names load on first use
    from .chat import ChatAgent  # noqa: F401
    from .image_understanding import ImageUnderstanding  # noqa: F401
    from .internlm2_agent import Internlm2Agent  # noqa: F401
    from .tool_agent import ToolAgent  # noqa: F401
    from .writer import IllustratedWriter  # noqa: F401

_EXPORTS = {
    "Internlm2Agent": ".internlm2_agent",
    "ToolAgent": ".tool_agent",
    "ChatAgent": ".chat",
    "IllustratedWriter": ".writer",
    "ImageUnderstanding": ".image_understanding",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
