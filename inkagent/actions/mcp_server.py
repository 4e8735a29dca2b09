"""inkagent's actions as an MCP server, for any MCP client (IDEs, desktop assistants, other agents).

`build_server(executor)` registers each API of an `ActionExecutor` as an MCP tool with inkagent's own
JSON Schema and description, through the SDK's low-level `Server` (the schemas are not rebuilt from
Python signatures). A call runs through the executor, so arguments are validated, limits hold and a
failing tool becomes a result with `is_error` set; its images go back as image content.
`serve_stdio()` and `serve_http()` run such a server; `inkagent mcp serve CONFIG` is the command.
"""

from __future__ import annotations

import base64
import logging
import mimetypes
from pathlib import Path
from typing import Any

from .. import __version__
from ..schema import ActionResult, ToolCall
from .executor import ActionExecutor

logger = logging.getLogger(__name__)


def build_server(executor: ActionExecutor, name: str = "inkagent", instructions: str | None = None) -> Any:
    """An `mcp.server.lowlevel.Server` offering the executor's APIs as tools (`tools/list`, `tools/call`)."""
    import anyio
    import mcp_types as types
    from mcp import MCPError
    from mcp.server.lowlevel import Server

    def tools() -> dict[str, Any]:
        return {spec.name: spec for spec in executor.specs()}

    async def list_tools(ctx: Any, params: Any) -> Any:
        return types.ListToolsResult(
            tools=[
                types.Tool(name=spec.name, description=spec.description or None, input_schema=spec.parameters)
                for spec in tools().values()
            ]
        )

    async def call_tool(ctx: Any, params: Any) -> Any:
        if params.name not in tools():
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"Unknown tool '{params.name}'. Available tools: {', '.join(tools()) or '(none)'}.",
            )
        call = ToolCall(name=params.name, arguments=dict(params.arguments or {}))
        # on notifications/cancelled the wait ends at once; the executor's own time limit ends the call
        result = await anyio.to_thread.run_sync(executor.run, call, abandon_on_cancel=True)
        return to_call_tool_result(result)

    def input_schema(tool_name: str) -> dict[str, Any] | None:
        spec = tools().get(tool_name)
        return None if spec is None else spec.parameters

    return Server(
        name,
        version=__version__,
        instructions=instructions,
        get_tool_input_schema=input_schema,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def to_call_tool_result(result: ActionResult) -> Any:
    """An inkagent `ActionResult` as an MCP `CallToolResult`: text, then images (other files by path)."""
    import mcp_types as types

    if not result.ok:
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=result.error or "")], is_error=True
        )
    content: list[Any] = []
    notes: list[str] = []
    for file in result.files:
        mime_type = mimetypes.guess_type(file)[0] or ""
        path = Path(file)
        if mime_type.startswith("image/") and path.is_file():
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            content.append(types.ImageContent(type="image", data=data, mime_type=mime_type))
        else:
            notes.append(f"[file]({file})")
    text = "\n".join([result.output, *notes]) if notes else result.output
    if text or not content:
        content.insert(0, types.TextContent(type="text", text=text))
    return types.CallToolResult(content=content, is_error=False)


async def serve_stdio(server: Any) -> None:
    """Serve over this process's stdin/stdout until the client closes them."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def serve_http(server: Any, host: str, port: int, on_ready: Any = None) -> None:
    """Serve streamable HTTP at `http://host:port/mcp`; `on_ready(url)` is called once it listens
    (port 0 picks a free port)."""
    import socket

    import anyio
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    app = server.streamable_http_app(host=host)
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: uv.serve(sockets=[sock]))
        while not uv.started:
            if uv.should_exit:
                return
            await anyio.sleep(0.02)
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        if on_ready is not None:
            on_ready(f"http://{shown}:{bound}/mcp")
