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
concurrency, over several small connection pools) serve batches and benchmarks. `base_url` may list
the replicas of one model; requests are spread over them (`replicas.py`). The API key is read from the environment variable named
by `api_key_env`, never from a config file.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import itertools
import json
import logging
import random
import ssl
import threading
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
from .openai_body import FragmentCache, encode_body, to_openai_message
from .openai_wire import Completion, SSEDecoder, _Assembler, _json, _response_error
from .replicas import Replica, ReplicaSet, normalize_base_urls
from .stopping import normalize_stop_words

logger = logging.getLogger(__name__)

Mode = Literal["completions", "chat"]
#: Statuses worth another try: rate limited, or the server is (temporarily) failing.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
#: Requests in flight per async connection pool in `acomplete_many`. httpcore's pool scans all its
#: connections on every request event (quadratic in the pool's size), so many requests in flight are
#: spread over several small pools rather than one big one.
_SHARD_SIZE = 4
#: The request body's content type (bodies are encoded by `openai_body.encode_body`, as httpx would).
_JSON = {"Content-Type": "application/json"}
#: Blocking pools: threads (`inkagent bench --concurrency N`, batch runs) are dealt out over this many.
_SYNC_SHARDS = 8


class OpenAICompatible(LLM):
    """A model served behind an OpenAI-compatible API.

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
        super().__init__(path=model, meta_template=meta_template, **kwargs)
        self.gen_params["do_sample"] = do_sample
        self.model = model
        self.base_urls = normalize_base_urls(base_url)
        self.base_url = self.base_urls[0]
        self.replicas = ReplicaSet(self.base_urls, cooldown_s=max(retry_backoff_s, 0.05))
        self.mode: Mode = mode
        self.timeout = timeout
        self.total_timeout_s = total_timeout_s
        self.max_retry_wait_s = max_retry_wait_s
        self.max_retries = max(0, int(max_retries))
        self.retry_backoff_s = retry_backoff_s
        self.extra_body = dict(extra_body or {})
        self.keep_special_tokens = (
            (mode == "completions") if keep_special_tokens is None else keep_special_tokens
        )
        self.api_key_env = api_key_env
        self.headers = {"Accept": "application/json"}
        self._secrets: tuple[str, ...] = ()
        self._message_json = FragmentCache(to_openai_message)  # each message's JSON, made once
        self._tool_json = FragmentCache()
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
            self._secrets = tuple({key, json.dumps(key)[1:-1]})
        self.last_tool_calls: list[dict] = []
        self.last_finish_reason: str | None = None
        self._sync_clients: list[httpx.Client | None] = [None] * _SYNC_SHARDS
        self._client_lock = threading.Lock()  # each blocking client is made once, by one thread
        self._thread_slot = threading.local()
        self._slots = itertools.count()

    # -- plumbing --------------------------------------------------------------------------------
    def redact(self, text: str) -> str:
        """`text` with the API key replaced by `***` (servers echo keys in their error messages)."""
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def _redacted(self, exc: BaseException) -> None:
        """Scrub the key from `exc`'s message, in place (raise it again after)."""
        if self._secrets and exc.args:
            exc.args = tuple(self.redact(a) if isinstance(a, str) else a for a in exc.args)

    def _deadline(self) -> float | None:
        return None if self.total_timeout_s is None else time.monotonic() + self.total_timeout_s

    def _check_deadline(self, deadline: float | None) -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise LLMError(
                f"the request to {self.endpoint} took longer than its total time limit of "
                f"{self.total_timeout_s:g} s (total_timeout_s): the server kept it open without finishing"
            )

    def _retry_wait(self, attempt: int, response: httpx.Response | None, deadline: float | None, last: str) -> float:
        """How long to wait before the next attempt; an error if that would pass the request's deadline."""
        wait = self._backoff(attempt, response)
        if deadline is not None and time.monotonic() + wait > deadline:
            raise LLMError(
                f"{self.endpoint}: {self.redact(last)}; gave up retrying: waiting {wait:.1f} s more would pass "
                f"the request's total time limit of {self.total_timeout_s:g} s (total_timeout_s)"
            )
        logger.warning("%s: %s; retrying in %.1f s", self.endpoint, self.redact(last), wait)
        return wait

    @property
    def _path(self) -> str:
        return "chat/completions" if self.mode == "chat" else "completions"

    @property
    def endpoint(self) -> str:
        """The URL requests go to (with several replicas: the first one's; see `base_urls`)."""
        return f"{self.base_url}/{self._path}"

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0))

    def _limits(self, in_flight: int) -> httpx.Limits:
        """Pool limits for `in_flight` concurrent requests: keep-alive connections to every replica."""
        connections = max(1, in_flight) * len(self.base_urls)
        return httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    @property
    def client(self) -> httpx.Client:
        """The calling thread's blocking client (opened on first use).

        Threads are dealt out round-robin over `_SYNC_SHARDS` clients, so that many threads do not
        all share one pool (see `_SHARD_SIZE`); a single-threaded program uses one client.
        """
        slot = getattr(self._thread_slot, "index", None)
        if slot is None:
            slot = self._thread_slot.index = next(self._slots) % _SYNC_SHARDS
        client = self._sync_clients[slot]
        if client is None:
            with self._client_lock:
                client = self._sync_clients[slot]
                if client is None:
                    client = httpx.Client(timeout=self._timeout(), headers=self.headers, verify=_ssl_context())
                    self._sync_clients[slot] = client
        return client

    def close(self) -> None:
        """Close the HTTP connections (a later call opens new ones)."""
        with self._client_lock:
            clients, self._sync_clients = self._sync_clients, [None] * _SYNC_SHARDS
        for client in clients:
            if client is not None:
                client.close()

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

    def _backoff(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None and response.headers.get("retry-after"):
            try:
                return max(0.0, min(float(response.headers["retry-after"]), self.max_retry_wait_s))
            except ValueError:
                pass  # an HTTP date: fall back to our own schedule
        return min(self.retry_backoff_s * (2**attempt) * (1 + 0.1 * random.random()), self.max_retry_wait_s)

    def _give_up(self, attempts: int, last: str) -> LLMError:
        where = self.base_url if len(self.base_urls) == 1 else f"any of {', '.join(self.base_urls)}"
        return LLMError(
            f"the OpenAI-compatible server at {where} did not answer ({self.redact(last)}) after "
            f"{attempts} attempt(s); is it running, and is base_url right?"
        )

    def _transport_error(self, exc: httpx.TransportError) -> str:
        """What went wrong on the wire, naming the limit when one was hit."""
        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, httpx.TimeoutException):
            text += f" (no answer within timeout={self.timeout:g} s)"
        return text

    def _round_over(self, failed: set[Replica]) -> bool:
        """After a failed attempt: whether every replica failed since the last wait (then wait, or give up).

        Otherwise the next attempt goes at once to a replica not yet tried in this round.
        """
        if len(failed) < len(self.replicas):
            return False
        failed.clear()
        return True

    def _after_failure(
        self,
        replica: Replica,
        failed: set[Replica],
        attempts: int,
        waits: int,
        response: httpx.Response | None,
        deadline: float | None,
        last: str,
    ) -> float | None:
        """After a failed attempt on `replica`: None to try another replica at once, else the seconds to
        wait before the next round. Raises `LLMError` when the retries or the deadline are spent."""
        self.replicas.release(replica, failed=True)
        failed.add(replica)
        if not self._round_over(failed):
            logger.warning("%s: %s; trying another replica", replica.url, self.redact(last))
            return None
        if waits >= self.max_retries:
            raise self._give_up(attempts, last)
        return self._retry_wait(waits, response, deadline, last)

    def _taken(self, response: httpx.Response, replica: Replica) -> httpx.Response:
        """A 2xx response: its replica stays counted in flight until `_close` / `_aclose`."""
        response.extensions["inkagent_replica"] = replica
        return response

    def _close(self, response: httpx.Response) -> None:
        """Close a response from `_send` and count its request out of its replica."""
        try:
            response.close()
        finally:
            replica = response.extensions.pop("inkagent_replica", None)
            if replica is not None:
                self.replicas.release(replica, failed=False)

    async def _aclose(self, response: httpx.Response) -> None:
        """Async `_close`."""
        try:
            await response.aclose()
        finally:
            replica = response.extensions.pop("inkagent_replica", None)
            if replica is not None:
                self.replicas.release(replica, failed=False)

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
        return LLMError(
            f"{self.endpoint} answered HTTP {response.status_code}: {self.redact(_response_error(response))}"
        )

    # -- synchronous -----------------------------------------------------------------------------------
    def _send(self, payload: dict, deadline: float | None = None) -> httpx.Response:
        """POST with retries (failing over between replicas) within `deadline` (a `time.monotonic()` time);
        an open (streamed) 2xx response."""
        body = encode_body(payload)
        last = ""
        failed: set[Replica] = set()
        attempts = waits = 0
        while True:
            response = None
            replica = self.replicas.pick(avoid=failed)
            attempts += 1
            url = f"{replica.url}/{self._path}"
            try:
                client = self.client
                response = client.send(client.build_request("POST", url, content=body, headers=_JSON), stream=True)
            except httpx.TransportError as exc:
                last = self._transport_error(exc)
            except BaseException:  # interrupted: the replica is not to blame
                self.replicas.release(replica, failed=False)
                raise
            else:
                if response.status_code not in RETRY_STATUSES:
                    if response.status_code < 400:
                        return self._taken(response, replica)
                    self.replicas.release(replica, failed=False)
                    response.read()
                    response.close()
                    if self._refuses_special_tokens_flag(response, payload):
                        return self._send(payload, deadline)
                    raise self._http_error(response)
                response.read()
                response.close()
                last = f"HTTP {response.status_code}: {_response_error(response)}"
            wait = self._after_failure(replica, failed, attempts, waits, response, deadline, last)
            if wait is not None:
                waits += 1
                time.sleep(wait)

    def complete(self, inputs: Prompt, **gen_params) -> Completion:
        """One non-streamed request; the full answer with tool calls and stats."""
        payload, stop_words = self._payload(inputs, gen_params, stream=False)
        assembler = _Assembler(stop_words)
        assembler.body(self.post_json(payload))
        return self._remember(assembler.result())

    def post_json(self, payload: dict) -> dict:
        """POST `payload` (a whole request body) to the endpoint, with retries and the total deadline, and
        return the JSON answer. Raises `LLMError` (the key scrubbed from its message)."""
        try:
            deadline = self._deadline()
            response = self._send(payload, deadline)
            chunks = []
            try:
                for chunk in response.iter_bytes():
                    self._check_deadline(deadline)
                    chunks.append(chunk)
            except httpx.TransportError as exc:
                raise LLMError(f"reading the answer of {self.endpoint} failed: {exc}") from exc
            finally:
                self._close(response)
            return _json(b"".join(chunks))
        except LLMError as exc:
            self._redacted(exc)
            raise

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
    def async_client(self, in_flight: int = 16) -> httpx.AsyncClient:
        """A new async client with this backend's timeout and headers (close it when done).

        `in_flight`: the most requests it will carry at once (its pool keeps that many connections
        alive to each replica). Creating one is cheap (the TLS settings are shared).
        """
        return httpx.AsyncClient(
            timeout=self._timeout(), headers=self.headers, limits=self._limits(in_flight), verify=_ssl_context()
        )

    async def _asend(
        self, client: httpx.AsyncClient, payload: dict, deadline: float | None = None
    ) -> httpx.Response:
        """Async `_send`."""
        body = encode_body(payload)
        last = ""
        failed: set[Replica] = set()
        attempts = waits = 0
        while True:
            response = None
            replica = self.replicas.pick(avoid=failed)
            attempts += 1
            url = f"{replica.url}/{self._path}"
            try:
                request = client.build_request("POST", url, content=body, headers=_JSON)
                response = await client.send(request, stream=True)
            except httpx.TransportError as exc:
                last = self._transport_error(exc)
            except BaseException:  # cancelled: the replica is not to blame
                self.replicas.release(replica, failed=False)
                raise
            else:
                if response.status_code not in RETRY_STATUSES:
                    if response.status_code < 400:
                        return self._taken(response, replica)
                    self.replicas.release(replica, failed=False)
                    await response.aread()
                    await response.aclose()
                    if self._refuses_special_tokens_flag(response, payload):
                        return await self._asend(client, payload, deadline)
                    raise self._http_error(response)
                await response.aread()
                await response.aclose()
                last = f"HTTP {response.status_code}: {_response_error(response)}"
            wait = self._after_failure(replica, failed, attempts, waits, response, deadline, last)
            if wait is not None:
                waits += 1
                await asyncio.sleep(wait)

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

    async def _astream_text(self, inputs: Prompt, client: httpx.AsyncClient, gen_params: dict) -> AsyncIterator[str]:
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


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One TLS context for all clients: building it (loading the CA bundle) costs ~20 ms a client."""
    return httpx.create_ssl_context()


def _run_sync(coroutine: Any) -> Any:
    """Run a coroutine to completion from synchronous code, even under a running loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
