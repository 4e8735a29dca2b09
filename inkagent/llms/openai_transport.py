"""`OpenAITransport`: how `OpenAICompatible` sends its requests to an OpenAI-compatible server (httpx).

It holds the connections (a blocking client per group of threads, async clients made on demand, one TLS
context shared by all) and posts each request with retries: an attempt goes to the replica with the
fewest requests in flight (`replicas.py`); a connection error or a retryable status sends the request to
another replica at once, and once every replica has failed it waits (exponential backoff with jitter, or
the server's `Retry-After`, capped at `max_retry_wait_s`) before the next round, all within the
request's total deadline. The API key goes in a header and is scrubbed from every error message.

Wire format (the OpenAI API's HTTP conventions, which vLLM, LMDeploy and `transformers serve` follow):
`POST {base_url}/completions` or `{base_url}/chat/completions` with a JSON body (`Content-Type:
application/json`, made by `openai_body.encode_body`, byte for byte what httpx makes of `json=`),
`Accept: application/json` and, with a key, `Authorization: Bearer <key>`. The answer is read as a
stream: a JSON body, or server-sent events (parsed by `openai_wire.py`). Statuses 408, 409, 429, 500 and
502-504 are retried, honouring `Retry-After` given in seconds (an HTTP date falls back to our own
schedule); other error statuses end the request with the server's message (`{"error": {"message":
...}}` or `{"detail": ...}`), except a 400 or 422 naming `skip_special_tokens`, which is sent again
without that field.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Sequence

import httpx

from ..errors import LLMError
from .openai_body import encode_body
from .openai_wire import _json, _response_error
from .replicas import Replica, ReplicaSet, normalize_base_urls

#: The backend's logger (the name it had before the transport moved here, so filters on it still apply).
logger = logging.getLogger("inkagent.llms.openai_compat")

#: Statuses worth another try: rate limited, or the server is (temporarily) failing.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
#: Requests in flight per async connection pool in `OpenAICompatible.acomplete_many`. httpcore's pool
#: scans all its connections on every request event (quadratic in the pool's size), so many requests in
#: flight are spread over several small pools rather than one big one.
_SHARD_SIZE = 4
#: The request body's content type (bodies are encoded by `openai_body.encode_body`, as httpx would).
_JSON = {"Content-Type": "application/json"}
#: Blocking pools: threads (`inkagent bench --concurrency N`, batch runs) are dealt out over this many.
_SYNC_SHARDS = 8


class OpenAITransport:
    """The HTTP side of `OpenAICompatible`: connections, retries, failover between replicas, deadlines.

    A subclass says where requests go (`_path`, under each base URL); `keep_special_tokens` is turned
    off here when a server refuses the `skip_special_tokens` field. The arguments are
    `OpenAICompatible`'s of the same names (`key`: the API key itself, or None).
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        key: str | None,
        *,
        timeout: float,
        total_timeout_s: float | None,
        max_retries: int,
        retry_backoff_s: float,
        max_retry_wait_s: float,
    ) -> None:
        self.base_urls = normalize_base_urls(base_url)
        self.base_url = self.base_urls[0]
        self.replicas = ReplicaSet(self.base_urls, cooldown_s=max(retry_backoff_s, 0.05))
        self.timeout = timeout
        self.total_timeout_s = total_timeout_s
        self.max_retry_wait_s = max_retry_wait_s
        self.max_retries = max(0, int(max_retries))
        self.retry_backoff_s = retry_backoff_s
        self.headers = {"Accept": "application/json"}
        self._secrets: tuple[str, ...] = ()
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
            self._secrets = tuple({key, json.dumps(key)[1:-1]})
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

    def _retry_wait(
        self, attempt: int, response: httpx.Response | None, deadline: float | None, last: str
    ) -> float:
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
        """The path requests go to under each base URL (`completions`, `chat/completions`): the subclass's."""
        raise NotImplementedError

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
                    client = httpx.Client(
                        timeout=self._timeout(), headers=self.headers, verify=_ssl_context()
                    )
                    self._sync_clients[slot] = client
        return client

    def close(self) -> None:
        """Close the HTTP connections (a later call opens new ones)."""
        with self._client_lock:
            clients, self._sync_clients = self._sync_clients, [None] * _SYNC_SHARDS
        for client in clients:
            if client is not None:
                client.close()

    def async_client(self, in_flight: int = 16) -> httpx.AsyncClient:
        """A new async client with this backend's timeout and headers (close it when done).

        `in_flight`: the most requests it will carry at once (its pool keeps that many connections
        alive to each replica). Creating one is cheap (the TLS settings are shared).
        """
        return httpx.AsyncClient(
            timeout=self._timeout(),
            headers=self.headers,
            limits=self._limits(in_flight),
            verify=_ssl_context(),
        )

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

    # -- sending ---------------------------------------------------------------------------------------
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
                response = client.send(
                    client.build_request("POST", url, content=body, headers=_JSON), stream=True
                )
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


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One TLS context for all clients: building it (loading the CA bundle) costs ~20 ms a client."""
    return httpx.create_ssl_context()
