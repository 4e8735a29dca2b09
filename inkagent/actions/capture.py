"""What a tool prints, captured per call: `with capture_output(limit) as buffer: ...`.

While any capture is active, `sys.stdout` and `sys.stderr` are proxies that route each write by a
context variable: writes from a thread (or task) inside `capture_output` go to that call's buffer,
every other write goes to the stream that was there before. Calls on several threads therefore capture
only their own prints, and the agent's own output (a REPL, `--json` lines) is never mixed with a
tool's. The buffer renders `\\r` as a terminal does and keeps only a head and a tail past `limit`
characters, so a tool printing megabytes costs no memory. Threads a tool starts itself do not inherit
the capture (their prints go to the agent's streams), except through `contextvars.copy_context()`.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO

from .output import OutputBuffer

_BUFFER: contextvars.ContextVar[OutputBuffer | None] = contextvars.ContextVar("inkagent_tool_output", default=None)
_LOCK = threading.Lock()
_ACTIVE = 0
_SAVED: dict[str, TextIO] = {}


class _RoutedStream:
    """A stand-in for `sys.stdout` / `sys.stderr` that sends a captured call's writes to its buffer."""

    def __init__(self, fallback: TextIO):
        self._fallback = fallback

    def write(self, text: str) -> int:
        buffer = _BUFFER.get()
        if buffer is None:
            return self._fallback.write(text)
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        buffer.add(text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _BUFFER.get() is None:
            self._fallback.flush()

    def isatty(self) -> bool:
        return False if _BUFFER.get() is not None else self._fallback.isatty()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, buffer...: the real stream's
        return getattr(self._fallback, name)


def _install() -> None:
    global _ACTIVE
    with _LOCK:
        _ACTIVE += 1
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if not isinstance(stream, _RoutedStream):  # first capture, or someone replaced the stream since
                _SAVED[name] = stream
                setattr(sys, name, _RoutedStream(stream))


def _uninstall() -> None:
    global _ACTIVE
    with _LOCK:
        _ACTIVE -= 1
        if _ACTIVE == 0:
            for name, stream in _SAVED.items():
                if isinstance(getattr(sys, name), _RoutedStream):  # unless someone replaced it since
                    setattr(sys, name, stream)
            _SAVED.clear()


@contextlib.contextmanager
def capture_output(limit: int) -> Iterator[OutputBuffer]:
    """Capture what this thread prints (stdout and stderr, in order) into a buffer of `limit` characters."""
    buffer = OutputBuffer(limit)
    _install()
    token = _BUFFER.set(buffer)
    try:
        yield buffer
    finally:
        _BUFFER.reset(token)
        _uninstall()
