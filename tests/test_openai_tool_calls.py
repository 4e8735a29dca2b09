"""`OpenAICompatible(mode="chat").stream_deltas` against a loopback server speaking the streamed
chat-completions format: text deltas and `ToolCallChunk`s in arrival order, assembled by
`OpenAIToolsProtocol`'s parser into the calls the server sent (names mapped back)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from inkagent.actions import ActionExecutor, tool
from inkagent.llms import OpenAICompatible
from inkagent.protocols import OpenAIToolsProtocol, TextPiece
from inkagent.schema import Message, ToolCallChunk, ToolSpec

FIXTURES = Path(__file__).parent / "fixtures" / "openai"
SPECS = [
    ToolSpec(name="ArxivSearch.get_arxiv_article_information", description="papers",
             parameters={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}),
    ToolSpec(name="Weather.query", description="Weather of a city",
             parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
]


@pytest.fixture
def sse_server() -> Iterator:
    """Start a server that answers the POSTs with `bodies` in turn (the last one again when they run out)
    as event streams; yields (base_url, requests)."""
    servers = []

    def start(*bodies: bytes):
        requests: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802  (http.server's naming)
                requests.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0)))))
                body = bodies[min(len(requests), len(bodies)) - 1]
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for i in range(0, len(body), 53):  # in pieces that split events and JSON
                    self.wfile.write(body[i : i + 53])
                    self.wfile.flush()

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1", requests

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _event(delta: dict) -> bytes:
    chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


def test_streamed_tool_call_deltas_reach_the_protocol_parser(sse_server):
    base_url, requests = sse_server((FIXTURES / "chat_tool_call_stream.sse").read_bytes())
    protocol = OpenAIToolsProtocol(tool_choice="auto")
    request = protocol.request([Message(role="user", content="papers and weather?")], SPECS)
    llm = OpenAICompatible(model="internlm2-chat-7b", base_url=base_url, mode="chat")

    chunks = list(llm.stream_deltas(request.messages, **request.gen_params()))

    assert "".join(c for c in chunks if isinstance(c, str)) == "我先查一下论文。"
    deltas = [c for c in chunks if isinstance(c, ToolCallChunk)]
    assert [d.index for d in deltas][:1] == [0] and {d.index for d in deltas} == {0, 1} and len(deltas) > 2
    parser = protocol.stream_parser()
    items = [item for chunk in chunks for item in parser.feed(chunk)] + parser.close()
    turn = parser.result()
    assert [(c.id, c.name, c.arguments) for c in turn.calls] == [
        ("chatcmpl-tool-1a", "ArxivSearch.get_arxiv_article_information", {"query": "InternLM2 agents"}),
        ("chatcmpl-tool-2b", "Weather.query", {"city": "上海"}),
    ]
    assert turn.thought == "我先查一下论文。" and isinstance(items[0], TextPiece)
    sent = requests[0]
    assert [t["function"]["name"] for t in sent["tools"]] == [
        "ArxivSearch_get_arxiv_article_information", "Weather_query"]
    assert sent["tool_choice"] == "auto" and sent["messages"] == [{"role": "user", "content": "papers and weather?"}]
    # plain stream_text still yields text only, and the calls land in last_tool_calls as before
    assert "".join(llm.stream_text(request.messages, **request.gen_params())) == "我先查一下论文。"
    assert [c["function"]["name"] for c in llm.last_tool_calls] == [
        "ArxivSearch.get_arxiv_article_information", "Weather.query"]


def test_a_server_repeating_the_name_in_every_delta(sse_server):
    body = b"".join([
        _event({"tool_calls": [{"index": 0, "id": "c1", "type": "function", "function": {"name": "get_weather"}}]}),
        _event({"tool_calls": [{"index": 0, "function": {"name": "get_weather", "arguments": '{"city": '}}]}),
        _event({"tool_calls": [{"index": 0, "function": {"name": "get_weather", "arguments": '"Paris"}'}}]}),
        _event({"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "get_", "arguments": ""}}]}),
        _event({"tool_calls": [{"index": 1, "function": {"name": "time", "arguments": {"tz": "CET"}}}]}),
        b"data: [DONE]\n\n",
    ])
    base_url, _ = sse_server(body)
    llm = OpenAICompatible(model="m", base_url=base_url, mode="chat")
    tools = [ToolSpec(name="get_weather"), ToolSpec(name="get_time")]

    chunks = list(llm.stream_deltas([{"role": "user", "content": "?"}], tools=[t.openai_tool() for t in tools]))

    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in llm.last_tool_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]
    turn = OpenAIToolsProtocol().parse(tool_calls=llm.last_tool_calls)
    parser = OpenAIToolsProtocol().stream_parser(tools=tools)
    for chunk in chunks:
        parser.feed(chunk)
    parser.close()
    streamed = parser.result()
    expected = [("c1", "get_weather", {"city": "Paris"}), ("c2", "get_time", {"tz": "CET"})]
    assert [(c.id, c.name, c.arguments) for c in streamed.calls] == expected
    assert [(c.id, c.name, c.arguments) for c in turn.calls] == expected


@tool
def get_current_weather(location: str, unit: str = "celsius") -> str:
    """Get the current weather in a given location.

    Args:
        location: the city and state, e.g. San Francisco, CA
        unit: celsius or fahrenheit
    """
    return json.dumps({"location": location, "temperature": "22", "unit": unit, "forecast": "sunny"})


def test_the_function_calling_guide_flow_on_the_interface(sse_server):
    """The model asks for get_current_weather (streamed deltas), the tool runs, the `tool` message with
    the call's id goes back, the model answers: what the agent loop does with OpenAIToolsProtocol."""
    call_stream = b"".join([
        _event({"role": "assistant", "content": None}),
        _event({"tool_calls": [{"index": 0, "id": "call_abc", "type": "function",
                                "function": {"name": "get_current_weather", "arguments": ""}}]}),
        _event({"tool_calls": [{"index": 0, "function": {"arguments": '{"location": "Bos'}}]}),
        _event({"tool_calls": [{"index": 0, "function": {"arguments": 'ton, MA"}'}}]}),
        b"data: [DONE]\n\n",
    ])
    answer_stream = _event({"content": "It is sunny and 22 °C in Boston."}) + b"data: [DONE]\n\n"
    base_url, requests = sse_server(call_stream, answer_stream)
    llm = OpenAICompatible(model="gpt-x", base_url=base_url, mode="chat")
    protocol, executor = OpenAIToolsProtocol(), ActionExecutor([get_current_weather])
    protocol.check_backend(llm)
    history = [Message(role="user", content="What's the weather like in Boston?")]
    for _ in range(2):
        request = protocol.request(history, executor)
        parser = protocol.stream_parser()
        for chunk in llm.stream_deltas(request.messages, **request.gen_params()):
            parser.feed(chunk)
        parser.close()
        turn = parser.result()
        if turn.is_answer:
            break
        results = executor.run_all(turn.calls)
        history.append(protocol.assistant_message("", turn))
        history += [protocol.format_result(c, r) for c, r in zip(turn.calls, results, strict=True)]

    assert turn.thought == "It is sunny and 22 °C in Boston."
    first, second = requests
    assert first["tools"][0]["function"]["name"] == "get_current_weather" and first["tool_choice"] == "auto"
    assert set(first["tools"][0]["function"]["parameters"]["properties"]) == {"location", "unit"}
    assert second["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_abc", "type": "function", "function": {
            "name": "get_current_weather", "arguments": '{"location": "Boston, MA"}'}}]},
        {"role": "tool", "tool_call_id": "call_abc",
         "content": '{"location": "Boston, MA", "temperature": "22", "unit": "celsius", "forecast": "sunny"}'},
    ]
