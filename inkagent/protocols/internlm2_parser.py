"""Incremental parser for InternLM2 model output.

The output is language, optionally followed by tool calls:

    thought<|action_start|><|plugin|>\n{"name": ..., "parameters": {...}}<|action_end|>\n<|im_end|>
    thought<|action_start|><|interpreter|>\n```python\ncode\n```<|action_end|>

The parser is a small state machine over special-token markers, fed chunk by chunk while the model
streams. Language streams out as it arrives (a tail that could be the start of a marker is held back);
a call is announced when its `<|action_start|><|name|>` arrives, its text streams as it is written, and
it is returned at `<|action_end|>` or the end of the output. It never raises: anything malformed becomes an error entry with the reason.
"""

from __future__ import annotations

import re

from ..schema import ToolCall
from .base import (  # re-exported: the stream items used to live here
    CallInvalid,
    CallParsed,
    CallStarted,
    CallText,
    StreamItem,
    StreamParser,
    TextPiece,
)
from .decoding import call_from_json

__all__ = [
    "CallInvalid", "CallParsed", "CallStarted", "CallText", "Internlm2StreamParser", "StreamItem", "TextPiece",
    "decode_interpreter_call", "decode_plugin_call", "normalize_special_tokens",
]  # fmt: skip

ACTION_START = "<|action_start|>"
ACTION_END = "<|action_end|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
PLUGIN = "<|plugin|>"
INTERPRETER = "<|interpreter|>"

# XComposer2's tokenizer spells InternLM2's special tokens as unused tokens.
ALIASES = {
    "[UNUSED_TOKEN_141]": PLUGIN,
    "[UNUSED_TOKEN_142]": INTERPRETER,
    "[UNUSED_TOKEN_143]": ACTION_END,
    "[UNUSED_TOKEN_144]": ACTION_START,
    "[UNUSED_TOKEN_145]": IM_END,
    "[UNUSED_TOKEN_146]": IM_START,
}
_CANONICAL = {token: token for token in (ACTION_START, ACTION_END, IM_START, IM_END, PLUGIN, INTERPRETER)}
_MARKERS = {**_CANONICAL, **ALIASES}
_MARKER_RE = re.compile("|".join(re.escape(m) for m in sorted(_MARKERS, key=len, reverse=True)))
_MAX_MARKER = max(len(m) for m in _MARKERS)
_MARKER_PREFIXES = frozenset(m[:i] for m in _MARKERS for i in range(1, len(m)))
_MARKER_START_RE = re.compile("[" + "".join(sorted({re.escape(m[0]) for m in _MARKERS})) + "]")
_OPEN_FENCE_RE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n?")
_LINE_FENCE_RE = re.compile(r"^[ \t]*```[ \t]*$", re.MULTILINE)
_KIND_OF = {PLUGIN: "plugin", INTERPRETER: "interpreter"}

PLUGIN_CALL_HINT = 'Write a plugin call as {"name": "<tool name>", "parameters": {<arguments>}}.'




def normalize_special_tokens(text: str) -> str:
    """Replace XComposer2's `[UNUSED_TOKEN_14x]` spellings with InternLM2's special tokens."""
    return _MARKER_RE.sub(lambda m: _MARKERS[m.group(0)], text)


def _held_back(text: str) -> int:
    """Length of the longest suffix of `text` that could be the start of a marker."""
    if _MARKER_START_RE.search(text, max(0, len(text) - _MAX_MARKER + 1)) is None:
        return 0  # the common case, cheaply: no character in the tail can start a marker
    for size in range(min(_MAX_MARKER - 1, len(text)), 0, -1):
        if text[-size:] in _MARKER_PREFIXES:
            return size
    return 0


def _fenced(text: str) -> str | None:
    """The body of the first ``` fence in `text` (None without one).

    The fence that ends the block is the last ``` when only blanks follow it (so ``` inside the code,
    e.g. in a string, stays code), else the first ``` alone on its line, else the last one; an unclosed
    fence runs to the end.
    """
    opening = _OPEN_FENCE_RE.search(text)
    if opening is None:
        return None
    rest = text[opening.end() :]
    last = rest.rfind("```")
    if last < 0:
        return rest
    if not rest[last + 3 :].strip():
        return rest[:last]
    alone = _LINE_FENCE_RE.search(rest)
    return rest[: alone.start()] if alone else rest[:last]


def decode_plugin_call(body: str) -> ToolCall | str:
    """Decode a plugin call body into a `ToolCall`, or return the reason it is malformed. Never raises."""
    text = body.strip()
    if text.startswith("```"):  # some models wrap the JSON in a ```json fence
        text = (_fenced(text) or "").strip()
    decoded = call_from_json(text, PLUGIN_CALL_HINT, noun="plugin call", keys=("parameters", "arguments"))
    if isinstance(decoded, str):
        return decoded
    return ToolCall(kind="plugin", name=decoded[0], arguments=decoded[1])


