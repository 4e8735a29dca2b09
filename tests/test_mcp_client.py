"""MCP servers' tools as inkagent actions: a real SDK server (tests/mcp_demo_server.py) over stdio and
streamable HTTP, called by a scripted InternLM2 agent through `inkagent run` and through the Python API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest
import yaml
from conftest import run_cli
from PIL import Image

from inkagent.actions import ActionExecutor
from inkagent.actions.mcp_client import MCPToolset
from inkagent.schema import ToolCall

SERVER = Path(__file__).parent / "mcp_demo_server.py"
SECRET = "Bearer s3cret-token"


def call(name: str, **arguments) -> str:
    payload = json.dumps({"name": name, "parameters": arguments})
    return f"Calling {name}.<|action_start|><|plugin|>\n{payload}<|action_end|>\n<|im_end|>"


@pytest.fixture
def marks(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "marks"
    path.mkdir()
    monkeypatch.setenv("DEMO_MARKS", str(path))
    return path


@pytest.fixture
def http_server(marks):
    """The demo server on a free loopback port, as its own process; yields its /mcp URL."""
    env = {**os.environ, "DEMO_MARKS": str(marks), "DEMO_EXPECTED_AUTH": SECRET}
    proc = subprocess.Popen([sys.executable, str(SERVER), "--http"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()  # "PORT n" once it listens
        assert line.startswith("PORT "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}/mcp"
    finally:
        proc.kill()
        proc.wait()


def server_entry(transport: str, marks: Path, url: str | None) -> dict:
    if transport == "stdio":
        return {"name": "demo", "command": [sys.executable, str(SERVER)], "env": {"DEMO_MARKS": str(marks)},
                "timeout_s": 2}
    return {"name": "demo", "url": url, "timeout_s": 2, "headers_env": {"Authorization": "DEMO_TOKEN"}}


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_inkagent_run_calls_text_image_failing_and_slow_tools(transport, tmp_path, marks, request):
    url = request.getfixturevalue("http_server") if transport == "http" else None
    config = {
        "llm": {"type": "ScriptedLLM", "responses": [
            call("demo.shout", text="hello", times=2),
            call("demo.picture"),
            call("demo.fail", reason="no"),
            call("demo.slow", seconds=30),
            call("demo.note"),
            call("demo.whoami"),
            "Done.<|im_end|>",
        ]},
        "agent": {"max_turn": 8},
        "mcp_servers": [server_entry(transport, marks, url) | {"files_dir": "figures"}],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    trace = tmp_path / "t.jsonl"
    proc = run_cli("run", str(path), "--task", "use the tools", "--json", "--trace", str(trace),
                   env={"DEMO_TOKEN": SECRET})
    assert proc.returncode == 0, proc.stderr
    calls = json.loads(proc.stdout)["tool_calls"]
    assert [c["name"] for c in calls] == ["demo.shout", "demo.picture", "demo.fail", "demo.slow", "demo.note",
                                          "demo.whoami"]
    shout, picture, fail, slow, note, whoami = calls
    assert shout["ok"] and shout["output"] == "HELLO HELLO"
    # the image is a file next to the config (files_dir), and the model is told where
    image_path = tmp_path / "figures" / "demo.picture-001.png"
    assert picture["ok"] and picture["output"] == f"[image]({image_path})"
    with Image.open(image_path) as image:
        assert image.size == (2, 1) and image.convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    assert not fail["ok"] and "refused: no" in fail["output"]
    assert not slow["ok"] and "time limit of 2 s" in slow["output"] and "notifications/cancelled" in slow["output"]
    assert (marks / "cancelled").read_text() == "slow"  # the server stopped the call it was told to
    assert note["ok"] and "the memo" in note["output"] and "memo://1" in note["output"]
    # over HTTP the header came from the variable named in headers_env; the secret is nowhere on disk
    assert whoami["output"] == ("authorized" if transport == "http" else "anonymous")
    assert SECRET not in path.read_text() + trace.read_text() + proc.stdout + proc.stderr
    if transport == "stdio":  # the agent started the server and stopped it
        assert not psutil.pid_exists(int((marks / "pid").read_text()))


def test_arguments_are_checked_against_the_servers_schema_before_the_call(marks):
    with MCPToolset(command=[sys.executable, str(SERVER)], name="demo") as toolset:
        executor = ActionExecutor([toolset])
        spec = {s.name: s for s in executor.specs()}["demo.shout"]
        assert spec.description.startswith("Upper-case a text")
        assert spec.parameters["required"] == ["text"] and spec.parameters["properties"]["times"]["type"] == "integer"
        result = executor.run(ToolCall(name="demo.shout", arguments={"times": "many"}))
        assert result.error_type == "invalid_arguments"
        assert "missing required parameter 'text'" in result.error and "'times'" in result.error
        assert "text (string, required)" in result.error


def test_a_dead_server_is_restarted_and_a_call_in_flight_is_not_repeated(marks):
    with MCPToolset(command=[sys.executable, str(SERVER)], name="demo",
                    env={"DEMO_MARKS": str(marks)}) as toolset:
        executor = ActionExecutor([toolset])
        first = int(executor.run(ToolCall(name="demo.pid")).output)
        crashed = executor.run(ToolCall(name="demo.crash"))
        assert crashed.error_type == "tool_error", crashed
        assert "stopped during the call to demo.crash" in crashed.error and "not repeated" in crashed.error, crashed
        second = executor.run(ToolCall(name="demo.pid"))
        assert second.ok, second
        second = int(second.output)
        assert second != first and not psutil.pid_exists(first)
        psutil.Process(second).kill()  # dies between calls: the next call was never sent, so it runs
        psutil.Process(second).wait(10)
        result = executor.run(ToolCall(name="demo.shout", arguments={"text": "again"}))
        assert result.ok and result.output == "AGAIN", result


def test_tools_list_changed_refreshes_the_tool_list_between_turns(marks):
    from inkagent.agents import Internlm2Agent
    from inkagent.llms import ScriptedLLM

    llm = ScriptedLLM([call("demo.grow"), call("demo.extra"), "Done.<|im_end|>"])
    with MCPToolset(command=[sys.executable, str(SERVER)], name="demo") as toolset:
        agent = Internlm2Agent(llm=llm, plugin_executor=[toolset], max_turn=4)
        result = agent.chat("grow")
        assert "demo.extra" not in llm.prompts[0] and "demo.extra" in llm.prompts[1]
        assert [a.result[0]["content"] for a in result.actions] == ["grown", "extra!"]


def test_the_server_dies_with_the_agent_even_after_sigkill(marks, tmp_path):
    script = tmp_path / "agent.py"
    script.write_text(textwrap.dedent(f"""\
        import sys, time
        from inkagent.actions import ActionExecutor
        from inkagent.actions.mcp_client import MCPToolset
        server = MCPToolset(command=[sys.executable, {str(SERVER)!r}], name="demo", env={{"DEMO_MARKS": {str(marks)!r}}})
        executor = ActionExecutor([server])
        print("ready", flush=True)
        time.sleep(600)
        """))
    agent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert agent.stdout.readline().strip() == "ready"
        family = psutil.Process(agent.pid).children(recursive=True)  # the guard and the server
        assert int((marks / "pid").read_text()) in [p.pid for p in family]
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait()
        agent.stdout.close()
    gone, alive = psutil.wait_procs(family, timeout=20)
    assert not alive


def test_config_errors_name_the_server_entry(tmp_path):
    from inkagent.errors import ConfigError
    from inkagent.runners.config import build_agent, load_config

    path = tmp_path / "config.yaml"

    def error_of(servers) -> str:
        path.write_text(yaml.safe_dump({"llm": {"type": "ScriptedLLM"}, "mcp_servers": servers}))
        with pytest.raises(ConfigError) as caught:
            build_agent(load_config(path))
        return str(caught.value)

    message = error_of([{"name": "a", "command": ["x"], "url": "http://127.0.0.1:1/mcp"}])
    assert f"{path}: mcp_servers[0]" in message and "either command" in message
    assert "two MCP servers are named 'a'" in error_of([{"name": "a", "command": ["x"]}, {"name": "a", "command": ["y"]}])
    message = error_of([{"name": "s", "url": "http://127.0.0.1:1/mcp", "headers_env": {"Authorization": "NO_SUCH_VAR"}}])
    assert "mcp_servers[0].headers_env" in message and "NO_SUCH_VAR" in message
    # a server that cannot start: exit code 2 and its own words, no traceback
    path.write_text(yaml.safe_dump({"llm": {"type": "ScriptedLLM"}, "mcp_servers": [
        {"name": "gone", "command": [sys.executable, "-c", "import sys; sys.exit('no such server')"]}]}))
    proc = run_cli("run", str(path), "--task", "x")
    assert proc.returncode == 2 and "mcp_servers[0]" in proc.stderr and "no such server" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_actions_command_lists_the_servers_tools(tmp_path, marks):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"llm": {"type": "ScriptedLLM"}, "actions": ["Weather"],
                                    "mcp_servers": [{"name": "demo", "command": [sys.executable, str(SERVER)]}]}))
    proc = run_cli("actions", "--config", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    entries = {e["name"]: e for e in json.loads(proc.stdout)}
    assert "Weather" in entries and "(MCP server)" in entries["demo"]["origin"]
    assert entries["demo"]["description"] == "Tools for the inkagent tests."  # the server's instructions
    apis = {api["name"]: api for api in entries["demo"]["apis"]}
    assert {"demo.shout", "demo.picture", "demo.fail", "demo.slow"} <= set(apis)
    assert apis["demo.shout"]["parameters"]["properties"]["text"]["type"] == "string"
    text = run_cli("actions", "--config", str(path)).stdout
    assert "demo.shout(text: string, times: integer = 1)" in text


def test_chat_tools_command_and_agent_tools_show_the_servers_tools(tmp_path, marks):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "llm": {"type": "ScriptedLLM", "responses": ["Hi.<|im_end|>"]},
        "mcp_servers": [{"name": "demo", "command": [sys.executable, str(SERVER)]}],
    }))
    proc = run_cli("chat", str(path), "--trace", str(tmp_path / "t.jsonl"), input="/tools\n/exit\n")
    assert proc.returncode == 0, proc.stderr
    assert any(line.startswith("demo.shout") and "Upper-case a text" in line for line in proc.stdout.splitlines())

    from inkagent.actions.executor import agent_tools
    from inkagent.runners.config import build_agent, load_config

    with build_agent(load_config(path)) as agent:
        tools = {t["name"]: t for t in agent_tools(agent)}
    assert tools["demo.shout"]["kind"] == "mcp" and tools["demo.shout"]["source"] == "demo"
    assert tools["demo.shout"]["parameters"]["required"] == ["text"]
