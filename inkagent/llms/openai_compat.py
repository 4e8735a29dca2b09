"""`OpenAICompatible`: a model behind an OpenAI-compatible HTTP API (vLLM, LMDeploy, `transformers serve`).

Two ways to talk to the server:

- `mode="completions"` (default): inkagent renders the InternLM2 prompt itself (meta template) and
  sends it to `/completions` with the stop words. Works with any server, and the model sees exactly
  the prompt a local `HFTransformer` would.
- `mode="chat"`: sends the messages to `/chat/completions`; the server applies the model's chat
  template. With `tools=[...]` (OpenAI format) the server's tool-call parser (vLLM
  `--tool-call-parser internlm`, LMDeploy) returns `tool_calls`, which are assembled (streamed
  deltas are joined by index) and exposed as `last_tool_calls`, or returned by `chat_with_tools`.

This module builds the requests and reads the answers. Requests stream over server-sent events when
asked (the events and the answers' pieces are decoded and assembled by `openai_wire.py`); sending them
is `OpenAITransport`'s work (`openai_transport.py`): they time out, and are retried with exponential
backoff on 429, 5xx and connection errors (`Retry-After` is honoured). Stop words are also cut on our
side, since not every server removes them. `agenerate`, `astream_text` and `generate_many` (bounded
concurrency, over several small connection pools) serve batches and benchmarks. `base_url` may list
the replicas of one model; requests are spread over them (`replicas.py`). The API key is read from the
environment variable named by `api_key_env`, never from a config file.

Names once defined or imported here (`RETRY_STATUSES` and the other sending constants, `Completion`,
`SSEDecoder`...) stay importable from this module: the `noqa: F401` imports re-export them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Literal

import httpx

from ..errors import ConfigError, LLMError
from ..schema import ToolCallChunk
from .apikey import API_KEY_IN_CONFIG, read_api_key
from .base import LLM, GenerationStats, Prompt
from .lines import LineSplitter
from .meta_template import INTERNLM2_META
from .openai_body import FragmentCache, encode_body, to_openai_message  # noqa: F401
from .openai_transport import (  # noqa: F401
    _JSON,
    _SHARD_SIZE,
    _SYNC_SHARDS,
    RETRY_STATUSES,
    OpenAITransport,
    _ssl_context,
    logger,
)
from .openai_wire import Completion, SSEDecoder, _Assembler, _json, _response_error  # noqa: F401
from .replicas import Replica, ReplicaSet, normalize_base_urls  # noqa: F401
from .stopping import normalize_stop_words

Mode = Literal["completions", "chat"]


class OpenAICompatible(LLM, OpenAITransport):
    """A model served behind an OpenAI-compatible API (connections and retries: `OpenAITransport`).

    Args:
        model: the model name the server knows (vLLM: the `--served-model-name` or the path).
        base_url: the API root including `/v1`, e.g. `http://127.0.0.1:23333/v1`; or a list of them,
            the replicas of one model (data-parallel vLLM / LMDeploy servers): each request goes to
            the replica with the fewest requests in flight, and one that fails (connection error,
            429, 5xx) is avoided for a while and the request is sent to another.
        api_key_env: name of the environment variable holding the API key (none sent if None).
        mode: "completions" (inkagent renders the prompt) or "chat" (the server does).
        timeout: seconds to wait for the server (connect, and between bytes of a stream).
        total_timeout_s: the most one request may take in all, retries and their waits included
            (`None` for no limit): a server that keeps a stream open with keep-alive comments, or
            trickles tokens forever, cannot hold the agent past it.
        max_retries: extra attempts after a 429, a 5xx or a connection error (with replicas: extra
            rounds after every replica failed; a failed request first moves to another replica
            without waiting).
        retry_backoff_s: the first wait between attempts; it doubles each time (with jitter).
        max_retry_wait_s: the longest wait between attempts, whatever `Retry-After` asks for.
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
        base_url: str | Sequence[str] = "http://127.0.0.1:8000/v1",
        api_key_env: str | None = None,
        mode: Mode = "completions",
        *,
        timeout: float = 60.0,
        total_timeout_s: float | None = 600.0,
        max_retries: int = 3,
        retry_backoff_s: float = 0.5,
        max_retry_wait_s: float = 30.0,
        extra_body: dict | None = None,
        keep_special_tokens: bool | None = None,
        meta_template: list[dict] | None = INTERNLM2_META,
        do_sample: bool = True,
        **kwargs,
    ):
        if mode not in ("completions", "chat"):
            raise ConfigError(f"mode must be 'completions' or 'chat', not {mode!r}")
        if "api_key" in kwargs:
            raise ConfigError(API_KEY_IN_CONFIG)
        key = read_api_key(api_key_env)
        kwargs.pop("path", None)
        super().__init__(path=model, meta_template=meta_template, **kwargs)  # LLM's
        self.gen_params["do_sample"] = do_sample
        self.model = model
        OpenAITransport.__init__(
            self,
            base_url,
            key,
            timeout=timeout,
            total_timeout_s=total_timeout_s,
            max_retries=max_retries,
            retry_backoff_s=retry_backoff_s,
            max_retry_wait_s=max_retry_wait_s,
        )
        self.mode: Mode = mode
        self.extra_body = dict(extra_body or {})
        self.keep_special_tokens = (
            (mode == "completions") if keep_special_tokens is None else keep_special_tokens
        )
        self.api_key_env = api_key_env
        self._message_json = FragmentCache(to_openai_message)  # each message's JSON, made once
        self._tool_json = FragmentCache()
        self.last_tool_calls: list[dict] = []
        self.last_finish_reason: str | None = None

    @property
    def _path(self) -> str:
        """Where requests go under each base URL, by `mode` (see `OpenAITransport`)."""
        return "chat/completions" if self.mode == "chat" else "completions"

    def __enter__(self) -> OpenAICompatible:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def to_messages(self, inputs: Prompt) -> list[dict]:
        """lagent messages as OpenAI chat messages (new dicts), see `to_openai_message`."""
        if isinstance(inputs, str):
            return [{"role": "user", "content": inputs}]
        return [to_openai_message(message) for message in inputs]

    def _chat_messages(self, inputs: Prompt) -> list[dict]:
        """The `messages` field: each message converted and encoded once (`openai_body`), unless a
        subclass converts messages its own way."""
        if isinstance(inputs, str) or type(self).to_messages is not OpenAICompatible.to_messages:
            return self.to_messages(inputs)
        return self._message_json.encode(inputs)

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
            payload["messages"] = self._chat_messages(inputs)
            if tools:
                payload["tools"] = self._tool_json.encode(tools)
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

    # -- synchronous -----------------------------------------------------------------------------------
    def complete(self, inputs: Prompt, **gen_params) -> Completion:
        """One non-streamed request; the full answer with tool calls and stats."""
        payload, stop_words = self._payload(inputs, gen_params, stream=False)
        assembler = _Assembler(stop_words)
        assembler.body(self.post_json(payload))
        return self._remember(assembler.result())

    def stream_deltas(self, inputs: Prompt, **gen_params) -> Iterator[str | ToolCallChunk]:
        """Stream the answer as text deltas (`str`) and, in mode='chat', the streamed `tool_calls` pieces
        as `ToolCallChunk`s in arrival order (a protocol's parser assembles them). Pass `tools=[...]`
        (OpenAI format) and optionally `tool_choice`."""
        return self.stream_text(inputs, tool_deltas=True, **gen_params)

    def stream_text(self, inputs: Prompt, *, tool_deltas: bool = False, **gen_params) -> Iterator[Any]:
        """Stream the answer as text deltas (stop words cut); tool calls land in `last_tool_calls`
        (and are yielded as `ToolCallChunk`s too with `tool_deltas=True`, see `stream_deltas`)."""
        try:
            yield from self._stream_text(inputs, gen_params, tool_deltas)
        except LLMError as exc:
            self._redacted(exc)
            raise

    def _stream_text(self, inputs: Prompt, gen_params: dict, tool_deltas: bool) -> Iterator[Any]:
        payload, stop_words = self._payload(inputs, gen_params, stream=True)
        assembler = _Assembler(stop_words)
        deadline = self._deadline()
        response = self._send(payload, deadline)
        decoder = SSEDecoder()
        try:
            lines = LineSplitter()
            for line in lines.lines(response.iter_text(), lambda: self._check_deadline(deadline)):
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
            self._close(response)
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
    async def acomplete(
        self, inputs: Prompt, client: httpx.AsyncClient | None = None, **gen_params
    ) -> Completion:
        """Async `complete`. Pass `client` to share connections between many calls."""
        if client is None:
            async with self.async_client() as own:
                return await self.acomplete(inputs, client=own, **gen_params)
        try:
            payload, stop_words = self._payload(inputs, gen_params, stream=False)
            assembler = _Assembler(stop_words)
            deadline = self._deadline()
            response = await self._asend(client, payload, deadline)
            chunks = []
            try:
                async for chunk in response.aiter_bytes():
                    self._check_deadline(deadline)
                    chunks.append(chunk)
            except httpx.TransportError as exc:
                raise LLMError(f"reading the answer of {self.endpoint} failed: {exc}") from exc
            finally:
                await self._aclose(response)
            assembler.body(_json(b"".join(chunks)))
            return assembler.result()
        except LLMError as exc:
            self._redacted(exc)
            raise

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
        try:
            async for delta in self._astream_text(inputs, client, gen_params):
                yield delta
        except LLMError as exc:
            self._redacted(exc)
            raise

    async def _astream_text(
        self, inputs: Prompt, client: httpx.AsyncClient, gen_params: dict
    ) -> AsyncIterator[str]:
        payload, stop_words = self._payload(inputs, gen_params, stream=True)
        assembler = _Assembler(stop_words)
        deadline = self._deadline()
        response = await self._asend(client, payload, deadline)
        decoder = SSEDecoder()
        try:
            async for line in self._alines(response, deadline):
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
            await self._aclose(response)
            self._remember(assembler.result())

    async def _alines(self, response: httpx.Response, deadline: float | None) -> AsyncIterator[str]:
        lines = LineSplitter()
        async for chunk in response.aiter_text():
            self._check_deadline(deadline)  # each piece, so a server trickling bytes is held to it too
            for line in lines.feed(chunk):
                yield line
        rest = lines.flush()
        if rest is not None:
            yield rest

    async def acomplete_many(
        self, inputs: Sequence[Prompt], concurrency: int = 8, **gen_params
    ) -> list[Completion]:
        """Complete many prompts with at most `concurrency` requests in flight; results in order.

        `concurrency` workers take the prompts in turn; every `_SHARD_SIZE` workers share one
        connection pool (a pool's cost per request grows with its size, so 64 requests in flight
        go through 16 pools of 4 connections). The first error cancels the rest and is raised.
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        items = list(inputs)
        results: list[Completion | None] = [None] * len(items)
        todo = iter(enumerate(items))
        workers = min(concurrency, len(items))
        shards = [self.async_client(_SHARD_SIZE) for _ in range(-(-workers // _SHARD_SIZE))]

        async def work(slot: int) -> None:
            client = shards[slot // _SHARD_SIZE]
            for index, prompt in todo:  # shared by all workers: each prompt is taken once
                results[index] = await self.acomplete(prompt, client=client, **gen_params)

        tasks = [asyncio.ensure_future(work(slot)) for slot in range(workers)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            for client in shards:
                await client.aclose()
        return results  # type: ignore[return-value]  (every slot is filled once gather returns)

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


def _run_sync(coroutine: Any) -> Any:
    """Run a coroutine to completion from synchronous code, even under a running loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
