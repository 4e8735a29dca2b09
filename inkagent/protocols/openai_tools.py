"""`OpenAIToolsProtocol`: native function calling over an OpenAI-compatible chat API.

The tools go to the backend as OpenAI `tools`; the model answers with `tool_calls` (streamed as deltas that
the parser assembles by index); each result goes back as a `tool` message carrying the call's id:

    {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function",
        "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Boston\"}"}}]}
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\": 22, ...}"}

Source: the OpenAI function-calling guide and chat completions reference. The API accepts tool names
matching `^[a-zA-Z0-9_-]{1,64}$`; inkagent names such as `Weather.current` are mapped (`Weather_current`)
and mapped back in the parsed calls (`ToolNames`). Needs a backend that sends tools and streams
`tool_calls`: `OpenAICompatible(mode="chat")` (vLLM `--enable-auto-tool-choice`, LMDeploy, hosted APIs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from ..schema import Message, ParsedTurn, ToolCall
from .base import (
    DEFAULT_INTERPRETER,
    CallInvalid,
    HistoryCache,
    ModelRequest,
    StreamItem,
    StreamParser,
    ToolProtocol,
    ToolsCache,
    as_tool_spec,
    tool_specs,
)

#: Tool names the OpenAI API accepts.
OPENAI_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_INVALID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
TOOL_CHOICES = ("auto", "none", "required")


class ToolNames:
    """A reversible mapping between tool names and names the OpenAI API accepts.

    Valid names stay as they are; others get each refused character replaced by `_` (`Weather.current` ->
    `Weather_current`, as BFCL writes them), cut to 64 characters, and a `_2`, `_3`... suffix where that
    would clash with another tool's name. Unknown names pass through both ways unchanged.
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        names = list(dict.fromkeys(names))
        self._wire: dict[str, str] = {}
        self._local: dict[str, str] = {}
        taken = {name for name in names if OPENAI_NAME.fullmatch(name)}
        for name in names:
            wire = name
            if not OPENAI_NAME.fullmatch(name):
                base = _INVALID_CHARS.sub("_", name)[:64] or "tool"
                wire, number = base, 2
                while wire in taken:
                    suffix = f"_{number}"
                    wire, number = base[: 64 - len(suffix)] + suffix, number + 1
                taken.add(wire)
            self._wire[name], self._local[wire] = wire, name

    def wire(self, name: str) -> str:
        """The name sent to the API."""
        return self._wire.get(name) or _INVALID_CHARS.sub("_", name)[:64]

    def local(self, wire: str) -> str:
        """The tool's own name for a name the model used."""
        return self._local.get(wire, wire)


class OpenAIToolsParser(StreamParser):
    """Text deltas are language; `ToolCallChunk`s are assembled into calls (names mapped back)."""

    def __init__(self, names: ToolNames, interpreter_name: str = DEFAULT_INTERPRETER) -> None:
        super().__init__(interpreter_name)
        self.names = names

    def _feed_text(self, text: str) -> list[StreamItem]:
        return [self._text(text)]

    def _close_text(self) -> list[StreamItem]:
        return []

    def _local_name(self, wire_name: str) -> str:
        return self.names.local(wire_name)


