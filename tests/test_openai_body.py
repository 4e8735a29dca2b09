"""Chat request bodies made from per-message JSON kept across requests (`inkagent.llms.openai_body`).

A loopback server records the raw bodies `OpenAICompatible(mode="chat")` sends for a growing
conversation (tool calls, tool results, lagent environment notes, unicode, an image as a data URL),
edited in place and replaced on the way; each body must be byte for byte what httpx makes of the
whole payload encoded at once (`json=`), which is how every request was sent before.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from inkagent.llms import OpenAICompatible
from inkagent.llms.openai_body import FragmentCache, encode_body, to_openai_message

ANSWER = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "好的"}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
TOOLS = [
    {"type": "function", "function": {"name": "Weather_query", "description": "Weather of a city — °C",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
    {"type": "function", "function": {"name": "ArxivSearch", "description": "papers",
                                      "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}},
]
PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture
def server() -> Iterator[tuple[str, list[bytes]]]:
    """A chat-completions server that records each request's raw body and answers `ANSWER`."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802  (http.server's naming)
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            answer = json.dumps(ANSWER).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", bodies
    httpd.shutdown()
    httpd.server_close()


def whole_body(llm: OpenAICompatible, conversation: list[dict], **gen_params) -> bytes:
    """The body as it was made before: the whole payload (fresh message dicts) encoded by httpx."""
    payload, _ = llm._payload(conversation, gen_params, stream=False)
    payload["messages"] = llm.to_messages(conversation)
    if "tools" in payload:
        payload["tools"] = list(gen_params["tools"])
    return httpx.Request("POST", "http://localhost/", json=payload).read()


def conversation() -> list[dict]:
    call = {"id": "call_1", "type": "function",
            "function": {"name": "Weather_query", "arguments": json.dumps({"city": "北京"}, ensure_ascii=False)}}
    return [
        {"role": "system", "content": "You answer in the user's language. \"Quotes\", back\\slash, tab\t, NUL \x00."},
        {"role": "user", "content": [{"type": "text", "text": "这张图里是哪里？天气如何 🌧"},
                                     {"type": "image_url", "image_url": {"url": PIXEL}}]},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "environment", "content": json.dumps({"temperature": 22.5, "sky": "晴"}), "name": "plugin",
         "tool_call_id": "call_1"},
        {"role": "environment", "content": "a note from the environment", "name": "plugin"},
        {"role": "assistant", "content": "北京，22.5 °C。", "name": "helper"},
    ]


def test_bodies_of_a_growing_edited_conversation_are_what_whole_encoding_gives(server):
    base_url, bodies = server
    llm = OpenAICompatible(model="m", base_url=base_url, mode="chat", max_new_tokens=64)
    history = conversation()[:2]
    expected = []

    def send() -> None:
        expected.append(whole_body(llm, history, tools=TOOLS, tool_choice="auto"))
        assert llm.complete(history, tools=TOOLS, tool_choice="auto").text == "好的"

    send()
    for message in conversation()[2:]:  # the session grows a message at a time
        history.append(message)
        send()
    history[1]["content"][1]["image_url"]["url"] = PIXEL.replace("iVBOR", "iVBOS")  # edits in place, deep ones too
    history[2]["tool_calls"][0]["function"]["arguments"] = '{"city": "上海"}'
    history[3]["content"] = "changed"
    send()
    history[5] = {"role": "assistant", "content": "replaced"}  # a message replaced by another
    history.append({"role": "user", "content": "and tomorrow?"})
    send()
    del history[3:]  # a cut, then a different continuation
    history.append({"role": "environment", "content": "no such call", "tool_call_id": "call_9"})
    send()

    assert len(bodies) == len(expected) == 8
    for sent, whole in zip(bodies, expected, strict=True):
        assert sent == whole
    last = json.loads(bodies[-1])
    assert [m["role"] for m in last["messages"]] == ["system", "user", "assistant", "tool"]
    assert last["tools"] == TOOLS and last["tool_choice"] == "auto"
    urls = [json.loads(body)["messages"][1]["content"][1]["image_url"]["url"] for body in bodies]
    assert urls[4] == PIXEL and urls[5].startswith("data:image/png;base64,iVBOS")


def test_streamed_requests_and_extra_fields_keep_the_same_body(server):
    base_url, bodies = server
    llm = OpenAICompatible(model="m", base_url=base_url, mode="chat", extra_body={"top_k": 5, "messages": None})
    history = conversation()
    payload, _ = llm._payload(history, {}, stream=False)
    assert payload["messages"] is None  # extra_body overrides a field: it is sent as given
    assert encode_body(payload) == httpx.Request("POST", "http://x/", json=payload).read()
    llm.extra_body = {"top_k": 5}
    llm.complete(history)
    llm.complete(history)
    assert bodies[0] == bodies[1] == whole_body(llm, history)


def test_each_message_is_encoded_once_and_an_edit_is_seen():
    cache = FragmentCache(to_openai_message)
    history = conversation()
    first = cache.encode(history)
    again = cache.encode([*history, {"role": "user", "content": "more"}])
    assert all(a is b for a, b in zip(first.fragments, again.fragments[:-1], strict=True))  # the same bytes, not made again
    assert list(again) == [to_openai_message(m) for m in history] + [{"role": "user", "content": "more"}]
    history[2]["tool_calls"].append({"id": "call_2", "type": "function", "function": {"name": "x", "arguments": "{}"}})
    edited = cache.encode(history)
    assert edited.fragments[2] is not first.fragments[2] and b"call_2" in edited.fragments[2]
    assert edited.fragments[3] is first.fragments[3]
    assert cache.encode(iter(history)).fragments == edited.fragments  # any iterable of messages


def test_a_full_cache_retires_old_messages_and_stays_right():
    cache = FragmentCache(to_openai_message, max_bytes=4096)
    history: list[dict] = []
    for n in range(300):
        history.append({"role": "user" if n % 2 else "assistant", "content": f"message {n} " + "x" * (n % 50)})
        encoded = cache.encode(history)
        assert b"[" + b",".join(encoded.fragments) + b"]" == json.dumps(
            [to_openai_message(m) for m in history], ensure_ascii=False, separators=(",", ":")).encode()
    assert cache._new_bytes <= 4096


def test_values_json_cannot_carry_fail_as_before():
    cache = FragmentCache(to_openai_message)
    with pytest.raises(ValueError):  # allow_nan=False, as httpx encodes
        cache.encode([{"role": "user", "content": "x", "name": math.nan}])
    with pytest.raises(TypeError):
        cache.encode([{"role": "user", "content": object()}])
    with pytest.raises(UnicodeEncodeError):
        cache.encode([{"role": "user", "content": "lone \ud800 surrogate"}])
