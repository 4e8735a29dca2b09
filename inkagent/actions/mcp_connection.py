"""The connection to one MCP server: the SDK's client session, held open on an event loop, the thread
that runs that loop (`LoopThread`), and the transports that reach the server (stdio under a guard
process, streamable HTTP). The wire format is the SDK's: JSON-RPC 2.0 messages, one per line on a stdio
server's stdin/stdout, or POSTed to a streamable HTTP endpoint.

The guard: a stdio server runs as the child of a tiny Python process (`_GUARD`) that the SDK starts in a
session of its own. The guard stops the server's whole process group when the agent dies, even by
SIGKILL: on Linux through `PR_SET_PDEATHSIG` (delivered when the *thread* that started the guard ends,
so the event loop's thread must live as long as the server), elsewhere by polling its parent. The
guard writes the server's pid to a file, so a server that died between calls is noticed before a call
is sent (and the call is then sent to a fresh server, never lost and never doubled).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ..errors import ActionError

logger = logging.getLogger(__name__)

_STOP_TIMEOUT_S = 10.0

# Runs as `python -c _GUARD PARENT_PID PID_FILE COMMAND...`: starts the server as its child in its own
# process group (the SDK starts the guard in a new session), writes the server's pid to PID_FILE, and
# stops the whole group when the agent dies. The server inherits stdin/stdout, so the guard relays
# nothing. It imports nothing heavy (~10 MB, ~20 ms).
_GUARD = """\
import os, signal, subprocess, sys, threading, time
parent, pid_file = int(sys.argv[1]), sys.argv[2]
child = None

def stop(*_):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    group = os.getpgrp() == os.getpid()
    try:
        os.killpg(os.getpgrp(), signal.SIGTERM) if group else child and child.terminate()
        child and child.wait(timeout=2)
    except Exception:
        pass
    if group:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    child and child.kill()
    os._exit(1)

signal.signal(signal.SIGTERM, stop)
if sys.platform.startswith("linux"):
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
if os.getppid() != parent:
    sys.exit(70)  # the agent died before the guard was in place
try:
    child = subprocess.Popen(sys.argv[3:])
except OSError as exc:
    print(f"cannot start the MCP server {sys.argv[3]!r}: {exc.strerror or exc}", file=sys.stderr, flush=True)
    sys.exit(127)
with open(pid_file, "w") as f:
    f.write(str(child.pid))
if not sys.platform.startswith("linux"):
    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        stop()
    threading.Thread(target=watch, daemon=True).start()
sys.exit(child.wait())
"""


class LoopThread:
    """An asyncio event loop running forever on a daemon thread of its own, started on first use.

    The SDK is asynchronous and its callers are not: they hand coroutines to `loop()` with
    `asyncio.run_coroutine_threadsafe` and wait. The thread also starts a stdio server, so it must live
    as long as the server does: PR_SET_PDEATHSIG fires when the thread that forked the guard ends.

    Args:
        thread_name: gives the thread's name when it starts.
    """

    def __init__(self, thread_name: Callable[[], str]) -> None:
        self._thread_name = thread_name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the loop was started and its thread still runs."""
        return self._loop is not None and self._thread is not None and self._thread.is_alive()

    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop, started if it is not yet."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()
                    loop.close()

                self._thread = threading.Thread(target=run, name=self._thread_name(), daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def stop(self, timeout: float) -> None:
        """Stop the loop and wait up to `timeout` seconds for its thread to end."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)


class Connection:
    """One live session with a server, held open by a task of the caller's event loop.

    Args:
        transport: an SDK transport (async context manager of a stream pair): `stdio_transport()`,
            `http_transport()`.
        pid_file: where the guard wrote a stdio server's pid, to tell a dead server from a live one.
        on_tools_changed: called on `notifications/tools/list_changed`.
    """

    def __init__(self, transport: Any, pid_file: Path | None, on_tools_changed: Callable[[], None]) -> None:
        self.transport = transport
        self.pid_file = pid_file
        self.on_tools_changed = on_tools_changed
        self.client: Any = None
        self.server_info: Any = None
        self.instructions: str | None = None
        self.lost = asyncio.Event()  # the server's stream ended (it exited, or HTTP went away)
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    def server_alive(self) -> bool:
        """Whether a stdio server's process still runs (its exit may not have reached the pipe yet)."""
        try:
            pid = int(self.pid_file.read_text()) if self.pid_file is not None else None
        except (OSError, ValueError):
            return True  # not written yet, or an HTTP server: the connection tells
        return pid is None or _process_alive(pid)

    async def open(self, startup_timeout_s: float) -> None:
        """Start the server (stdio) and run the initialize handshake; `ActionError` saying why not."""
        from mcp import Client
        from mcp_types import Implementation, ToolListChangedNotification

        from .. import __version__

        ready: asyncio.Future = asyncio.get_running_loop().create_future()

        async def on_message(message: Any) -> None:
            if isinstance(message, ToolListChangedNotification):
                self.on_tools_changed()

        async def hold() -> None:
            try:
                async with Client(
                    _watched(self.transport, self.lost),
                    mode="legacy",  # the initialize handshake: list_changed and cancelled notifications
                    message_handler=on_message,
                    client_info=Implementation(name="inkagent", version=__version__),
                    cache=None,
                ) as client:
                    self.client, self.server_info = client, client.server_info
                    self.instructions = client.instructions
                    ready.set_result(None)
                    stop = asyncio.ensure_future(self._stop.wait())
                    lost = asyncio.ensure_future(self.lost.wait())
                    try:
                        await asyncio.wait([stop, lost], return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        stop.cancel()
                        lost.cancel()
            except BaseException as exc:
                if not ready.done():
                    ready.set_exception(exc)
                elif not isinstance(exc, asyncio.CancelledError):
                    logger.debug("an MCP connection ended", exc_info=True)
            finally:
                self.lost.set()

        self._task = asyncio.ensure_future(hold())
        try:
            await asyncio.wait_for(asyncio.shield(ready), startup_timeout_s)
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, TimeoutError | asyncio.TimeoutError):
                raise ActionError(f"no answer within {startup_timeout_s:g} s") from exc
            raise ActionError(_reason(exc)) from exc

    async def stop(self) -> None:
        self._stop.set()
        task = self._task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), _STOP_TIMEOUT_S)
            except (asyncio.TimeoutError, TimeoutError):
                task.cancel()
            except Exception:
                logger.debug("closing an MCP connection failed", exc_info=True)


