"""`MCPToolset`: the tools of a Model Context Protocol server as inkagent actions.

```python
executor = ActionExecutor([MCPToolset(command=["python", "-m", "my_fs_server", "/data"], name="files"),
                           MCPToolset(url="http://127.0.0.1:9000/mcp", name="search",
                                      headers_env={"Authorization": "SEARCH_TOKEN"})])
```

Each server tool becomes the API `<name>.<tool>` (`files.read_file`), described by the server's own
description and JSON Schema (protocol: https://modelcontextprotocol.io/specification/2025-11-25/server/tools).
Arguments are checked against that schema (jsonschema) before anything is sent. A result's text, images
and embedded resources become an `ActionResult` (images and binary resources saved as files).

Built on the official `mcp` SDK (imported only when a toolset connects). The SDK is asynchronous:
each toolset runs one event loop on a thread of its own, and the thread that calls a tool hands the call
to it and waits. The connection uses the initialize handshake (protocol 2025-11-25), which every server speaks and
which carries `notifications/tools/list_changed` and `notifications/cancelled`.

This module is the action side (tools as APIs, results, configs); the session, its event loop thread and
the transports are in `mcp_connection`, the checking of arguments against a tool's schema in
`mcp_arguments`.

Lifecycle: a stdio server starts when the toolset first connects (an executor lists the tools as the
action is added, so: with the agent) and stops on `close()`. It runs under a small guard process that
kills the server's process group when the agent dies, even by SIGKILL (Linux: `PR_SET_PDEATHSIG`; other
POSIX systems: the guard polls its parent). A server that died is started again for the next call; a
call that was in flight when it died is reported as failed, never sent twice (it may have taken effect).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import json
import logging
import mimetypes
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import ActionError, ConfigError
from ..schema import ActionResult, ToolSpec
from .base import Action, BoundApi
from .mcp_arguments import _line_error, _schema_model, _SchemaArguments  # noqa: F401  (re-exported)
from .mcp_connection import Connection, LoopThread, http_transport, stdio_transport

logger = logging.getLogger(__name__)

_NAME_RE = re.compile(r"[A-Za-z_][\w-]*")
_IMAGE_SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp"}
_STOP_TIMEOUT_S = 10.0


class MCPToolset(Action):
    """The tools of one MCP server (stdio `command` or streamable HTTP `url`) as actions `<name>.<tool>`.

    Args:
        command: the server's command line, started as a child process speaking MCP on stdin/stdout.
        url: the server's streamable HTTP endpoint (`http://host:port/mcp`); exactly one of the two.
        name: the namespace of its tools; by default the name the server reports (letters, digits, `_`).
        env: extra environment variables of a stdio server (on top of PATH, HOME and the like).
        headers_env: HTTP headers taken from environment variables: `{"Authorization": "SEARCH_TOKEN"}`
            sends the value of `$SEARCH_TOKEN`; secrets never sit in a config file.
        headers: plain HTTP headers (no secrets: they would end up in configs and logs).
        cwd: the working directory of a stdio server.
        timeout_s: wall-clock limit of one call; past it the server gets `notifications/cancelled` and
            the model a time-out error. `None` for no limit.
        startup_timeout_s: limit for starting the server and the initialize handshake.
        files_dir: where images and binary resources of results are saved; by default a fresh
            temporary directory, kept after `close()` since results point into it.

    Raises:
        ValueError: neither or both of `command` and `url`, or a bad `name`.
        ActionError: (on first use) the server cannot be started or reached.
    """

    def __init__(
        self,
        command: Sequence[str] | None = None,
        *,
        url: str | None = None,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        headers_env: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        timeout_s: float | None = 60.0,
        startup_timeout_s: float = 30.0,
        files_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if (command is None) == (url is None):
            raise ValueError(
                "MCPToolset needs exactly one of command=[...] (stdio) or url=... (streamable HTTP)"
            )
        if command is not None and (isinstance(command, str) or not command):
            raise ValueError("command must be a non-empty list: the program and its arguments")
        if name is not None and not _NAME_RE.fullmatch(name):
            raise ValueError(f"MCP server name {name!r} must be letters, digits, '_' or '-'")
        self.command = [str(part) for part in command] if command is not None else None
        self.url = url
        self.env = dict(env or {})
        self.headers_env = dict(headers_env or {})
        self.headers = dict(headers or {})
        self.cwd = str(cwd) if cwd is not None else None
        self.timeout_s = timeout_s
        self.startup_timeout_s = startup_timeout_s
        self._name = name
        self._files_dir = Path(files_dir) if files_dir is not None else None
        self._figures = 0
        self._lock = threading.Lock()  # the tool list
        self._files_lock = threading.Lock()
        self._tools: list[Any] | None = None  # the server's `Tool`s, as last listed
        self._tools_changed = False
        self._server_info: Any = None  # what the server said about itself in the handshake
        self._instructions: str | None = None
        # runs the SDK's coroutines, and starts a stdio server
        self._loop_thread = LoopThread(lambda: f"inkagent-mcp-{self._name or 'server'}")
        self._connection: Connection | None = None
        self._connect_lock: asyncio.Lock | None = None
        self._runtime_dir: Path | None = None  # the server's log and pid files
        self._connections = 0
        self._closed = False
        missing = self._missing_env()
        if missing:  # fail early, naming the variable
            raise ActionError(missing)

    # -- what the executor reads ----------------------------------------------------------------
    @property
    def name(self) -> str:  # type: ignore[override]
        if self._name is None:
            self._ensure_listed()
            reported = getattr(self._server_info, "name", "") or "mcp"
            self._name = re.sub(r"\W", "_", reported).strip("_") or "mcp"
        return self._name

    @property
    def description(self) -> str:  # type: ignore[override]
        """The server's own description (or its instructions) once connected."""
        info = self._server_info
        told = getattr(info, "description", None) or self._instructions or getattr(info, "title", None)
        return told or f"Tools of the MCP server {self._label()}."

    @property
    def call_timeout_s(self) -> float:  # type: ignore[override]
        """None from the executor: this toolset enforces `timeout_s` itself, cancelling on the server, and
        a call then runs on the caller's thread (no hand-off to a worker before the one to the loop)."""
        return float("inf")

    @property
    def tools_changed(self) -> bool:
        """Whether the server announced a new tool list since the last `apis()` (`tools/list_changed`)."""
        return self._tools_changed

    def apis(self) -> list[BoundApi]:
        """One API per server tool, `<name>.<tool>`, with the server's description and JSON Schema."""
        if self._tools_changed:
            self._tools = None
        tools = self._ensure_listed()
        prefix = self.name
        return [self._bind(prefix, tool) for tool in tools]

    def close(self) -> None:
        """Stop the server (stdio) or end the session (HTTP), and the toolset's event loop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._loop_thread.running:
            future = asyncio.run_coroutine_threadsafe(self._disconnect(), self._loop_thread.loop())
            try:
                future.result(_STOP_TIMEOUT_S)
            except Exception:
                logger.warning("stopping MCP server %s failed", self._label(), exc_info=True)
            self._loop_thread.stop(_STOP_TIMEOUT_S)
        if self._runtime_dir is not None:
            shutil.rmtree(self._runtime_dir, ignore_errors=True)

    def __enter__(self) -> MCPToolset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MCPToolset({self._label()})"

    # -- calls (on the executor's threads) ------------------------------------------------------
    def call_tool(self, tool: str, arguments: dict[str, Any]) -> ActionResult:
        """Call one server tool (arguments already validated); a failure comes back as an error result."""
        backstop = None if self.timeout_s is None else self.timeout_s + self.startup_timeout_s + 5.0
        return self._submit(self._call(tool, arguments), backstop)

    def _ensure_listed(self) -> list[Any]:
        with self._lock:
            if self._tools is None or self._tools_changed:
                self._tools_changed = False
                try:
                    self._tools = self._submit(self._list_tools(), self.startup_timeout_s + 30.0)
                except ActionError:
                    raise
                except Exception as exc:  # an error answer, a connection lost while listing
                    raise ActionError(
                        f"listing the tools of the MCP server {self._label()} failed: {exc}"
                    ) from exc
            return self._tools

    def _submit(self, coro: Any, timeout: float | None) -> Any:
        if self._closed:
            coro.close()
            raise ActionError(f"the MCP toolset {self._label()} is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop_thread.loop())
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError as exc:  # the SDK hung past every limit of its own
            future.cancel()
            raise ActionError(f"the MCP server {self._label()} did not answer") from exc

    # -- the connection (on the toolset's loop) -------------------------------------------------
    async def _connected(self) -> Connection:
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            connection = self._connection
            if connection is not None and not connection.lost.is_set() and connection.server_alive():
                return connection
            if connection is not None:
                logger.warning("MCP server %s went away%s; connecting again", self._label(), self._log_tail())
                await connection.stop()
            self._connections += 1
            pid_file = None if self.url is not None else self._runtime() / f"server-{self._connections}.pid"
            self._connection = connection = Connection(
                self._transport(pid_file), pid_file, self._on_tools_changed
            )
            try:
                await connection.open(self.startup_timeout_s)
            except ActionError as exc:
                raise ActionError(
                    f"cannot connect to the MCP server {self._label()}: {exc}{self._log_tail()}"
                ) from exc
            self._server_info, self._instructions = connection.server_info, connection.instructions
            return connection

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.stop()

    async def _list_tools(self) -> list[Any]:
        connection = await self._connected()
        tools: list[Any] = []
        cursor = None
        while True:
            page = await connection.client.list_tools(cursor=cursor, cache_mode="bypass")
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                return tools

    async def _call(self, tool: str, arguments: dict[str, Any]) -> ActionResult:
        import anyio
        from mcp import MCPError
        from mcp_types import CONNECTION_CLOSED

        try:
            connection = await self._connected()  # a server found dead is restarted: the call was never sent
        except ActionError as exc:
            return _error(str(exc))
        label = f"{self._name or 'mcp'}.{tool}"
        try:
            with anyio.fail_after(self.timeout_s):
                result = await connection.client.call_tool(tool, arguments)
        except TimeoutError:
            return _error(
                f"{label} did not finish within its time limit of {self.timeout_s:g} s; "
                "the server was told to cancel it (notifications/cancelled).",
                "timeout",
            )
        except Exception as exc:  # an error answer, the connection lost, a transport failure
            closed = isinstance(exc, MCPError) and exc.code == CONNECTION_CLOSED
            if closed or connection.lost.is_set() or not connection.server_alive():
                return _error(self._lost_during(label))
            logger.debug("MCP call %s failed", label, exc_info=True)
            reason = str(exc) if isinstance(exc, MCPError) else f"{type(exc).__name__}: {exc}"
            return _error(f"{label} failed: {reason}")
        return self._to_result(label, result)

    def _lost_during(self, label: str) -> str:
        if self.url is not None:
            what = f"the connection to the MCP server {self._label()} was lost during the call to {label}"
            again = "It is opened again for the next call"
        else:
            what = f"the MCP server {self._label()} stopped during the call to {label}{self._log_tail()}"
            again = "It is started again for the next call"
        return f"{what}. {again}; this call was not repeated, since it may have taken effect."

    def _runtime(self) -> Path:
        if self._runtime_dir is None:
            self._runtime_dir = Path(tempfile.mkdtemp(prefix="inkagent-mcp-"))
        return self._runtime_dir

    def _transport(self, pid_file: Path | None) -> Any:
        """The SDK transport for this server (an async context manager of a stream pair)."""
        if self.url is not None:
            missing = self._missing_env()
            if missing:
                raise ActionError(missing)
            secrets = {header: os.environ[var] for header, var in self.headers_env.items()}
            return http_transport(self.url, {**self.headers, **secrets})
        assert self.command is not None and pid_file is not None
        return stdio_transport(self.command, self.env, self.cwd, pid_file, self._runtime() / "server.log")

    def _missing_env(self) -> str:
        missing = [var for var in self.headers_env.values() if var not in os.environ]
        if not missing:
            return ""
        return (
            f"environment variable {', '.join(missing)} is not set (named in headers_env of {self._label()})"
        )

    def _label(self) -> str:
        target = self.url or " ".join(self.command or [])
        return f"'{self._name}' ({target})" if self._name else f"({target})"

    def _log_tail(self, chars: int = 600) -> str:
        """`; <what a stdio server last wrote on stderr>`, to append to an error ("" for HTTP)."""
        if self.url is not None or self._runtime_dir is None:
            return ""
        try:
            text = (self._runtime_dir / "server.log").read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            text = ""
        return f"; its last output: {text[-chars:]}" if text else "; it wrote nothing to stderr"

    def _on_tools_changed(self) -> None:
        self._tools_changed = True

    # -- schemas and results --------------------------------------------------------------------
    def _bind(self, prefix: str, tool: Any) -> BoundApi:
        schema = dict(tool.input_schema or {})
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        description = tool.description or getattr(tool, "title", None) or ""
        spec = ToolSpec(name=f"{prefix}.{tool.name}", description=description, parameters=schema)
        model = _schema_model(spec.name, schema)
        fn = partial(_call_with, self, tool.name)
        return BoundApi(spec=spec, arguments_model=model, fn=fn, owner=self)

    def _to_result(self, label: str, result: Any) -> ActionResult:
        texts: list[str] = []
        files: list[str] = []
        for block in result.content:
            kind = getattr(block, "type", "")
            if kind == "text":
                texts.append(block.text)
            elif kind in ("image", "audio"):
                files.append(self._save(block.data, block.mime_type, label))
            elif kind == "resource":
                resource = block.resource
                if getattr(resource, "text", None) is not None:
                    texts.append(f"[resource {resource.uri}]\n{resource.text}")
                else:
                    path = self._save(resource.blob, resource.mime_type or "application/octet-stream", label)
                    if (resource.mime_type or "").startswith("image/"):
                        files.append(path)
                    else:
                        texts.append(f"[resource {resource.uri} saved as {path}]")
            elif kind == "resource_link":
                texts.append(f"[resource link {block.name}: {block.uri}]")
            else:
                texts.append(json.dumps(block.model_dump(mode="json", by_alias=True), ensure_ascii=False))
        if not texts and not files and result.structured_content is not None:
            texts.append(json.dumps(result.structured_content, ensure_ascii=False))
        text = "\n".join(texts)
        if result.is_error:
            return _error(f"{label} failed: {text or 'the server reported an error'}")
        return ActionResult(name=label, output=text, files=files)

    def _save(self, data: str, mime_type: str, label: str) -> str:
        """Save base64 `data` as a file named after the tool; return its path."""
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ActionError(f"{label} returned {mime_type} data that is not valid base64") from exc
        with self._files_lock:
            if self._files_dir is None:
                self._files_dir = Path(tempfile.mkdtemp(prefix="inkagent-mcp-files-"))
            self._files_dir.mkdir(parents=True, exist_ok=True)
            suffix = _IMAGE_SUFFIXES.get(mime_type) or mimetypes.guess_extension(mime_type) or ".bin"
            stem = re.sub(r"[^\w.-]", "_", label)
            while True:
                self._figures += 1
                path = self._files_dir / f"{stem}-{self._figures:03d}{suffix}"
                if not path.exists():
                    break
            path.write_bytes(raw)
        return str(path)


def _call_with(toolset: MCPToolset, tool: str, arguments: dict[str, Any]) -> ActionResult:
    return toolset.call_tool(tool, arguments)


def _error(message: str, error_type: str = "tool_error") -> ActionResult:
    return ActionResult(name="", error=message, error_type=error_type)


# -- configs ----------------------------------------------------------------------------------------
def toolset_from_spec(config: Any, index: int, *, timeout_s: float | None = 60.0) -> MCPToolset:
    """The toolset of `config.mcp_servers[index]` (not started); `cwd` and `files_dir` are relative to
    the config file. Raises `ConfigError` naming the entry."""
    spec = config.mcp_servers[index]
    path = str(config.source) if config.source else None
    base = config.base_dir or Path.cwd()
    key = f"mcp_servers[{index}]"
    try:
        return MCPToolset(
            command=spec.command,
            url=spec.url,
            name=spec.name,
            env=spec.env,
            headers_env=spec.headers_env,
            cwd=base / spec.cwd if spec.cwd else None,
            timeout_s=spec.timeout_s if spec.timeout_s is not None else timeout_s,
            files_dir=base / spec.files_dir if spec.files_dir else None,
        )
    except ValueError as exc:
        raise ConfigError(str(exc), path=path, key=key) from exc
    except ActionError as exc:  # an environment variable named in headers_env is not set
        raise ConfigError(str(exc), path=path, key=f"{key}.headers_env") from exc


def build_toolsets(config: Any, *, timeout_s: float | None) -> list[MCPToolset]:
    """The toolsets of a config's `mcp_servers:` entries, connected and their tools listed.

    Raises `ConfigError` naming the entry (`mcp_servers[1]`) when one cannot be built or started;
    the ones already started are stopped.
    """
    toolsets: list[MCPToolset] = []
    try:
        for i in range(len(config.mcp_servers)):
            toolset = toolset_from_spec(config, i, timeout_s=timeout_s)
            toolsets.append(toolset)
            try:
                toolset.apis()
            except ActionError as exc:
                raise ConfigError(str(exc), path=str(config.source), key=f"mcp_servers[{i}]") from exc
    except BaseException:
        for toolset in toolsets:
            toolset.close()
        raise
    return toolsets
