"""Program output as the model should read it: rendered as a terminal shows it, and cut to a budget.

`TerminalText` applies carriage returns and backspaces the way a terminal does (a progress bar that
rewrites its line a thousand times leaves one line), and `CutOutput` keeps the head and a rolling tail
of what passes its budget, so a program printing gigabytes costs no memory. `OutputBuffer` is both in
one: what the interpreter and the per-call capture of tools' prints use.
"""

from __future__ import annotations

import re
from collections import deque

_CONTROL = re.compile(r"[\r\b\n]")


class CutOutput:
    """Text in arrival order, cut in the middle once it passes `limit` characters.

    Only the head and a rolling tail are kept; the tail matters because tracebacks come last.
    """

    def __init__(self, limit: int):
        self.head_limit = max(0, limit * 2 // 3)
        self.tail_limit = max(0, limit - self.head_limit)
        self.head: list[str] = []
        self.head_len = 0
        self.tail: deque[str] = deque()
        self.tail_len = 0
        self.total = 0

    def add(self, text: str) -> None:
        if not text:
            return
        self.total += len(text)
        room = self.head_limit - self.head_len
        if room > 0:
            self.head.append(text[:room])
            self.head_len += min(room, len(text))
            text = text[room:]
        if text:
            self.tail.append(text)
            self.tail_len += len(text)
            while self.tail and self.tail_len - len(self.tail[0]) >= self.tail_limit:
                self.tail_len -= len(self.tail.popleft())

    def text(self) -> str:
        head, tail = "".join(self.head), "".join(self.tail)
        if self.total <= self.head_limit + self.tail_limit:
            return head + tail
        note = f"\n... [output cut: {self.total} characters in all; the middle was dropped] ...\n"
        keep = max(0, self.tail_limit - len(note))
        return head + note + (tail[-keep:] if keep else "")


class TerminalText:
    """Renders `\\r` (back to the start of the line) and `\\b` (one column left) as a terminal does.

    Finished lines go to `sink`; the line being written is held until its newline (or `flush()`).
    A line longer than `max_line` characters is passed on as it is, so one endless line costs no memory
    (a `\\r` after that point rewrites only what was held back).
    """

    def __init__(self, sink, max_line: int = 65536):
        self.sink = sink
        self.max_line = max_line
        self.line = ""
        self.col = 0

    def write(self, text: str) -> None:
        pos = 0
        for match in _CONTROL.finditer(text):
            self._put(text[pos : match.start()])
            char = match.group()
            if char == "\n":
                self.sink(self.line + "\n")
                self.line, self.col = "", 0
            elif char == "\r":
                self.col = 0
            else:
                self.col = max(0, self.col - 1)
            pos = match.end()
        self._put(text[pos:])

    def _put(self, piece: str) -> None:
        if not piece:
            return
        if self.col == len(self.line):
            self.line += piece
        else:
            self.line = self.line[: self.col] + piece + self.line[self.col + len(piece) :]
        self.col += len(piece)
        if len(self.line) > self.max_line:
            self.sink(self.line)
            self.line, self.col = "", 0

    def flush(self) -> None:
        """Pass on the line being written (the output ended, or a block starts)."""
        if self.line:
            self.sink(self.line)
        self.line, self.col = "", 0


class OutputBuffer:
    """Output rendered as on a terminal, then cut to `limit` characters (see the module's docstring)."""

    def __init__(self, limit: int):
        self.cut = CutOutput(limit)
        self.terminal = TerminalText(self._sink)
        self.last_char = "\n"

    def _sink(self, text: str) -> None:
        self.last_char = text[-1]
        self.cut.add(text)

    def add(self, text: str, *, block: bool = False) -> None:
        """Append `text`; a `block` (a result, a traceback) starts on a line of its own."""
        if not text:
            return
        if block:
            self.terminal.flush()
            if self.last_char != "\n":
                self._sink("\n")
        self.terminal.write(text)

    @property
    def total(self) -> int:
        return self.cut.total + len(self.terminal.line)

    def text(self) -> str:
        self.terminal.flush()
        return self.cut.text()


def render_terminal(text: str) -> str:
    """`text` as a terminal would show it (`"step 1\\rstep 2\\n"` -> `"step 2\\n"`)."""
    out: list[str] = []
    terminal = TerminalText(out.append, max_line=len(text) + 1)
    terminal.write(text)
    terminal.flush()
    return "".join(out)