class OpenAIToolsProtocol(ToolProtocol):
    """Native OpenAI function calling.

    Args:
        system_prompt: a system message put first (none by default: the server's chat template has its own).
        tool_choice: "auto" (default), "none", "required", a tool's name (that tool must be called), or
            the API's `{"type": "function", "function": {"name": ...}}` form (inkagent names are mapped).
    """

    name = "openai"
    native_tools = True

    def __init__(self, system_prompt: str | None = None, tool_choice: str | dict[str, Any] | None = "auto") -> None:
        self.system_prompt = system_prompt
        self.tool_choice = tool_choice
        self._names = ToolNames()
        self._tools = ToolsCache()
        self._history = HistoryCache()

    # -- format --------------------------------------------------------------------------------
    def request(self, history: Iterable[Message | dict], plugin_executor: Any = None,
                interpreter_executor: Any = None) -> ModelRequest:
        """The OpenAI messages, the `tools` (names mapped) and `tool_choice`."""
        specs = tool_specs(plugin_executor) + tool_specs(interpreter_executor)[:1]
        names, tools = self._tools.get(specs, _openai_tools, shared="openai")
        self._names = names
        messages = self._messages(history, names)
        if not tools:
            return ModelRequest(messages)
        return ModelRequest(messages, tools=tools, tool_choice=self._tool_choice(names))

    def format(self, history: Iterable[Message | dict], plugin_executor: Any = None,
               interpreter_executor: Any = None) -> list[dict[str, Any]]:
        """The OpenAI chat messages (see `request()` for the tools that go with them)."""
        return self.request(history, plugin_executor, interpreter_executor).messages

    def _tool_choice(self, names: ToolNames) -> str | dict[str, Any] | None:
        choice = self.tool_choice
        if isinstance(choice, str) and choice not in TOOL_CHOICES:
            return {"type": "function", "function": {"name": names.wire(choice)}}
        if isinstance(choice, dict) and isinstance(choice.get("function"), dict) and "name" in choice["function"]:
            return {**choice, "function": {**choice["function"], "name": names.wire(choice["function"]["name"])}}
        return choice

    def _messages(self, history: Iterable[Message | dict], names: ToolNames) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        messages = history if isinstance(history, list) else list(history)
        return out + self._history.format(messages, self._format_step, names)

    def _format_step(self, message: Message, out: list[dict[str, Any]], open_ids: frozenset[str] | None) -> frozenset[str]:
        """One message; returns the ids of the calls the last assistant message made (which `tool`
        messages may answer). Each message's wire form (its calls' JSON) is made once and reused."""
        if message.role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": message.content}
            if message.tool_calls:
                entry["tool_calls"] = [self._wire_call(call, self._names) for call in message.tool_calls]
            out.append(entry)
            return frozenset(call.id for call in message.tool_calls)
        if message.role == "environment":
            if message.tool_call_id in (open_ids or ()):
                out.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content})
            else:  # not the answer to a call of the model (lagent's environment role): a system note
                out.append({"role": "system", "content": message.content})
            return open_ids or frozenset()
        out.append({"role": message.role, "content": message.content})
        return frozenset()

    @staticmethod
    def _wire_call(call: ToolCall, names: ToolNames) -> dict[str, Any]:
        arguments = json.dumps(call.arguments, ensure_ascii=False)
        return {"id": call.id, "type": "function", "function": {"name": names.wire(call.name), "arguments": arguments}}

    # -- parse and results ---------------------------------------------------------------------
    def stream_parser(self, interpreter_name: str = DEFAULT_INTERPRETER, tools: Sequence[Any] | None = None
                      ) -> OpenAIToolsParser:
        """A parser for one answer. Names are mapped back with the tools of `tools` (specs or an
        executor) or, by default, those of the last `request()` / `format()`."""
        names = self._names if tools is None else ToolNames(as_tool_spec(s).name for s in tool_specs(tools))
        return OpenAIToolsParser(names, interpreter_name)

    def assistant_message(self, raw: str, turn: ParsedTurn, invalid: Sequence[CallInvalid] = ()) -> Message:
        """The language and the calls; a malformed native call is kept (with `{}` as arguments) so that
        the `tool` message with its reason answers an id the API knows."""
        calls = list(turn.calls) + [
            ToolCall(name=bad.name or "invalid_call", arguments={}, id=bad.call_id) for bad in invalid if bad.call_id
        ]
        return Message(role="assistant", content=turn.thought, tool_calls=calls)

    def format_invalid(self, invalid: CallInvalid) -> Message:
        said = f" You sent: {invalid.raw[:500]}" if invalid.raw else ""
        return Message(role="environment", content=invalid.message + said, name="plugin", tool_call_id=invalid.call_id)


def _openai_tools(specs: list[Any]) -> tuple[ToolNames, list[dict[str, Any]]]:
    """The name mapping of the tools, and the tools in the OpenAI format (names mapped)."""
    specs = [as_tool_spec(s) for s in specs]
    names = ToolNames(spec.name for spec in specs)
    tools = [
        {"type": "function",
         "function": {"name": names.wire(s.name), "description": s.description, "parameters": s.parameters}}
        for s in specs
    ]  # fmt: skip
    return names, tools
