"""Model backends: `HFTransformer` (transformers), `OpenAICompatible` (vLLM, LMDeploy, ...), `ScriptedLLM`.

Backends are imported on first use so that `import inkagent` stays light (no torch, no transformers).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import LLM, GenerationStats
    from .hf import HFTransformer
    from .openai_compat import OpenAICompatible
    from .scripted import ScriptedLLM
    from .vlm import VisionLanguageModel

_EXPORTS = {
    "LLM": ".base",
    "GenerationStats": ".base",
    "ScriptedLLM": ".scripted",
    "HFTransformer": ".hf",
    "OpenAICompatible": ".openai_compat",
    "VisionLanguageModel": ".vlm",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
