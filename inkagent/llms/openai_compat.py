"""`OpenAICompatible`: a model behind an OpenAI-compatible HTTP API (vLLM, LMDeploy, `transformers serve`).

Two ways to talk to the server:

- `mode="completions"` (default): inkagent renders the InternLM2 prompt itself (meta template) and
  sends it to `/completions` with the stop words. Works with any server, and the model sees exactly
  the prompt a local `HFTransformer` would.
- `mode="chat"`: sends the messages to `/chat/completions`; the server applies the model's chat
  template. With `tools=[...]` (OpenAI format) the server's tool-call parser (vLLM
  `--tool-call-parser internlm`, LMDeploy) returns `tool_calls`, which are assembled (streamed
  deltas are joined by index) and exposed as `last_tool_calls`, or returned by `chat_with_tools`.

Requests stream over server-sent events when asked, time out, and are retried with exponential
backoff on 429, 5xx and connection errors (`Retry-After` is honoured). Stop words are also cut on our
side, since not every server removes them. `agenerate`, `astream_text` and `generate_many` (bounded
concurrency) serve batches and benchmarks. The API key is read from the environment variable named
by `api_key_env`, never from a config file.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from ..errors import ConfigError, LLMError
from ..schema import ToolCallChunk
from .base import LLM, GenerationStats, Prompt
from .meta_template import INTERNLM2_META
from .stopping import StopTextFilter, cut_at_stop, normalize_stop_words

logger = logging.getLogger(__name__)

Mode = Literal["completions", "chat"]
#: Statuses worth another try: rate limited, or the server is (temporarily) failing.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_S = 60.0


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


class OpenAICompatible(LLM):
    """A model served behind an OpenAI-compatible API.

    Args:
        model: the model name the server knows (vLLM: the `--served-model-name` or the path).
        base_url: the API root including `/v1`, e.g. `http://127.0.0.1:23333/v1`.
        api_key_env: name of the environment variable holding the API key (none sent if None).
        mode: "completions" (inkagent renders the prompt) or "chat" (the server does).
        timeout: seconds to wait for the server (connect, and between bytes of a stream).
        max_retries: extra attempts after a 429, a 5xx or a connection error.
        retry_backoff_s: the first wait between attempts; it doubles each time (with jitter).
        extra_body: more fields for every request, for server-specific options (vLLM's `top_k`,
            `repetition_penalty`...). Only standard OpenAI fields are sent otherwise, because some
            servers (transformers serve) reject unknown ones.
        keep_special_tokens: ask the server not to strip special tokens (`skip_special_tokens:
            false`, understood by vLLM and LMDeploy), which the InternLM2 protocol needs to see
            `<|action_start|>`... Default: on in completions mode, off in chat mode. A server that
            rejects the field is asked again without it (and a warning says its output loses them).
        meta_template, stop_words, max_new_tokens, temperature, top_p, do_sample: as for lagent models.
    """

    is_api = True

    def __init__(
        self,
        model: str = "",
        base_url: str = "http://127.0.0.1:8000/v1",
        api_key_env: str | None = None,
        mode: Mode = "completions",
        *,
        timeout: float = 60.0,
        max_retries: int = 3,
        retry_backoff_s: float = 0.5,
        extra_body: dict | None = None,
        keep_special_tokens: bool | None = None,
        meta_template: list[dict] | None = INTERNLM2_META,
        do_sample: bool = True,
        **kwargs,
    ):
        if mode not in ("completions", "chat"):
            raise ConfigError(f"mode must be 'completions' or 'chat', not {mode!r}")
        kwargs.pop("path", None)
        super().__init__(path=model, meta_template=meta_template, **kwargs)
        self.gen_params["do_sample"] = do_sample
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.mode: Mode = mode
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.retry_backoff_s = retry_backoff_s
        self.extra_body = dict(extra_body or {})
        self.keep_special_tokens = (
            (mode == "completions") if keep_special_tokens is None else keep_special_tokens
        )
        self.api_key_env = api_key_env
        self.headers = {"Accept": "application/json"}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise ConfigError(f"the API key variable {api_key_env} is not set in the environment")
            self.headers["Authorization"] = f"Bearer {key}"
        self.last_tool_calls: list[dict] = []
        self.last_finish_reason: str | None = None
        self._client: httpx.Client | None = None

    # -- plumbing --------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/{'chat/completions' if self.mode == 'chat' else 'completions'}"

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0))

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout(), headers=self.headers)
        return self._client

    def close(self) -> None:
        """Close the HTTP connections (a later call opens new ones)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> OpenAICompatible:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def to_messages(self, inputs: Prompt) -> list[dict]:
        """lagent messages as OpenAI chat messages.

        `environment` messages (tool results) become `tool` messages when they answer a `tool_call_id`,
        else `system` messages, as lagent's GPT backend does.
        """
        if isinstance(inputs, str):
            return [{"role": "user", "content": inputs}]
        messages = []
        for message in inputs:
            role = message.get("role", "user")
            out: dict[str, Any] = {"role": role, "content": message.get("content", "")}
            if role == "environment":
                out["role"] = "tool" if message.get("tool_call_id") else "system"
            for key in ("tool_calls", "tool_call_id"):
                if message.get(key):
                    out[key] = message[key]
            if message.get("name") and out["role"] in ("system", "user", "assistant"):
                out["name"] = message["name"]
            messages.append(out)
        return messages

    def _payload(self, inputs: Prompt, gen_params: dict, stream: bool) -> tuple[dict, tuple[str, ...]]:
        params = self.update_gen_params(**gen_params)
        tools = params.pop("tools", None)
        tool_choice = params.pop("tool_choice", None)
        stop_words = normalize_stop_words(params.pop("stop_words", None))
        temperature = params.get("temperature")
        if not params.get("do_sample", True):
            temperature = 0.0
        payload: dict[str, Any] = {"model": self.model, "stream": stream}
        if params.get("max_new_tokens") is not None:
            payload["max_tokens"] = params["max_new_tokens"]
        if temperature is not None:
            payload["temperature"] = temperature
        if params.get("top_p") is not None and temperature != 0.0:
            payload["top_p"] = params["top_p"]
        if stop_words:
            payload["stop"] = list(stop_words)
        if self.mode == "chat":
            payload["messages"] = self.to_messages(inputs)
            if tools:
                payload["tools"] = list(tools)
                if tool_choice is not None:
                    payload["tool_choice"] = tool_choice
        else:
            if tools:
                raise LLMError("tools are sent to the server only in mode='chat'")
            payload["prompt"] = self.render(inputs)
        if stream:
            payload["stream_options"] = {"include_usage": True}
        if self.keep_special_tokens:
            payload["skip_special_tokens"] = False
        payload.update(self.extra_body)
        return payload, stop_words

    def _backoff(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None and response.headers.get("retry-after"):
            try:
                return min(float(response.headers["retry-after"]), _MAX_RETRY_AFTER_S)
            except ValueError:
                pass  # an HTTP date: fall back to our own schedule
        return self.retry_backoff_s * (2**attempt) * (1 + 0.1 * random.random())

    def _give_up(self, attempts: int, last: str) -> LLMError:
        return LLMError(
            f"the OpenAI-compatible server at {self.base_url} did not answer ({last}) after {attempts} "
            f"attempt(s); is it running, and is base_url right?"
        )

    def _refuses_special_tokens_flag(self, response: httpx.Response, payload: dict) -> bool:
        """Whether the server rejected our `skip_special_tokens` field; if so, stop sending it."""
        if response.status_code not in (400, 422) or "skip_special_tokens" not in payload:
            return False
        if "skip_special_tokens" not in response.text:
            return False
        logger.warning(
            "%s does not accept skip_special_tokens; its output will lack special tokens such as "
            "<|action_start|>, which the InternLM2 protocol needs (use vLLM or LMDeploy for tool calls)",
            self.base_url,
        )
        self.keep_special_tokens = False
        del payload["skip_special_tokens"]
        return True

    def _http_error(self, response: httpx.Response) -> LLMError:
        """The error for a final (non-retryable) HTTP error status."""
        return LLMError(f"{self.endpoint} answered HTTP {response.status_code}: {_response_error(response)}")

    # -- synchronous -----------------------------------------------------------------------------------
    def _send(self, payload: dict) -> httpx.Response:
        """POST with retries; returns an open (streamed) response with a 2xx status."""
        last = ""
        for attempt in range(self.max_retries + 1):
            response = None
            try:
                request = self.client.build_request("POST", self.endpoint, json=payload)
                response = self.client.send(request, stream=True)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code not in RETRY_STATUSES:
                    if response.status_code < 400:
                        return response
                    response.read()
                    response.close()
                    if self._refuses_special_tokens_flag(response, payload):
                        return self._send(payload)
                    raise self._http_error(response)
                response.read()
                response.close()
                last = f"HTTP {response.status_code}: {_response_error(response)}"
            if attempt < self.max_retries:
                wait = self._backoff(attempt, response)
                logger.warning("%s: %s; retrying in %.1f s", self.endpoint, last, wait)
                time.sleep(wait)
        raise self._give_up(self.max_retries + 1, last)

    def complete(self, inputs: Prompt, **gen_params) -> Completion:
        """One non-streamed request; the full answer with tool calls and stats."""
        payload, stop_words = self._payload(inputs, gen_params, stream=False)
        assembler = _Assembler(stop_words)
        response = self._send(payload)
        try:
            response.read()
        except httpx.TransportError as exc:
            raise LLMError(f"reading the answer of {self.endpoint} failed: {exc}") from exc
        finally:
            response.close()
        assembler.body(_json(response))
        return self._remember(assembler.result())

    def stream_deltas(self, inputs: Prompt, **gen_params) -> Iterator[str | ToolCallChunk]:
        """Stream the answer as text deltas (`str`) and, in mode='chat', the streamed `tool_calls` pieces
        as `ToolCallChunk`s in arrival order (a protocol's parser assembles them). Pass `tools=[...]`
        (OpenAI format) and optionally `tool_choice`."""
        return self.stream_text(inputs, tool_deltas=True, **gen_params)

    def stream_text(self, inputs: Prompt, *, tool_deltas: bool = False, **gen_params) -> Iterator[Any]:
        """Stream the answer as text deltas (stop words cut); tool calls land in `last_tool_calls`
        (and are yielded as `ToolCallChunk`s too with `tool_deltas=True`, see `stream_deltas`)."""
        payload, stop_words = self._payload(inputs, gen_params, stream=True)
        assembler = _Assembler(stop_words)
        response = self._send(payload)
        decoder = SSEDecoder()
        try:
            for line in response.iter_lines():
                data = decoder.feed(line)
                if data is None:
                    continue
                if data.strip() == "[DONE]":
                    break
                delta = assembler.chunk(data)
                if delta:
                    yield delta
                if tool_deltas:
                    yield from assembler.take_deltas()
                if assembler.filter.stopped:
                    break  # closing the response tells the server to stop generating
            else:
                data = decoder.close()
                if data is not None and data.strip() != "[DONE]":
                    delta = assembler.chunk(data)
                    if delta:
                        yield delta
                    if tool_deltas:
                        yield from assembler.take_deltas()
            tail = assembler.finish_stream()
            if tail:
                yield tail
        except httpx.TransportError as exc:
            raise LLMError(f"the stream from {self.endpoint} broke: {type(exc).__name__}: {exc}") from exc
        finally:
            response.close()
            self._remember(assembler.result())

    def generate(self, inputs: str | list[str], **gen_params) -> str | list[str]:
        """Complete a prompt, or a list of prompts (sent concurrently, see `generate_many`).

        Messages (a list of dicts) are taken as one conversation.
        """
        if isinstance(inputs, list) and not (inputs and isinstance(inputs[0], dict)):
            return self.generate_many(inputs, **gen_params)
        return self.complete(inputs, **gen_params).text

    def chat(self, inputs: list[dict] | list[list[dict]], **gen_params) -> str | list[str]:
        """Answer one conversation, or several concurrently."""
        if inputs and isinstance(inputs[0], list):
            return self.generate_many(inputs, **gen_params)
        return self.complete(inputs, **gen_params).text

    def chat_with_tools(self, messages: Prompt, tools: list[dict], **gen_params) -> Completion:
        """Send messages and OpenAI-format `tools` (mode='chat'); the answer's text and `tool_calls`."""
        if self.mode != "chat":
            raise LLMError("chat_with_tools needs mode='chat'")
        return self.complete(messages, tools=tools, **gen_params)

    def _remember(self, completion: Completion) -> Completion:
        self.last_stats = completion.stats
        self.last_tool_calls = completion.tool_calls
        self.last_finish_reason = completion.finish_reason
        return completion

    # -- asynchronous ----------------------------------------------------------------------------------
    def async_client(self) -> httpx.AsyncClient:
        """A new async client with this backend's timeout and headers (close it when done)."""
        return httpx.AsyncClient(timeout=self._timeout(), headers=self.headers)

    async def _asend(self, client: httpx.AsyncClient, payload: dict) -> httpx.Response:
        last = ""
        for attempt in range(self.max_retries + 1):
            response = None
            try:
                request = client.build_request("POST", self.endpoint, json=payload)
                response = await client.send(request, stream=True)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code not in RETRY_STATUSES:
                    if response.status_code < 400:
                        return response
                    await response.aread()
                    await response.aclose()
                    if self._refuses_special_tokens_flag(response, payload):
                        return await self._asend(client, payload)
                    raise self._http_error(response)
                await response.aread()
                await response.aclose()
                last = f"HTTP {response.status_code}: {_response_error(response)}"
            if attempt < self.max_retries:
                wait = self._backoff(attempt, response)
                logger.warning("%s: %s; retrying in %.1f s", self.endpoint, last, wait)
                await asyncio.sleep(wait)
        raise self._give_up(self.max_retries + 1, last)

    async def acomplete(
        self, inputs: Prompt, client: httpx.AsyncClient | None = None, **gen_params
    ) -> Completion:
        """Async `complete`. Pass `client` to share connections between many calls."""
        if client is None:
            async with self.async_client() as own:
                return await self.acomplete(inputs, client=own, **gen_params)
        payload, stop_words = self._payload(inputs, gen_params, stream=False)
        assembler = _Assembler(stop_words)
        response = await self._asend(client, payload)
        try:
            await response.aread()
        except httpx.TransportError as exc:
            raise LLMError(f"reading the answer of {self.endpoint} failed: {exc}") from exc
        finally:
            await response.aclose()
        assembler.body(_json(response))
        return assembler.result()

    async def agenerate(self, inputs: Prompt, **gen_params) -> str:
        """Async: the answer text for one prompt (or messages)."""
        completion = await self.acomplete(inputs, **gen_params)
        return self._remember(completion).text

    async def astream_text(
        self, inputs: Prompt, client: httpx.AsyncClient | None = None, **gen_params
    ) -> AsyncIterator[str]:
        """Async `stream_text`."""
        if client is None:
            async with self.async_client() as own:
                async for delta in self.astream_text(inputs, client=own, **gen_params):
                    yield delta
            return
        payload, stop_words = self._payload(inputs, gen_params, stream=True)
        assembler = _Assembler(stop_words)
        response = await self._asend(client, payload)
        decoder = SSEDecoder()
        try:
            async for line in response.aiter_lines():
                data = decoder.feed(line)
                if data is None:
                    continue
                if data.strip() == "[DONE]":
                    break
                delta = assembler.chunk(data)
                if delta:
                    yield delta
                if assembler.filter.stopped:
                    break
            tail = assembler.finish_stream()
            if tail:
                yield tail
        except httpx.TransportError as exc:
            raise LLMError(f"the stream from {self.endpoint} broke: {type(exc).__name__}: {exc}") from exc
        finally:
            await response.aclose()
            self._remember(assembler.result())

    async def acomplete_many(
        self, inputs: Sequence[Prompt], concurrency: int = 8, **gen_params
    ) -> list[Completion]:
        """Complete many prompts with at most `concurrency` requests in flight; results in order."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        gate = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=self._timeout(), headers=self.headers, limits=limits) as client:

            async def one(prompt: Prompt) -> Completion:
                async with gate:
                    return await self.acomplete(prompt, client=client, **gen_params)

            return list(await asyncio.gather(*(one(prompt) for prompt in inputs)))

    def complete_many(self, inputs: Sequence[Prompt], concurrency: int = 8, **gen_params) -> list[Completion]:
        """Blocking `acomplete_many` (usable from inside a running event loop too)."""
        started = time.perf_counter()
        completions = _run_sync(self.acomplete_many(list(inputs), concurrency=concurrency, **gen_params))
        self.last_stats = GenerationStats(
            prompt_tokens=sum(c.stats.prompt_tokens for c in completions),
            completion_tokens=sum(c.stats.completion_tokens for c in completions),
            duration_s=time.perf_counter() - started,
            extra={"batch_size": len(completions), "concurrency": concurrency},
        )
        return completions

    def generate_many(self, inputs: Sequence[Prompt], concurrency: int = 8, **gen_params) -> list[str]:
        """The answer texts of many prompts, at most `concurrency` requests at a time."""
        return [c.text for c in self.complete_many(inputs, concurrency=concurrency, **gen_params)]


def _json(response: httpx.Response) -> dict:
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LLMError(f"the server's answer is not JSON: {response.text[:300]!r}") from exc
    if not isinstance(payload, dict):
        raise LLMError(f"the server's answer is not a JSON object: {response.text[:300]!r}")
    return payload


def _run_sync(coroutine: Any) -> Any:
    """Run a coroutine to completion from synchronous code, even under a running loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
