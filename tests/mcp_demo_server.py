"""An MCP server for the tests, built on the official SDK's `MCPServer`.

`python mcp_demo_server.py` serves over stdio; `python mcp_demo_server.py --http` serves streamable HTTP
on a free loopback port and prints `PORT <n>` once it listens. `DEMO_MARKS` names a directory where
the server leaves marks the tests read (its pid, a cancelled call); without it, it leaves none.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import sys
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image
from mcp_types import EmbeddedResource, TextResourceContents

# a 2x1 PNG: one red and one blue pixel
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAIAAAB7QOjdAAAAD0lEQVR4nGP4z8DAwPAfAAcAAf9+CLHQAAAAAElFTkSuQmCC"
)
MARKS = Path(os.environ["DEMO_MARKS"]) if os.environ.get("DEMO_MARKS") else None
server = MCPServer("demo", instructions="Tools for the inkagent tests.")


def mark(name: str, text: str) -> None:
    if MARKS is not None:
        (MARKS / name).write_text(text)


@server.tool()
def shout(text: str, times: int = 1) -> str:
    """Upper-case a text, repeated.

    Args:
        text: what to shout
        times: how many times
    """
    return " ".join([text.upper()] * times)


@server.tool()
def picture() -> Image:
    """Draw a tiny picture."""
    return Image(data=PNG, format="png")


@server.tool()
def fail(reason: str) -> str:
    """Always fails."""
    raise ToolError(f"refused: {reason}")


@server.tool()
async def slow(seconds: float) -> str:
    """Wait, then answer."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        mark("cancelled", "slow")
        raise
    return "slept"


@server.tool()
def note() -> list[EmbeddedResource]:
    """Return a document as an embedded resource."""
    return [EmbeddedResource(type="resource", resource=TextResourceContents(uri="memo://1", text="the memo"))]


@server.tool()
def crash() -> str:
    """Exit the server in the middle of the call."""
    os._exit(3)


@server.tool()
async def grow(ctx: Context) -> str:
    """Add a tool named `extra` and announce the new tool list."""

    @server.tool()
    def extra() -> str:
        """A tool that appeared later."""
        return "extra!"

    await ctx.session.send_tool_list_changed()
    return "grown"


@server.tool()
def whoami(ctx: Context) -> str:
    """Whether the HTTP request carried the Authorization header the server expects."""
    request = ctx.request_context.request  # the HTTP request (starlette); None over stdio
    headers = {key.lower(): value for key, value in request.headers.items()} if request is not None else {}
    expected = os.environ.get("DEMO_EXPECTED_AUTH")
    return "authorized" if expected and headers.get("authorization") == expected else "anonymous"


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


def serve_http() -> None:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(app, log_level="warning")
    uv = uvicorn.Server(config)

    async def main() -> None:
        task = asyncio.ensure_future(uv.serve(sockets=[sock]))
        while not uv.started:
            await asyncio.sleep(0.01)
        print(f"PORT {sock.getsockname()[1]}", flush=True)
        await task

    asyncio.run(main())


if __name__ == "__main__":
    mark("pid", str(os.getpid()))
    if "--http" in sys.argv:
        serve_http()
    else:
        server.run()