def decode_interpreter_call(body: str, name: str = "IPythonInterpreter") -> ToolCall | str:
    """Extract the code of an interpreter call (from a ``` fence when there is one; see `_fenced`)."""
    text = body.strip()
    fenced = _fenced(text)
    code = text if fenced is None else fenced
    code = code.strip("\n").rstrip()
    if not code.strip():
        return "The interpreter call holds no code. Put the Python code after <|interpreter|>."
    return ToolCall(kind="interpreter", name=name, arguments={"command": code})


class Internlm2StreamParser(StreamParser):
    """Feed model output chunk by chunk; read `StreamItem`s as they become certain.

    `feed()` returns the items completed by that chunk; `close()` flushes at the end of the output;
    `result()` gives the whole turn as a `ParsedTurn`.
    """

    def __init__(self, interpreter_name: str = "IPythonInterpreter") -> None:
        super().__init__(interpreter_name)
        self._buffer = ""
        self._state = "text"  # text -> action_name -> action_body -> text ... -> done
        self._kind = ""
        self._body: list[str] = []

    def _feed_text(self, chunk: str) -> list[StreamItem]:
        if self._state == "done":
            return []
        self._buffer += chunk
        return self._advance(final=False)

    def _close_text(self) -> list[StreamItem]:
        items = self._advance(final=True)
        if self._state == "action_name":
            items.append(self._reject("The call has <|action_start|> but no <|plugin|> or <|interpreter|>."))
        elif self._state == "action_body":
            items.append(self._finish_call())  # no <|action_end|>: decode what there is
        self._state = "done"
        return items

    # -- internals -----------------------------------------------------------------------------
    def _advance(self, final: bool) -> list[StreamItem]:
        items: list[StreamItem] = []
        if self._state == "done" or not self._buffer:
            return items
        buffer, position = self._buffer, 0
        for match in _MARKER_RE.finditer(buffer):  # the markers in the buffer, in one pass
            self._consume_plain(buffer[position : match.start()], items)
            position = match.end()
            self._on_marker(_MARKERS[match.group(0)], items)
            if self._state == "done":  # the rest of the output is not read
                return items
        rest = buffer[position:]
        keep = 0 if final else _held_back(rest)
        self._consume_plain(rest[: len(rest) - keep], items)
        self._buffer = rest[len(rest) - keep :]
        return items

    def _consume_plain(self, text: str, items: list[StreamItem]) -> None:
        if not text:
            return
        if self._state == "text":
            items.append(self._text(text))
        elif self._state == "action_name":
            if text.strip():  # neither <|plugin|> nor <|interpreter|>: collect it to report at the end
                self._kind, self._body, self._state = "unknown", [text], "action_body"
        elif self._state == "action_body":
            self._body.append(text)
            if self._kind != "unknown":
                items.append(CallText(self._kind, text))  # type: ignore[arg-type]

    def _on_marker(self, marker: str, items: list[StreamItem]) -> None:
        state = self._state
        if marker in (IM_END, IM_START):
            if state == "action_name":
                items.append(self._reject("The call has <|action_start|> but no <|plugin|> or <|interpreter|>."))
            elif state == "action_body":
                items.append(self._finish_call())
            self._state = "done"
            self._buffer = ""
        elif marker == ACTION_START:
            if state == "action_body":  # a new call before the previous one ended
                items.append(self._finish_call())
            self._state = "action_name"
        elif marker in (PLUGIN, INTERPRETER):
            if state == "action_name":
                self._kind, self._body, self._state = _KIND_OF[marker], [], "action_body"
                items.append(CallStarted(self._kind))  # type: ignore[arg-type]
            elif state == "action_body":
                self._body.append(marker)
                if self._kind != "unknown":
                    items.append(CallText(self._kind, marker))  # type: ignore[arg-type]
            # a bare <|plugin|> in language is dropped: it is not a call without <|action_start|>
        elif marker == ACTION_END:
            if state == "action_body":
                items.append(self._finish_call())
            elif state == "action_name":
                items.append(self._reject("The call has <|action_start|> but no <|plugin|> or <|interpreter|>."))
                self._state = "text"

    def _finish_call(self) -> StreamItem:
        body = "".join(self._body)
        self._body, self._state = [], "text"
        if self._kind == "unknown":
            decoded: ToolCall | str = (
                f"Unknown call type after <|action_start|>: {body.strip()[:40]!r}. "
                "Write <|action_start|><|plugin|> or <|action_start|><|interpreter|>."
            )
        elif self._kind == "interpreter":
            decoded = decode_interpreter_call(body, self.interpreter_name)
        else:
            decoded = decode_plugin_call(body)
        if isinstance(decoded, str):
            return self._reject(decoded, raw=body)
        self._calls.append(decoded)
        return CallParsed(decoded)
