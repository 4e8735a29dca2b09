"""`inkagent mcp serve`: a config's actions offered to MCP clients, checked with the official SDK's client."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

TOOLS = '''\
from typing import Literal

from inkagent.actions import Action, api, tool
from inkagent.schema import ActionResult


@tool
def convert(amount: float, currency: Literal["EUR", "USD"] = "EUR") -> str:
    """Convert yuan to another currency.

    Args:
        amount: the amount in yuan
        currency: the target currency
    """
    rate = {"EUR": 0.125, "USD": 0.14}[currency]
    return f"{amount * rate:.2f} {currency}"


class Notebook(Action):
    """A notebook of lines."""

    def __init__(self):
        self.lines = []

    @api
    def write(self, line: str) -> str:
        """Add a line.

        Args:
            line: the text to add
        """
        self.lines.append(line)
        return f"{len(self.lines)} lines"

    @api
    def read(self, last: int = 1) -> list[str]:
        """The last lines.

        Args:
            last: how many
        """
        if last < 1:
            raise ValueError("last must be at least 1")
        return self.lines[-last:]

    @api
    def sketch(self, directory: str) -> ActionResult:
        """Save a tiny picture and return it."""
        from pathlib import Path
        from PIL import Image
        path = Path(directory) / "sketch.png"
        Image.new("RGB", (3, 2), (0, 128, 0)).save(path)
        return ActionResult(name="sketch", output="a green sketch", files=[str(path)])
'''


@pytest.fixture
def config(tmp_path) -> Path:
    (tmp_path / "my_tools.py").write_text(TOOLS)
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent("""\
        llm: {type: ScriptedLLM}
        actions: [./my_tools.py:convert, ./my_tools.py:Notebook]
        """))
    return path


async def exercise(server, tmp_path: Path) -> dict:
    from mcp import Client, MCPError

    async with Client(server) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        converted = await client.call_tool("convert", {"amount": 80, "currency": "USD"})
        wrote = await client.call_tool("Notebook.write", {"line": "hello"})
        read = await client.call_tool("Notebook.read", {"last": 1})
        refused = await client.call_tool("Notebook.read", {"last": 0})
        invalid = await client.call_tool("convert", {"amount": "lots"})
        sketch = await client.call_tool("Notebook.sketch", {"directory": str(tmp_path)})
        try:
            await client.call_tool("nope", {})
            unknown = None
        except MCPError as exc:  # a protocol error, as the MCP spec asks for an unknown tool
            unknown = exc.message
    return {"listed": listed, "converted": converted, "wrote": wrote, "read": read, "refused": refused,
            "invalid": invalid, "sketch": sketch, "unknown": unknown}


def check(outcome: dict, config: Path, extra: frozenset = frozenset()) -> None:
    actions = json.loads(run_cli("actions", "--config", str(config), "--json").stdout)
    expected = {api["name"]: api for entry in actions for api in entry["apis"]}
    listed = outcome["listed"]
    assert set(listed) == set(expected) == {"convert", "Notebook.write", "Notebook.read", "Notebook.sketch", *extra}
    for name, api in expected.items():  # inkagent's own schemas, unchanged
        assert listed[name].input_schema == api["parameters"]
        assert listed[name].description == api["description"]
    assert outcome["converted"].content[0].text == "11.20 USD" and not outcome["converted"].is_error
    assert outcome["wrote"].content[0].text == "1 lines"
    assert json.loads(outcome["read"].content[0].text) == ["hello"]
    assert outcome["refused"].is_error and "last must be at least 1" in outcome["refused"].content[0].text
    assert outcome["invalid"].is_error and "amount" in outcome["invalid"].content[0].text
    assert "Unknown tool 'nope'" in outcome["unknown"] and "Notebook.write" in outcome["unknown"]
    text, image = outcome["sketch"].content
    assert text.text == "a green sketch" and image.mime_type == "image/png"
    assert base64.b64decode(image.data)[:8] == b"\x89PNG\r\n\x1a\n"


def test_serve_over_stdio_answers_the_sdk_client(config, tmp_path):
    from mcp import StdioServerParameters

    params = StdioServerParameters(command=sys.executable, args=["-m", "inkagent", "mcp", "serve", str(config)],
                                   env={"PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT))}, cwd=str(ROOT))
    check(asyncio.run(exercise(params, tmp_path)), config)


def test_serve_over_http_answers_the_sdk_client(config, tmp_path):
    """Over HTTP, with the interpreter enabled in the config: it is served too (stdio: it is not)."""
    config.write_text(config.read_text() + "interpreter: {timeout_s: 20}\n")
    proc = subprocess.Popen([sys.executable, "-m", "inkagent", "mcp", "serve", str(config), "--http", "127.0.0.1:0"],
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stderr.readline()  # "serving N tools over MCP at http://127.0.0.1:PORT/mcp"
        assert "over MCP at http://127.0.0.1:" in line, line
        url = line.rsplit(" ", 1)[1].strip()
        check(asyncio.run(exercise(url, tmp_path)), config, frozenset({"IPythonInterpreter"}))
    finally:
        proc.terminate()
        proc.wait(30)
        proc.stderr.close()


def test_serve_refuses_a_bad_address_and_a_bad_config(config, tmp_path):
    proc = run_cli("mcp", "serve", str(config), "--http", "nowhere")
    assert proc.returncode == 2 and "HOST:PORT" in proc.stderr
    proc = run_cli("mcp", "serve", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2 and "missing.yaml" in proc.stderr


def test_the_cli_and_configs_import_no_mcp_until_a_server_is_used(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("llm: {type: ScriptedLLM}\nmcp_servers: [{name: files, command: [my-server]}]\n")
    code = ("import sys, inkagent.cli as c; c.build_parser().format_help(); "
            "from inkagent.runners.config import load_config; load_config(sys.argv[1]); "
            "from inkagent.actions import MCPToolset; MCPToolset(command=['x']); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'mcp', 'mcp_types', 'jsonschema', 'httpx2'}))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
