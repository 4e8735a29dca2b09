"""Which `inkagent bench --mode` fits a config and its model's outputs.

- `default_mode(config)`: the mode of the config's agent protocol (`agent.protocol`, else `internlm2` for
  the InternLM2 agent); BFCL's `prompt` mode only for configs without a tool-calling agent.
- `mode_hint(rows, mode)`: when no output of a run decoded in its mode, the mode in which most of them
  do (a model asked in the wrong format still writes the format it knows), or None.
"""

from __future__ import annotations

from typing import Any

from .bfcl import MODES, NATIVE_MODES, decode, is_function_calling_format, is_relevance_category
from .checker import language_of
from .pyparse import DecodeError

#: Agent types whose protocol is InternLM2's unless the config's `agent.protocol` says otherwise.
INTERNLM2_AGENTS = frozenset({"Internlm2Agent", "ToolAgent"})
_TEXT_MODES = ("internlm2", "hermes", "react", "prompt")
_DECODE_FAILURES = frozenset({"ast_decoder:decoder_failed", "relevance_error:decoder_failed"})


def default_mode(config: Any) -> str:
    """The bench mode that asks the model as the config's agent does (see the module docstring)."""
    agent = config.agent
    protocol = getattr(agent, "protocol", None) or (agent.model_extra or {}).get("protocol")
    if isinstance(protocol, dict):  # {type: hermes, ...}
        protocol = protocol.get("type")
    if isinstance(protocol, str) and protocol in MODES:
        return protocol
    if agent.type in INTERNLM2_AGENTS or agent.type.rsplit(":", 1)[-1] in INTERNLM2_AGENTS:
        return "internlm2"
    return "prompt"


def _decodes(raw: Any, mode: str, category: str) -> bool:
    language = "python" if is_relevance_category(category) else language_of(category)
    try:
        decoded = decode(raw, mode, language)
    except (DecodeError, ValueError, TypeError, RecursionError):
        return False
    return is_function_calling_format(decoded) and bool(decoded)


def mode_hint(rows: list[dict[str, Any]], mode: str) -> dict[str, Any] | None:
    """`{"mode", "decoded", "of", "message"}` when no output expecting a call decoded in `mode` but some
    decode in another mode; None otherwise (some decoded, or none decodes anywhere)."""
    wanting = [r for r in rows if "irrelevance" not in r["category"] and not r.get("inference_error")]
    if not wanting or any(r.get("error_type") not in _DECODE_FAILURES for r in wanting):
        return None
    best, best_count = None, 0
    for candidate in _TEXT_MODES:
        if candidate == mode or (candidate in NATIVE_MODES and mode in NATIVE_MODES):
            continue
        count = sum(_decodes(r.get("raw_output"), candidate, r["category"]) for r in wanting)
        if count > best_count:
            best, best_count = candidate, count
    if best is None:
        return None
    message = (
        f"no output decoded in {mode} mode, but {best_count} of {len(wanting)} decode in {best} mode: "
        f"rerun with --mode {best}"
    )
    return {"mode": best, "decoded": best_count, "of": len(wanting), "message": message}
