"""Model backends: `HFTransformer` (transformers), `OpenAICompatible` (vLLM, LMDeploy, ...), `LMDeployClient`
(lagent's name for an LMDeploy server), `ScriptedLLM`.

Backends are imported on first use so that `import inkagent` stays light (no torch, no transformers).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and IDEs; at run time names load on first use
    from .base import LLM, GenerationStats  # noqa: F401
    from .hf import HFTransformer  # noqa: F401
    from .lmdeploy_wrapper import LMDeployClient  # noqa: F401
    from .openai_compat import OpenAICompatible  # noqa: F401
    from .scripted import ScriptedLLM  # noqa: F401
    from .vision_server import OpenAICompatibleVision  # noqa: F401
    from .vlm import VisionLanguageModel  # noqa: F401

_EXPORTS = {
    "LLM": ".base",
    "GenerationStats": ".base",
    "ScriptedLLM": ".scripted",
    "HFTransformer": ".hf",
    "OpenAICompatible": ".openai_compat",
    "LMDeployClient": ".lmdeploy_wrapper",
    "VisionLanguageModel": ".vlm",
    "OpenAICompatibleVision": ".vision_server",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
