"""OpenAICompatible against a real `transformers serve` running the tiny model, and against small local
HTTP servers that misbehave on purpose (429s, 5xx, errors, silence) or replay recorded tool-call answers.
Everything listens on 127.0.0.1; nothing reaches the network.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import free_port
from tiny_model import tiny_model_dir  # noqa: F401  (fixture)

from inkagent.errors import ConfigError, LLMError
from inkagent.llms import HFTransformer, OpenAICompatible
from inkagent.llms.openai_compat import SSEDecoder

FIXTURES = Path(__file__).parent / "fixtures" / "openai"


# -- a real transformers serve ----------------------------------------------------------------------


@dataclass
class Served:
    base_url: str
    model: str
    local: HFTransformer  # the same weights, run in-process, for reference answers


@pytest.fixture(scope="module")
def served(serve_url, tiny_model_dir) -> Served:  # noqa: F811
    local = HFTransformer(str(tiny_model_dir), meta_template=None, do_sample=False, device="cpu")
    return Served(serve_url, str(tiny_model_dir), local)


def clean_length(local: HFTransformer, inputs, limit: int = 40) -> int:
    """A token budget whose greedy answer has no special token and ends on a whole character.

    `transformers serve` hides special tokens and drops an unfinished character at the end of a stream;
    with such a budget its answers must equal ours exactly.
    """
    special = set(local.tokenizer.all_special_ids)
    full = local.generate(inputs, max_new_tokens=limit, stop_words=[])
    ids = local.last_token_ids[0]
    for n in range(limit, 4, -1):
        head = ids[:n]
        if not special & set(head) and not local.decode(head).endswith("\ufffd"):
            return n
    pytest.fail(f"no clean prefix in the tiny model's answer {full!r}")


def client(served: Served, **kwargs) -> OpenAICompatible:
    kwargs.setdefault("do_sample", False)
    kwargs.setdefault("stop_words", [])
    return OpenAICompatible(model=served.model, base_url=served.base_url, **kwargs)


PROMPT = "The quick brown fox"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]


def test_completions_against_transformers_serve(served):
    n = clean_length(served.local, PROMPT)
    expected = served.local.generate(PROMPT, max_new_tokens=n, stop_words=[])
    with client(served, max_new_tokens=n) as llm:
        text = llm.generate(PROMPT)
        assert text == expected
        assert llm.last_stats.completion_tokens == n
        assert llm.last_stats.prompt_tokens == len(served.local.tokenize(PROMPT))
        # serve refuses unknown fields: the client drops skip_special_tokens once and says why.
        assert llm.keep_special_tokens is False

        pieces = list(llm.stream_text(PROMPT))
        assert "".join(pieces) == expected
        assert len(pieces) > 1
        assert llm.last_stats.first_token_s is not None


def test_chat_against_transformers_serve(served):
    n = clean_length(served.local, MESSAGES)
    expected = served.local.chat(MESSAGES, max_new_tokens=n, stop_words=[])  # the tokenizer's chat template
    with client(served, mode="chat", max_new_tokens=n) as llm:
        assert llm.chat(MESSAGES) == expected
        pieces = list(llm.stream_text(MESSAGES))
        assert "".join(pieces) == expected
        assert len(pieces) > 1
        assert llm.last_finish_reason == "length"
        assert llm.last_tool_calls == []


def test_stop_words_are_cut_even_when_the_server_keeps_them(served):
    n = clean_length(served.local, PROMPT)
    full = served.local.generate(PROMPT, max_new_tokens=n, stop_words=[])
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    expected = full[: full.find(stop)]
    with client(served, max_new_tokens=n) as llm:
        assert llm.generate(PROMPT, stop_words=[stop]) == expected
        assert "".join(llm.stream_text(PROMPT, stop_words=[stop])) == expected


def test_async_batch_with_bounded_concurrency_against_transformers_serve(served):
    prompts = [PROMPT, "hello", "我们来计算", "Search arXiv"]
    llm = client(served, max_new_tokens=12)
    one_by_one = [llm.generate(p) for p in prompts]
    assert llm.generate_many(prompts, concurrency=2) == one_by_one
    assert llm.generate(prompts) == one_by_one  # lagent's list form
    assert llm.last_stats.extra["batch_size"] == len(prompts)

    async def stream() -> str:
        return "".join([delta async for delta in llm.astream_text(prompts[0])])

    assert asyncio.run(stream()) == one_by_one[0]
    assert asyncio.run(llm.agenerate(prompts[1])) == one_by_one[1]
    llm.close()


# -- small scripted servers -----------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes | list[bytes] | Iterator[bytes] = b""  # a list or iterator is streamed piece by piece
    headers: dict = field(default_factory=dict)
    hang: bool = False  # never answer (until the test ends)


@dataclass
class Scripted:
    base_url: str
    requests: list[dict]
    release: threading.Event


@pytest.fixture
def scripted() -> Iterator:
    servers = []

    def start(*replies: Reply) -> Scripted:
        queue = list(replies)
        requests: list[dict] = []
        release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802  (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "json": json.loads(self.rfile.read(length)),
                    }
                )
                reply = queue.pop(0) if len(queue) > 1 else queue[0]
                if reply.hang:
                    release.wait()
                    return
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                pieces = [reply.body] if isinstance(reply.body, bytes) else reply.body
                if isinstance(reply.body, bytes):
                    self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for piece in pieces:
                        self.wfile.write(piece)
                        self.wfile.flush()
                except OSError:
                    pass  # the client hung up

            def log_message(self, *args):  # keep pytest output clean
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append((server, release))
        return Scripted(f"http://127.0.0.1:{server.server_address[1]}/v1", requests, release)

    yield start
    for server, release in servers:
        release.set()
        server.shutdown()
        server.server_close()


def completion_body(text: str) -> bytes:
    return json.dumps(
        {
            "id": "cmpl-1",
            "object": "text_completion",
            "model": "m",
            "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
        }
    ).encode()


def sse(*texts: str) -> list[bytes]:
    chunks = [
        f"data: {json.dumps({'choices': [{'index': 0, 'text': t, 'finish_reason': None}]})}\n\n".encode()
        for t in texts
    ]
    return [*chunks, b"data: [DONE]\n\n"]


JSON = {"Content-Type": "application/json"}
EVENTS = {"Content-Type": "text/event-stream"}


def test_429_then_200_is_retried(scripted):
    server = scripted(
        Reply(429, b'{"error": {"message": "slow down"}}', {**JSON, "Retry-After": "0"}),
        Reply(200, completion_body("hello"), JSON),
    )
    llm = OpenAICompatible(
        model="m", base_url=server.base_url, retry_backoff_s=0.01, keep_special_tokens=False
    )
    assert llm.generate("hi") == "hello"
    assert len(server.requests) == 2
    assert llm.last_stats.prompt_tokens == 7 and llm.last_stats.completion_tokens == 3


def test_5xx_then_stream_is_retried_in_async_too(scripted):
    server = scripted(
        Reply(503, b"overloaded"),
        Reply(502, b"bad gateway"),
        Reply(200, sse("Hel", "lo<|im_", "end|> never shown"), EVENTS),
    )
    llm = OpenAICompatible(model="m", base_url=server.base_url, retry_backoff_s=0.01)

    async def stream() -> list[str]:
        return [delta async for delta in llm.astream_text("hi")]

    pieces = asyncio.run(stream())
    assert "".join(pieces) == "Hello"  # the default stop word <|im_end|> is cut, across chunks
    assert len(server.requests) == 3


def test_out_of_retries_names_the_last_error(scripted):
    server = scripted(Reply(500, b'{"error": {"message": "CUDA out of memory"}}', JSON))
    llm = OpenAICompatible(model="m", base_url=server.base_url, max_retries=2, retry_backoff_s=0.01)
    with pytest.raises(LLMError, match="CUDA out of memory") as caught:
        llm.generate("hi")
    assert "3 attempt" in str(caught.value)
    assert len(server.requests) == 3


def test_a_client_error_is_not_retried(scripted):
    server = scripted(Reply(400, b'{"error": {"message": "max_tokens is too large"}}', JSON))
    llm = OpenAICompatible(model="m", base_url=server.base_url, retry_backoff_s=0.01)
    with pytest.raises(LLMError, match="HTTP 400: max_tokens is too large"):
        llm.generate("hi")
    assert len(server.requests) == 1


def test_a_dead_server_gives_a_clear_error():
    base_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    llm = OpenAICompatible(model="m", base_url=base_url, max_retries=1, retry_backoff_s=0.01)
    with pytest.raises(LLMError, match="is it running") as caught:
        llm.generate("hi")
    assert base_url in str(caught.value) and "ConnectError" in str(caught.value)
    with pytest.raises(LLMError, match="is it running"):
        list(llm.stream_text("hi"))
    with pytest.raises(LLMError, match="is it running"):
        llm.generate_many(["a", "b"], concurrency=2)


def test_a_silent_server_times_out(scripted):
    server = scripted(Reply(hang=True))
    llm = OpenAICompatible(model="m", base_url=server.base_url, timeout=0.3, max_retries=0)
    with pytest.raises(LLMError, match="ReadTimeout"):
        llm.generate("hi")


def test_an_error_in_the_middle_of_a_stream_is_raised(scripted):
    body = [*sse("partial")[:1], b'data: {"error": "generation crashed"}\n\n']
    server = scripted(Reply(200, body, EVENTS))
    llm = OpenAICompatible(model="m", base_url=server.base_url)
    stream = llm.stream_text("hi")
    assert next(stream) == "partial"
    with pytest.raises(LLMError, match="generation crashed"):
        next(stream)


def test_completions_request_carries_the_internlm2_prompt_stop_words_and_key(scripted, monkeypatch):
    monkeypatch.setenv("MY_LLM_KEY", "sk-test-123")
    server = scripted(Reply(200, completion_body("ok"), JSON))
    llm = OpenAICompatible(
        model="internlm2-chat-7b",
        base_url=server.base_url,
        api_key_env="MY_LLM_KEY",
        stop_words=["<|im_end|>", "<|action_end|>"],
        max_new_tokens=64,
        temperature=0.2,
    )
    llm.chat([{"role": "user", "content": "hi"}])
    sent = server.requests[0]
    assert sent["path"] == "/v1/completions"
    assert sent["headers"]["Authorization"] == "Bearer sk-test-123"
    assert sent["json"]["prompt"] == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert sent["json"]["stop"] == ["<|im_end|>", "<|action_end|>"]
    assert sent["json"]["max_tokens"] == 64 and sent["json"]["temperature"] == 0.2
    assert sent["json"]["skip_special_tokens"] is False  # vLLM / LMDeploy keep <|action_start|>...


def test_a_missing_api_key_variable_is_a_config_error(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(ConfigError, match="NO_SUCH_KEY_VAR"):
        OpenAICompatible(model="m", api_key_env="NO_SUCH_KEY_VAR")


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "Weather.query",
            "description": "Weather of a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
EXPECTED_CALLS = [
    ("chatcmpl-tool-1a", "ArxivSearch.get_arxiv_article_information", {"query": "InternLM2 agents"}),
    ("chatcmpl-tool-2b", "Weather.query", {"city": "上海"}),
]


def calls_of(tool_calls: list[dict]) -> list[tuple]:
    return [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in tool_calls]


def test_streamed_tool_call_deltas_are_assembled_by_index(scripted):
    body = (FIXTURES / "chat_tool_call_stream.sse").read_bytes()
    server = scripted(Reply(200, [body[i : i + 97] for i in range(0, len(body), 97)], EVENTS))
    llm = OpenAICompatible(model="internlm2-chat-7b", base_url=server.base_url, mode="chat")
    messages = [{"role": "user", "content": "papers and weather?"}]

    text = "".join(llm.stream_text(messages, tools=TOOLS))

    assert text == "我先查一下论文。"
    assert calls_of(llm.last_tool_calls) == EXPECTED_CALLS
    assert llm.last_finish_reason == "tool_calls"
    assert llm.last_stats.prompt_tokens == 210 and llm.last_stats.completion_tokens == 41
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["json"]["tools"] == TOOLS and sent["json"]["messages"] == messages
    assert "skip_special_tokens" not in sent["json"]


def test_chat_with_tools_returns_the_tool_calls(scripted):
    server = scripted(Reply(200, (FIXTURES / "chat_tool_call.json").read_bytes(), JSON))
    llm = OpenAICompatible(model="internlm2-chat-7b", base_url=server.base_url, mode="chat")
    history = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c1", "type": "function", "function": {}}],
        },
        {"role": "environment", "content": "sunny", "tool_call_id": "c1"},
        {"role": "environment", "content": "a note", "name": "plugin"},
    ]

    reply = llm.chat_with_tools(history, TOOLS)

    assert reply.text == "我先查一下论文。" and reply.finish_reason == "tool_calls"
    assert calls_of(reply.tool_calls) == EXPECTED_CALLS
    roles = [m["role"] for m in server.requests[0]["json"]["messages"]]
    assert roles == ["user", "assistant", "tool", "system"]  # lagent's environment role, mapped
    with pytest.raises(LLMError, match="mode='chat'"):
        OpenAICompatible(model="m", base_url=server.base_url).chat_with_tools(history, TOOLS)


def test_sse_decoder_handles_comments_fields_and_multiline_data():
    decoder = SSEDecoder()
    lines = [": ping", "event: message", "id: 7", 'data: {"a":', "data: 1}", "", "data:[DONE]", ""]
    assert [d for line in lines if (d := decoder.feed(line)) is not None] == ['{"a":\n1}', "[DONE]"]


# -- secrets and deadlines (issue 17) ------------------------------------------------------------------

KEY = "sk-live-0123456789abcdef"


def test_a_key_echoed_by_the_server_never_reaches_an_error_a_trace_or_the_screen(scripted, monkeypatch, tmp_path):
    import yaml
    from conftest import run_cli

    monkeypatch.setenv("MY_LLM_KEY", KEY)
    echo = json.dumps({"error": {"message": f"invalid key {KEY}"}}).encode()
    server = scripted(Reply(401, echo, JSON))
    llm = OpenAICompatible(model="m", base_url=server.base_url, api_key_env="MY_LLM_KEY")
    for call in (lambda: llm.generate("hi"), lambda: list(llm.stream_text("hi")),
                 lambda: asyncio.run(llm.agenerate("hi"))):
        with pytest.raises(LLMError, match="HTTP 401: invalid key \\*\\*\\*") as caught:
            call()
        assert KEY not in str(caught.value)
    retried = scripted(Reply(500, echo, JSON))
    llm = OpenAICompatible(model="m", base_url=retried.base_url, api_key_env="MY_LLM_KEY", max_retries=1,
                           retry_backoff_s=0.01)
    with pytest.raises(LLMError) as caught:
        llm.generate("hi")
    assert KEY not in str(caught.value) and "invalid key ***" in str(caught.value)

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"llm": {"type": "OpenAICompatible", "model": "m", "base_url": server.base_url,
                                              "api_key_env": "MY_LLM_KEY", "max_retries": 0}}))
    trace = tmp_path / "t.jsonl"
    proc = run_cli("run", str(config), "--task", "hi", "--json", "--trace", str(trace), env={"MY_LLM_KEY": KEY})
    assert proc.returncode != 0 and "invalid key ***" in proc.stdout + proc.stderr
    assert KEY not in proc.stdout + proc.stderr + trace.read_text()


def test_a_key_given_as_api_key_env_or_api_key_is_refused_without_showing_it():
    with pytest.raises(ConfigError, match="NAME of an environment variable") as caught:
        OpenAICompatible(model="m", api_key_env=KEY)
    assert KEY not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        OpenAICompatible(model="m", api_key_env="sk_live_0123456789abcdef")
    assert "sk_live" not in str(caught.value)
    with pytest.raises(ConfigError, match="api_key_env") as caught:
        OpenAICompatible(model="m", api_key=KEY)
    assert KEY not in str(caught.value)


def keep_alive_forever(release: threading.Event) -> Iterator[bytes]:
    while not release.wait(0.05):  # an SSE comment every 50 ms, never an event
        yield b": keep-alive\n\n"


def trickle_forever(release: threading.Event) -> Iterator[bytes]:
    yield b"data: "
    while not release.wait(0.05):
        yield b"x"


def test_keep_alive_comments_cannot_hold_a_stream_past_its_total_deadline(scripted):
    release = threading.Event()
    try:
        server = scripted(Reply(200, keep_alive_forever(release), EVENTS))
        llm = OpenAICompatible(model="m", base_url=server.base_url, timeout=5, total_timeout_s=0.5, max_retries=0)
        with pytest.raises(LLMError, match=r"total time limit of 0\.5 s \(total_timeout_s\)"):
            list(llm.stream_text("hi"))

        server = scripted(Reply(200, keep_alive_forever(release), EVENTS))  # a stream of its own
        llm = OpenAICompatible(model="m", base_url=server.base_url, timeout=5, total_timeout_s=0.5, max_retries=0)

        async def stream() -> list[str]:
            return [delta async for delta in llm.astream_text("hi")]

        with pytest.raises(LLMError, match="total_timeout_s"):
            asyncio.run(stream())

        server = scripted(Reply(200, trickle_forever(release), EVENTS))  # bytes, never a whole line
        llm = OpenAICompatible(model="m", base_url=server.base_url, timeout=5, total_timeout_s=0.5, max_retries=0)
        with pytest.raises(LLMError, match="total_timeout_s"):
            list(llm.stream_text("hi"))
    finally:
        release.set()


def test_retry_after_waits_are_capped_and_count_against_the_deadline(scripted):
    busy = Reply(429, b'{"error": {"message": "busy"}}', {**JSON, "Retry-After": "100000"})
    server = scripted(busy, Reply(200, completion_body("hello"), JSON))
    llm = OpenAICompatible(model="m", base_url=server.base_url, max_retry_wait_s=0.01, keep_special_tokens=False)
    assert llm.generate("hi") == "hello"  # waited 0.01 s, not 100000 s
    server = scripted(busy)
    llm = OpenAICompatible(model="m", base_url=server.base_url, total_timeout_s=5, keep_special_tokens=False)
    with pytest.raises(LLMError, match=r"waiting 30\.0 s more would pass the request's total time limit of 5 s"):
        llm.generate("hi")
    assert len(server.requests) == 1


def test_stream_lines_split_on_crlf_cr_and_lf_even_across_chunks():
    from inkagent.llms.lines import LineSplitter

    chunks = ["data: a\r", "\ndata: b\rdata: c\n", "\n", "data: \u2028d", "\r\n\r\ndata: e"]
    lines = list(LineSplitter().lines(iter(chunks), lambda: None))
    assert lines == ["data: a", "data: b", "data: c", "", "data: \u2028d", "", "data: e"]
