"""The OpenAI chat/completions wire format, as `OpenAICompatible` reads it: server-sent events, the
pieces of a streamed answer (text and `tool_calls` deltas) assembled into one `Completion`, and the
error bodies servers send.

Source: the OpenAI API reference (`ChatCompletionChunk`, `Completion` streaming), which vLLM, LMDeploy and
`transformers serve` follow.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..errors import LLMError
from ..schema import ToolCallChunk
from .base import GenerationStats
from .stopping import StopTextFilter, cut_at_stop


@dataclass
class Completion:
    """One answer of the server: the text (stop words cut), tool calls (OpenAI format), and stats."""

    text: str
    tool_calls: list[dict] = field(default_factory=list)
    finish_reason: str | None = None
    stats: GenerationStats = field(default_factory=GenerationStats)


class SSEDecoder:
    """Server-sent events, line by line (the WHATWG rules that matter for OpenAI streams).

    `feed(line)` returns the `data` of an event when the blank line that ends it arrives, else None.
    Comment lines (`:`), `event:`/`id:`/`retry:` fields and multi-line data are handled.
    """

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        line = line.rstrip("\r\n")
        if not line:
            if not self._data:
                return None
            data, self._data = "\n".join(self._data), []
            return data
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None

    def close(self) -> str | None:
        """End of the body: an event not followed by a blank line still counts."""
        return self.feed("")


class _Assembler:
    """Builds one `Completion` from a response body or a stream of chunks (shared by sync and async)."""

    def __init__(self, stop_words: Sequence[str], prompt_tokens_hint: int = 0):
        self.stop_words = tuple(stop_words)
        self.filter = StopTextFilter(stop_words)
        self.text: list[str] = []
        self.tool_calls: dict[int, dict] = {}
        self.deltas: list[ToolCallChunk] = []  # streamed tool-call pieces not yet handed to the consumer
        self.finish_reason: str | None = None
        self.usage: dict | None = None
        self.chunks = 0
        self.started = time.perf_counter()
        self.first_token_s: float | None = None
        self.prompt_tokens_hint = prompt_tokens_hint

    # -- streaming ---------------------------------------------------------------------------------
    def chunk(self, data: str) -> str:
        """Take one SSE `data` payload; return the visible text it adds."""
        try:
            payload = json.loads(data)
        except json.JSONDecodeError as exc:
            raise LLMError(f"the server sent a stream event that is not JSON: {data[:200]!r}") from exc
        if "error" in payload:
            raise LLMError(f"the server reported an error mid-stream: {_error_text(payload)}")
        if payload.get("usage"):
            self.usage = payload["usage"]
        out = []
        for choice in payload.get("choices") or []:
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
            delta = choice.get("delta")
            piece = choice.get("text") if delta is None else delta.get("content")
            for call in (delta or {}).get("tool_calls") or []:
                self._merge_tool_call(call)
                self.deltas.append(ToolCallChunk.from_openai(call, len(self.tool_calls) - 1))
            if piece:
                self.chunks += 1
                if self.first_token_s is None:
                    self.first_token_s = time.perf_counter() - self.started
                visible = self.filter.feed(piece)
                self.text.append(visible)
                out.append(visible)
        return "".join(out)

    def _merge_tool_call(self, delta: dict) -> None:
        # Streamed tool calls arrive in pieces keyed by `index`; strings are concatenated (OpenAI's rule).
        index = delta.get("index", len(self.tool_calls))
        call = self.tool_calls.setdefault(
            index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
        )
        if delta.get("id"):
            call["id"] = delta["id"]
        if delta.get("type"):
            call["type"] = delta["type"]
        function = delta.get("function") or {}
        # Some servers repeat the whole name in every delta: a repeat of the name gathered so far is
        # not a new fragment (`get_weather` + `get_weather` stays `get_weather`); split names are joined.
        if function.get("name") and function["name"] != call["function"]["name"]:
            call["function"]["name"] += function["name"]
        arguments = function.get("arguments")
        if arguments:
            # A server may send arguments as an object rather than a JSON string.
            call["function"]["arguments"] += (
                arguments if isinstance(arguments, str) else json.dumps(arguments)
            )

    def take_deltas(self) -> list[ToolCallChunk]:
        """The tool-call pieces gathered since the last call (for consumers of `stream_deltas`)."""
        deltas, self.deltas = self.deltas, []
        return deltas

    def finish_stream(self) -> str:
        """End of the stream: the held-back tail."""
        tail = self.filter.flush()
        self.text.append(tail)
        return tail

    # -- whole responses -----------------------------------------------------------------------------
    def body(self, payload: dict) -> None:
        choices = payload.get("choices") or []
        if not choices:
            raise LLMError(f"the server's answer has no choices: {json.dumps(payload)[:300]}")
        choice = choices[0]
        message = choice.get("message")
        text = choice.get("text") if message is None else message.get("content")
        self.text = [cut_at_stop(text or "", self.stop_words)[0]]
        for call in (message or {}).get("tool_calls") or []:
            self._merge_tool_call(call)
        self.finish_reason = choice.get("finish_reason")
        self.usage = payload.get("usage") or None
        self.chunks = 1

    def result(self) -> Completion:
        usage = self.usage or {}
        stats = GenerationStats(
            prompt_tokens=int(usage.get("prompt_tokens") or self.prompt_tokens_hint),
            completion_tokens=int(usage.get("completion_tokens") or self.chunks),
            duration_s=time.perf_counter() - self.started,
            first_token_s=self.first_token_s,
            extra={"usage_reported": bool(usage), "finish_reason": self.finish_reason},
        )
        calls = [self.tool_calls[index] for index in sorted(self.tool_calls)]
        return Completion("".join(self.text), calls, self.finish_reason, stats)


def _error_text(payload: Any) -> str:
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("detail", payload))
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(error)
    return str(payload)


def _response_error(response: httpx.Response) -> str:
    try:
        return _error_text(response.json())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text[:500]


def _json(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LLMError(f"the server's answer is not JSON: {body[:300]!r}") from exc
    if not isinstance(payload, dict):
        raise LLMError(f"the server's answer is not a JSON object: {body[:300]!r}")
    return payload
