"""Reading calls out of model text, safely: JSON that cannot raise, call objects, marker scanning.

Shared by the text protocols' parsers. Nothing here raises on model output: `json.loads` on hostile
text can raise RecursionError (deep nesting) and ValueError (integers past Python's digit limit)
besides syntax errors; each becomes a reason the model reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

#: Deepest nesting of call arguments accepted (deeper is a parse error: later JSON / pydantic work recurses).
MAX_ARGUMENT_DEPTH = 64


def load_json(text: str) -> tuple[Any, str | None]:
    """`(value, None)`, or `(None, reason)` for text that is not JSON a call can carry. Never raises.

    Reasons cover what `json.loads` raises on hostile input besides syntax errors: nesting deeper than the
    interpreter's recursion limit (RecursionError), integers past Python's digit limit (ValueError), and
    anything nested deeper than `MAX_ARGUMENT_DEPTH`.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno})"
    except RecursionError:
        return None, f"nested too deeply (more than {MAX_ARGUMENT_DEPTH} levels)"
    except ValueError as exc:  # int max str digits, and friends
        return None, f"not usable JSON ({exc})"
    # each array or object opens with a bracket of the text: with no more brackets than the limit (the
    # common case, counted in C), the nesting cannot exceed it
    if text.count("{") + text.count("[") > MAX_ARGUMENT_DEPTH and _depth_exceeds(value, MAX_ARGUMENT_DEPTH):
        return None, f"nested too deeply (more than {MAX_ARGUMENT_DEPTH} levels)"
    return value, None


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def decode_arguments(arguments: Any, where: str = "arguments") -> dict[str, Any] | str:
    """Call arguments as a dict, from a dict, a JSON text (empty means `{}`) or None; else the reason."""
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        if not arguments.strip():
            return {}
        arguments, problem = load_json(arguments)
        if problem:
            return f"The {where} are {problem}."
    if not isinstance(arguments, dict):
        return f"The {where} must be a JSON object, got {type(arguments).__name__}."
    return arguments



class MarkerScanner:
    """Splits streamed text into plain text and marker strings, holding back a tail that could be the
    start of a marker. `feed()` / `close()` return `(is_marker, text)` pairs in order."""

    def __init__(self, markers: Iterable[str]) -> None:
        ordered = sorted(set(markers), key=len, reverse=True)
        self._re = re.compile("|".join(re.escape(m) for m in ordered))
        self._prefixes = frozenset(m[:i] for m in ordered for i in range(1, len(m)))
        self._longest = max(len(m) for m in ordered)
        self._starts = frozenset(m[0] for m in ordered)
        self._buffer = ""

    def feed(self, text: str) -> list[tuple[bool, str]]:
        self._buffer += text
        return self._scan(final=False)

    def close(self) -> list[tuple[bool, str]]:
        return self._scan(final=True)

    def _scan(self, final: bool) -> list[tuple[bool, str]]:
        out: list[tuple[bool, str]] = []
        position = 0
        for match in self._re.finditer(self._buffer):
            if match.start() > position:
                out.append((False, self._buffer[position : match.start()]))
            out.append((True, match.group(0)))
            position = match.end()
        rest = self._buffer[position:]
        keep = 0 if final else self._held_back(rest)
        if len(rest) > keep:
            out.append((False, rest[: len(rest) - keep]))
        self._buffer = rest[len(rest) - keep :]
        return out

    def _held_back(self, text: str) -> int:
        tail = text[-(self._longest - 1) :] if self._longest > 1 else ""
        if not any(start in tail for start in self._starts):
            return 0
        for size in range(min(self._longest - 1, len(text)), 0, -1):
            if text[-size:] in self._prefixes:
                return size
        return 0


def call_from_json(
    text: str, hint: str, *, noun: str = "tool call", keys: tuple[str, str] = ("arguments", "parameters")
) -> tuple[str, dict[str, Any]] | str:
    """`(name, arguments)` from a JSON call object `{"name": ..., "arguments" | "parameters": {...}}`
    (arguments may be a JSON text, as OpenAI writes them), or the reason it is malformed (ending with `hint`).

    `noun` names the call in the reasons ("plugin call" for InternLM2); `keys` are the two spellings of
    the arguments' key, the protocol's own first (it wins when a call has both).
    """
    text = text.strip()
    if not text:
        return f"The {noun} is empty. {hint}"
    data, problem = load_json(text)
    if problem:
        return f"The {noun} is {problem}. {hint}"
    if not isinstance(data, dict):
        return f"The {noun} must be a JSON object, got {type(data).__name__}. {hint}"
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        return f'The {noun} has no "name" (a string naming the tool). {hint}'
    key = keys[0] if keys[0] in data else keys[1]
    arguments = data.get(key)
    if not isinstance(arguments, dict):  # (a dict is used as it is; the reason is written only when needed)
        arguments = decode_arguments(arguments, f'"{key}" of the call to {name.strip()}')
        if isinstance(arguments, str):
            return f"{arguments} {hint}"
    return name.strip(), arguments
