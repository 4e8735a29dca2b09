"""The OpenAI function-calling guide's weather flow through `inkagent run`, against a loopback server that
speaks the documented streamed chat-completions format; and the same task on all four protocols.

The server answers `POST /v1/chat/completions` with scripted event streams (streamed `tool_calls` deltas,
then a final answer) and keeps every request; `GET /geo` and `GET /meteo` replay the recorded Open-Meteo
responses of tests/fixtures/weather for the built-in `Weather` action.
"""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from conftest import FIXTURES, run_cli

TOOLS_PY = '''
import json
from inkagent.actions import tool


@tool
def get_current_weather(location: str, unit: str = "celsius") -> str:
    """Get the current weather in a given location.

    Args:
        location: the city and state, e.g. San Francisco, CA
        unit: celsius or fahrenheit
    """
    return json.dumps({"location": location, "temperature": "22", "unit": unit, "forecast": "sunny"})
'''
TASK = "What's the weather like in Boston?"
ANSWER = "It is sunny and 22 °C in Boston."
OUTPUT = '{"location": "Boston, MA", "temperature": "22", "unit": "celsius", "forecast": "sunny"}'


def sse(*deltas: dict) -> bytes:
    """An event stream of `chat.completion.chunk`s with these deltas, `[DONE]` last."""
    chunks = [{"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-x",
               "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
    chunks[-1]["choices"][0]["finish_reason"] = "tool_calls" if "tool_calls" in deltas[-1] else "stop"
    return b"".join(f"data: {json.dumps(c, ensure_ascii=False)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


def tool_call_stream(call_id: str, name: str, arguments: str) -> bytes:
    """The model calling `name`: the id and name first, the arguments in fragments (as servers stream them)."""
    head = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    cut = len(arguments) // 2
    return sse({"role": "assistant", "content": None}, {"tool_calls": [head]},
               {"tool_calls": [{"index": 0, "function": {"arguments": arguments[:cut]}}]},
               {"tool_calls": [{"index": 0, "function": {"arguments": arguments[cut:]}}]})


class Server:
    """A loopback OpenAI-compatible chat server (answers in turn) and recorded Open-Meteo endpoints."""

    def __init__(self, *answers: bytes) -> None:
        self.answers, self.requests = list(answers), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802  (http.server's naming)
                outer.requests.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                body = outer.answers[min(len(outer.requests), len(outer.answers)) - 1]
                self._send(body, "text/event-stream")

            def do_GET(self):  # noqa: N802
                url = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/geo" and params.get("name") == "上海":
                    name = "geocode_shanghai_zh.json"
                elif url.path == "/meteo" and params.get("latitude") == "31.22222" and "current" in params:
                    name = "current_shanghai_metric.json"
                else:
                    self.send_error(404)
                    return
                self._send((FIXTURES / "weather" / name).read_bytes(), "application/json")

            def _send(self, body: bytes, content_type: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def server() -> Iterator:
    started: list[Server] = []

    def start(*answers: bytes) -> Server:
        started.append(Server(*answers))
        return started[-1]

    yield start
    for one in started:
        one.httpd.shutdown()
        one.httpd.server_close()


def run_config(tmp_path, config: str, tools: str = TOOLS_PY) -> dict:
    (tmp_path / "tools.py").write_text(tools)
    (tmp_path / "agent.yaml").write_text(textwrap.dedent(config))
    proc = run_cli("run", str(tmp_path / "agent.yaml"), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def openai_config(base_url: str, actions: str) -> str:
    return f"""
        llm: {{type: OpenAICompatible, model: gpt-x, base_url: "{base_url}/v1", mode: chat}}
        agent: {{protocol: openai, max_turn: 4}}
        actions: {actions}
        task: "{TASK}"
        """


def test_function_calling_guide_weather_flow_through_inkagent_run(tmp_path, server):
    srv = server(tool_call_stream("call_abc", "get_current_weather", '{"location": "Boston, MA"}'),
                 sse({"role": "assistant", "content": ""}, {"content": "It is sunny and 22 °C"}, {"content": " in Boston."}))

    result = run_config(tmp_path, openai_config(srv.url, "[./tools.py:get_current_weather]"))

    assert result["answer"] == ANSWER and result["state"] == "answered"
    assert [(c["name"], c["arguments"], c["output"]) for c in result["tool_calls"]] == [
        ("get_current_weather", {"location": "Boston, MA"}, OUTPUT)]
    first, second = srv.requests
    assert first["stream"] is True and first["tool_choice"] == "auto"
    assert first["messages"] == [{"role": "user", "content": TASK}] and "stop" not in first  # no InternLM2 defaults
    function = first["tools"][0]["function"]
    assert function["name"] == "get_current_weather" and set(function["parameters"]["properties"]) == {"location", "unit"}
    assert second["messages"] == [
        {"role": "user", "content": TASK},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_abc", "type": "function", "function": {
            "name": "get_current_weather", "arguments": '{"location": "Boston, MA"}'}}]},
        {"role": "tool", "tool_call_id": "call_abc", "content": OUTPUT},
    ]


def test_builtin_weather_action_with_its_dotted_name_mapped(tmp_path, server):
    srv = server(tool_call_stream("call_w1", "Weather_current", '{"city": "上海"}'),
                 sse({"content": "上海现在多云。"}))
    weather = f'[{{type: Weather, geocoding_url: "{srv.url}/geo", forecast_url: "{srv.url}/meteo"}}]'

    result = run_config(tmp_path, openai_config(srv.url, weather))

    assert result["answer"] == "上海现在多云。"
    [call] = result["tool_calls"]
    assert call["name"] == "Weather.current" and call["arguments"] == {"city": "上海"} and call["ok"]
    report = json.loads(call["output"])
    assert "上海" in json.dumps(report, ensure_ascii=False)
    names = [t["function"]["name"] for t in srv.requests[0]["tools"]]
    assert names == ["Weather_current", "Weather_forecast"]
    assistant, tool_message = srv.requests[1]["messages"][1:]
    assert assistant["tool_calls"][0]["function"] == {"name": "Weather_current", "arguments": '{"city": "上海"}'}
    assert tool_message == {"role": "tool", "tool_call_id": "call_w1", "content": call["output"]}


# -- same agent, same task, four protocols -----------------------------------------------------------
CALL_ARGS = {"location": "Boston, MA"}
TEXT_SCRIPTS = {
    "internlm2": ["Let me check.<|action_start|><|plugin|>\n"
                  + json.dumps({"name": "get_current_weather", "parameters": CALL_ARGS}) + "<|action_end|>\n<|im_end|>",
                  ANSWER + "<|im_end|>"],
    "hermes": ["Let me check.\n<tool_call>\n" + json.dumps({"name": "get_current_weather", "arguments": CALL_ARGS})
               + "\n</tool_call><|im_end|>", ANSWER + "<|im_end|>"],
    "react": [f"Thought: Let me check.\nAction: get_current_weather\nAction Input: {json.dumps(CALL_ARGS)}\n",
              f"Thought: I know it.\nFinal Answer: {ANSWER}"],
}


@pytest.mark.parametrize("protocol", ["internlm2", "hermes", "react", "openai"])
def test_same_task_same_results_on_each_protocol(tmp_path, server, protocol):
    if protocol == "openai":
        srv = server(tool_call_stream("call_1", "get_current_weather", json.dumps(CALL_ARGS)), sse({"content": ANSWER}))
        config = openai_config(srv.url, "[./tools.py:get_current_weather]")
    else:
        config = f"""
            llm: {{type: ScriptedLLM, responses: {json.dumps(TEXT_SCRIPTS[protocol])}}}
            agent: {{protocol: {protocol}, max_turn: 4, language: en}}
            actions: [./tools.py:get_current_weather]
            task: "{TASK}"
            """

    result = run_config(tmp_path, config)

    assert (result["answer"], result["state"]) == (ANSWER, "answered")
    assert [(c["name"], c["arguments"], c["output"]) for c in result["tool_calls"]] == [
        ("get_current_weather", CALL_ARGS, OUTPUT)]


def test_openai_protocol_with_a_text_backend_is_a_config_error(tmp_path):
    (tmp_path / "agent.yaml").write_text("llm: {type: ScriptedLLM, responses: [hi]}\nagent: {protocol: openai}\ntask: hi\n")
    proc = run_cli("run", str(tmp_path / "agent.yaml"))
    assert proc.returncode == 2
    assert "agent.yaml: agent.protocol:" in proc.stderr and "tool_calls" in proc.stderr
    assert "Traceback" not in proc.stderr
