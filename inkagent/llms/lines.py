"""Splitting streamed text into lines, checking a deadline on every piece that arrives."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator


class LineSplitter:
    """Text chunks into lines ending in CRLF, CR or LF (the SSE rule), the deadline checked per chunk."""

    _END = re.compile(r"\r\n|\r|\n")

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, chunk: str) -> list[str]:
        text = self._buffer + chunk
        out, start = [], 0
        for match in self._END.finditer(text):
            if match.group() == "\r" and match.end() == len(text):
                break  # maybe the first half of a CRLF: wait for the next chunk
            out.append(text[start : match.start()])
            start = match.end()
        self._buffer = text[start:]
        return out

    def flush(self) -> str | None:
        """The last line, if the text did not end with a line break."""
        rest, self._buffer = self._buffer.rstrip("\r"), ""
        return rest or None

    def lines(self, chunks: Iterator[str], check: Callable[[], None]) -> Iterator[str]:
        for chunk in chunks:
            check()
            yield from self.feed(chunk)
        rest = self.flush()
        if rest is not None:
            yield rest
