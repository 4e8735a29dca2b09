"""`HermesProtocol`: `<tool_call>` JSON in text, as Qwen2.5, Qwen3 and the Hermes models write it.

The tools are listed in the system message, calls are JSON objects in `<tool_call>` tags, and results go
back in a user message, one `<tool_response>` per call (consecutive results share the message):

    <|im_start|>system
    {system prompt}\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n
    You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{tool JSON}...
    </tools>\n\nFor each function call, return a json object with function name and arguments within
    <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}
    </tool_call><|im_end|>
    <|im_start|>assistant\n{thought}\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>
    <|im_start|>user\n<tool_response>\n{result}\n</tool_response><|im_end|>

Source: the chat templates of Qwen2.5-Instruct and Qwen3 (`tokenizer_config.json`), which render OpenAI
`tools` / `tool` messages exactly so, and vLLM's `hermes` tool parser. `format()` returns plain
system / user / assistant messages with that text, so any ChatML renderer (the model's own chat template
with `meta_template: null`) produces the template's prompt. Qwen2.5 adds a default system prompt when
there is none: pass `system_prompt=QWEN25_SYSTEM_PROMPT`; Qwen3 has none (the default here).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..schema import Message, ToolCall
from .base import (
    DEFAULT_INTERPRETER,
    CallStarted,
    CallText,
    HistoryCache,
    StreamItem,
    StreamParser,
    ToolProtocol,
    ToolsCache,
    as_messages,
    as_tool_spec,
    tool_specs,
)
from .decoding import MarkerScanner, call_from_json

TOOL_CALL, TOOL_CALL_END = "<tool_call>", "</tool_call>"
TOOL_RESPONSE, TOOL_RESPONSE_END = "<tool_response>", "</tool_response>"
IM_START, IM_END, END_OF_TEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
QWEN25_SYSTEM_PROMPT = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
TOOLS_PROMPT = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>{tools}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call>'
)
CALL_HINT = 'Write a call as <tool_call>\n{"name": "<tool name>", "arguments": {<arguments>}}\n</tool_call>.'


class HermesParser(StreamParser):
    """Language streams out; a call is announced at `<tool_call>` and decoded at `</tool_call>` (or at the
    next `<tool_call>`, or the end). Output after `<|im_end|>` / `<|endoftext|>` / `<|im_start|>` is ignored."""

    def __init__(self, interpreter_name: str = DEFAULT_INTERPRETER) -> None:
        super().__init__(interpreter_name)
        self._scanner = MarkerScanner((TOOL_CALL, TOOL_CALL_END, IM_START, IM_END, END_OF_TEXT))
        self._body: list[str] | None = None  # inside <tool_call> when not None
        self._done = False

    def _feed_text(self, text: str) -> list[StreamItem]:
        return self._handle(self._scanner.feed(text))

    def _close_text(self) -> list[StreamItem]:
        items = self._handle(self._scanner.close())
        if self._body is not None:
            items.append(self._finish())  # no </tool_call>: decode what there is
        return items

    def _handle(self, pieces: list[tuple[bool, str]]) -> list[StreamItem]:
        items: list[StreamItem] = []
        for is_marker, text in pieces:
            if self._done:
                break
            if not is_marker or (text == TOOL_CALL_END and self._body is None):
                if self._body is not None:
                    self._body.append(text)
                    if text:
                        items.append(CallText("plugin", text))  # the call streams as it is written
                elif text:
                    items.append(self._text(text))
            elif text == TOOL_CALL:
                if self._body is not None:
                    items.append(self._finish())
                self._body = []
                items.append(CallStarted("plugin"))
            elif text == TOOL_CALL_END:
                items.append(self._finish())
            else:  # the end of the turn
                if self._body is not None:
                    items.append(self._finish())
                self._done = True
        return items

    def _finish(self) -> StreamItem:
        raw, self._body = "".join(self._body or []), None
        decoded = call_from_json(raw, CALL_HINT)
        if isinstance(decoded, str):
            return self._reject(decoded, raw)
        return self._accept(*decoded)


class HermesProtocol(ToolProtocol):
    """The Hermes / Qwen tool-call format for text backends (see the module docstring).

    Args:
        system_prompt: text put before the tool listing when the history has no system message of its own
            (`QWEN25_SYSTEM_PROMPT` reproduces Qwen2.5's template; None, Qwen3's).
    """

    name = "hermes"
    stop_words = (IM_END, END_OF_TEXT)

    def __init__(self, system_prompt: str | None = None) -> None:
        self.system_prompt = system_prompt
        self._tools = ToolsCache()
        self._history = HistoryCache()
        self._system: dict[str, Any] | None = None

    def format(self, history: Iterable[Message | dict], plugin_executor: Any = None,
               interpreter_executor: Any = None) -> list[dict[str, Any]]:
        tools = self._tools.get(tool_specs(plugin_executor) + tool_specs(interpreter_executor)[:1], _tools_prompt,
                                shared="hermes")
        messages = history if isinstance(history, list) else list(history)
        system = self.system_prompt
        first = as_messages(messages[:1]) if messages else []
        if first and first[0].role == "system":  # the history's own system message comes first
            system, messages = first[0].content, messages[1:]
        if tools:
            system = f"{system}\n\n{tools}" if system else tools
        out = [self._system_message(system)] if system is not None else []
        return out + self._history.format(messages, self._format_step)

    def _system_message(self, text: str) -> dict[str, Any]:
        """The system message, the same dict while its text stays (renderers cache what they saw)."""
        if self._system is None or self._system["content"] != text:
            self._system = {"role": "system", "content": text}
        return self._system

    def _format_step(self, message: Message, out: list[dict[str, Any]], after_result: bool | None) -> bool:
        """One message; returns whether it was a result (the next result joins its user message)."""
        if message.role == "environment" and message.name is None:  # a note of the agent's, not a result
            out.append({"role": "system", "content": message.content})
            return False
        if message.role == "environment":
            response = f"{TOOL_RESPONSE}\n{message.content}\n{TOOL_RESPONSE_END}"
            if after_result:  # results of one turn share a user message
                out[-1] = {"role": "user", "content": out[-1]["content"] + "\n" + response}
            else:
                out.append({"role": "user", "content": response})
            return True
        if message.role == "assistant":
            out.append({"role": "assistant", "content": self.format_calls(message.content, message.tool_calls)})
        else:
            out.append({"role": message.role, "content": message.content})
        return False

    @staticmethod
    def format_calls(thought: str, calls: list[ToolCall]) -> str:
        """An assistant turn's text: the language, then one `<tool_call>` block per call."""
        blocks = [
            f"{TOOL_CALL}\n{json.dumps({'name': c.name, 'arguments': c.arguments}, ensure_ascii=False)}\n{TOOL_CALL_END}"
            for c in calls
        ]
        return "\n".join([thought, *blocks] if thought else blocks)

    def stream_parser(self, interpreter_name: str = DEFAULT_INTERPRETER) -> HermesParser:
        return HermesParser(interpreter_name)


def _tools_prompt(specs: list[Any]) -> str:
    """The `# Tools` part of the system message ("" without tools)."""
    if not specs:
        return ""
    listing = "".join("\n" + json.dumps(_tool(as_tool_spec(spec)), ensure_ascii=False) for spec in specs)
    return TOOLS_PROMPT.format(tools=listing)


def _tool(spec: Any) -> dict[str, Any]:
    return {"type": "function",
            "function": {"name": spec.name, "description": spec.description, "parameters": spec.parameters}}