def _process_alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, dead but not yet reaped by the guard, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): signal 0 is all there is
    state = re.search(r"\)\s+(\S)", stat)  # after "pid (comm)": the state letter
    return state is None or state.group(1) not in "ZX"


def _reason(exc: BaseException) -> str:
    inner = getattr(exc, "exceptions", None)  # an exception group (anyio task groups raise them)
    if isinstance(inner, tuple | list) and inner:
        return "; ".join(_reason(e) for e in inner)
    return f"{type(exc).__name__}: {exc}"


@asynccontextmanager
async def _watched(transport: Any, lost: asyncio.Event):
    """`transport`, with `lost` set as soon as the server's stream ends."""
    async with transport as (read_stream, write_stream):
        yield _WatchedStream(read_stream, lost), write_stream
    lost.set()


class _WatchedStream:
    """A read stream that sets `lost` when it ends (the SDK then fails the calls in flight)."""

    def __init__(self, inner: Any, lost: asyncio.Event) -> None:
        self._inner, self._lost = inner, lost

    def __getattr__(self, name: str) -> Any:  # last_context and the like
        return getattr(self._inner, name)

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except Exception:
            self._lost.set()
            raise

    def __aiter__(self) -> _WatchedStream:
        return self

    async def __anext__(self) -> Any:
        import anyio

        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError) as exc:
            raise StopAsyncIteration from exc

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _WatchedStream:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        self._lost.set()
        return await self._inner.__aexit__(*exc)


@asynccontextmanager
async def _owning(transport: Any, http: Any):
    """`transport`, closing the HTTP client it was given when it ends."""
    async with http:
        async with transport as streams:
            yield streams


@asynccontextmanager
async def _logging_stdio(params: Any, log_path: Path):
    """The SDK's stdio transport, with the server's stderr appended to `log_path`."""
    from mcp.client.stdio import stdio_client

    with open(log_path, "a", encoding="utf-8") as log:
        async with stdio_client(params, errlog=log) as streams:
            yield streams


def stdio_transport(
    command: list[str], env: dict[str, str], cwd: str | None, pid_file: Path, log_path: Path
) -> Any:
    """The SDK's stdio transport for `command`, run under the guard (POSIX), its stderr appended to
    `log_path`. The server's environment: the SDK's safe defaults (PATH, HOME...) plus `env`."""
    from mcp.client.stdio import StdioServerParameters

    if os.name == "posix":
        params = StdioServerParameters(
            command=sys.executable,
            args=["-c", _GUARD, str(os.getpid()), str(pid_file), *command],
            env=env,
            cwd=cwd,
        )
    else:  # Windows: the SDK puts the server in a job object, closed with the client
        params = StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=cwd)
    return _logging_stdio(params, log_path)


def http_transport(url: str, headers: dict[str, str]) -> Any:
    """The SDK's streamable HTTP transport for `url`, sending `headers` with every request."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0))
    return _owning(streamable_http_client(url, http_client=http), http)
