"""How agents talk to models about tools: one interface (`ToolProtocol`), one module per format.

- `Internlm2Protocol`: InternLM2's `<|action_start|><|plugin|>` / `<|interpreter|>` calls (InternLM2, XComposer2);
- `OpenAIToolsProtocol`: native OpenAI function calling (`tools` in, streamed `tool_calls` out, `tool` results);
- `HermesProtocol`: `<tool_call>` JSON in text, `<tool_response>` results (Qwen2.5, Qwen3, Hermes);
- `ReActProtocol`: lagent's ReAct fields (Thought / Action / Action Input / Response / Final Answer).

`PROTOCOLS` maps the config / `inkagent bench --mode` names to the classes.
"""

from .base import (
    CallInvalid,
    CallParsed,
    CallStarted,
    ModelRequest,
    StreamItem,
    StreamParser,
    TextPiece,
    ToolProtocol,
)
from .hermes import HermesProtocol
from .internlm2 import Internlm2Protocol
from .internlm2_parser import Internlm2StreamParser, normalize_special_tokens
from .openai_tools import OpenAIToolsProtocol, ToolNames
from .react import ReActProtocol

#: Protocol names (configs' `agent.protocol`, `inkagent bench --mode`) -> classes. `native` is an alias.
PROTOCOLS: dict[str, type[ToolProtocol]] = {
    "internlm2": Internlm2Protocol,
    "openai": OpenAIToolsProtocol,
    "native": OpenAIToolsProtocol,
    "hermes": HermesProtocol,
    "react": ReActProtocol,
}


def get_protocol(name: str, **options: object) -> ToolProtocol:
    """A protocol by name (`internlm2`, `openai` / `native`, `hermes`, `react`); ValueError names the choices."""
    try:
        cls = PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}") from None
    return cls(**options)  # type: ignore[arg-type]


__all__ = [
    "PROTOCOLS", "CallInvalid", "CallParsed", "CallStarted", "HermesProtocol", "Internlm2Protocol",
    "Internlm2StreamParser", "ModelRequest", "OpenAIToolsProtocol", "ReActProtocol", "StreamItem",
    "StreamParser", "TextPiece", "ToolNames", "ToolProtocol", "get_protocol", "normalize_special_tokens",
]  # fmt: skip
