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

import contextvars
import sys
import threading
from typing import Any, TextIO

from .output import OutputBuffer

_BUFFER: contextvars.ContextVar[Capture | None] = contextvars.ContextVar("inkagent_tool_output", default=None)
_LOCK = threading.Lock()
_ACTIVE = 0
_SAVED: dict[str, TextIO] = {}


class _RoutedStream:
    """A stand-in for `sys.stdout` / `sys.stderr` that sends a captured call's writes to its buffer."""

    def __init__(self, fallback: TextIO):
        self._fallback = fallback

    def write(self, text: str) -> int:
        capture = _BUFFER.get()
        if capture is None:
            return self._fallback.write(text)
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        capture.add(text)
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


class Capture:
    """What one call printed (the `with capture_output(limit)` target): `text()` once the block ended.

    The `OutputBuffer` is made at the first write: most tools print nothing.
    """

    __slots__ = ("_buffer", "_limit", "_token")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buffer: OutputBuffer | None = None
        self._token: contextvars.Token | None = None

    def add(self, text: str) -> None:
        if self._buffer is None:
            self._buffer = OutputBuffer(self._limit)
        self._buffer.add(text)

    def text(self) -> str:
        """What was printed, rendered as a terminal shows it and cut to the limit ("" for nothing)."""
        return "" if self._buffer is None else self._buffer.text()

    def __enter__(self) -> Capture:
        _install()
        self._token = _BUFFER.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _BUFFER.reset(self._token)  # type: ignore[arg-type]
        _uninstall()


def capture_output(limit: int) -> Capture:
    """Capture what this thread prints (stdout and stderr, in order), up to `limit` characters:
    `with capture_output(limit) as printed: ...`, then `printed.text()`."""
    return Capture(limit)
