"""Chat request bodies built from per-message JSON that is encoded once and reused (issue 19).

A session's messages only grow between requests, and the agent sends the same message dicts again
each turn (a protocol's `HistoryCache` shares them). Encoding the whole body per request made every
turn's cost grow with the session. Here each message's OpenAI form and its JSON (UTF-8 bytes) are
kept in a `FragmentCache`, found by the message dict's identity and checked against a copy of it (so
a message edited in place, or replaced, is encoded again), and `encode_body` splices the fragments
into the body. The bytes are exactly those `httpx` sends for `json=payload` (`json.dumps` with
`ensure_ascii=False`, `separators=(",", ":")`, `allow_nan=False`, then UTF-8): a JSON list is its
items' encodings joined by `,`, and an object its `"key":value` pairs joined by `,`.

The cache holds the messages it saw (so their ids cannot be reused meanwhile) in two generations: a
hit moves an entry to the newer one; when the newer one holds `max_bytes` of JSON it becomes the
older one, and the older one is dropped. Several threads may share one cache (dict operations are
atomic; a race costs a second encoding, never a wrong body).
"""

from __future__ import annotations

import copy
import json
import operator
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

#: httpx's own encoding of `json=` bodies (httpx._content.encode_json: `json.dumps` with these
#: settings), so bodies are byte-identical; one encoder, as `json.dumps` builds one per call given options
dumps: Callable[[Any], str] = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def to_openai_message(message: dict) -> dict:
    """One lagent message as an OpenAI chat message (a new dict; values are shared, not copied).

    `environment` messages (tool results) become `tool` messages when they answer a `tool_call_id`,
    else `system` messages, as lagent's GPT backend does.
    """
    role = message.get("role", "user")
    out: dict[str, Any] = {"role": role, "content": message.get("content", "")}
    if role == "environment":
        out["role"] = "tool" if message.get("tool_call_id") else "system"
    for key in ("tool_calls", "tool_call_id"):
        if message.get(key):
            out[key] = message[key]
    if message.get("name") and out["role"] in ("system", "user", "assistant"):
        out["name"] = message["name"]
    return out


class EncodedList(list):
    """A body field's items (dicts, as sent) with `fragments`, each item's JSON as UTF-8 bytes.

    The items are shared with the cache: do not change them. `encode_body` uses the fragments only while
    the list still holds exactly the items they were made from."""

    __slots__ = ("fragments", "_items")

    def __init__(self, items: list[Any], fragments: list[bytes]) -> None:
        super().__init__(items)
        self.fragments = fragments
        self._items = items

    def intact(self) -> bool:
        """Whether the list holds the very items its fragments were made from."""
        return len(self) == len(self._items) and all(map(operator.is_, self, self._items))


class _Entry:
    __slots__ = ("source", "snapshot", "item", "fragment")

    def __init__(self, source: Any, snapshot: Any, item: Any, fragment: bytes) -> None:
        self.source, self.snapshot, self.item, self.fragment = source, snapshot, item, fragment


_MISSING = _Entry(None, object(), None, b"")  # equal to no source
_SNAPSHOT, _ITEM, _FRAGMENT = (operator.attrgetter(name) for name in ("snapshot", "item", "fragment"))


class FragmentCache:
    """Converted items and their JSON, by source dict (identity, checked for edits); see the module.

    Args:
        convert: a source dict -> the dict sent (e.g. `to_openai_message`); `None` sends it as it is.
        max_bytes: JSON bytes a generation holds before it is retired (two are kept).
    """

    #: bytes counted for an entry besides its JSON (the entry, its snapshot dict, the sent dict)
    ENTRY_OVERHEAD = 512

    def __init__(self, convert: Callable[[dict], Any] | None = None, max_bytes: int = 32 << 20) -> None:
        self.convert = convert
        self.max_bytes = max_bytes
        self._new: dict[int, _Entry] = {}
        self._old: dict[int, _Entry] = {}
        self._new_bytes = 0

    def encode(self, sources: Sequence[Any]) -> EncodedList:
        """The converted items of `sources` with their JSON. Raises what `json.dumps` and UTF-8 encoding
        raise for a value JSON cannot carry (`TypeError`, `ValueError`, `UnicodeEncodeError`).

        Per source, C-level passes only (no Python frame) when it is cached and unchanged: look it up by
        id (an entry holds its source, so the id is that source's), compare it with its snapshot."""
        if not isinstance(sources, list | tuple):
            sources = list(sources)
        entries = list(map(self._new.get, map(id, sources), repeat(_MISSING)))
        try:
            valid = bytes(map(operator.eq, map(_SNAPSHOT, entries), sources))
        except (TypeError, ValueError):  # a source whose `==` gives no bool: all go the long way
            valid = bytes(len(sources))
        i = valid.find(0)
        while i >= 0:  # new, edited in place, or only in the older generation
            source = sources[i]
            entry = self._old.get(id(source))
            if entry is not None and entry.snapshot == source:
                self._keep(id(source), entry)
            else:
                entry = self._make(source)
            entries[i] = entry
            i = valid.find(0, i + 1)
        return EncodedList(list(map(_ITEM, entries)), list(map(_FRAGMENT, entries)))

    def _make(self, source: Any) -> _Entry:
        item = source if self.convert is None else self.convert(source)
        fragment = dumps(item).encode("utf-8")
        entry = _Entry(source, None, item, fragment)
        if type(source) is dict and len(fragment) + self.ENTRY_OVERHEAD <= self.max_bytes // 4:
            entry.snapshot = _snapshot(source)
            if entry.snapshot == source:  # values that equal their copies (all of JSON's do)
                self._keep(id(source), entry)
        return entry

    def _keep(self, key: int, entry: _Entry) -> None:
        size = len(entry.fragment) + self.ENTRY_OVERHEAD
        if self._new_bytes + size > self.max_bytes:
            self._old, self._new, self._new_bytes = self._new, {}, 0
        self._new[key] = entry
        self._new_bytes += size

    def clear(self) -> None:
        self._new, self._old, self._new_bytes = {}, {}, 0


def _snapshot(value: Any) -> Any:
    """A deep copy of JSON-like data that shares its strings and numbers (so comparing it with the
    original is quick: equal leaves are the same objects)."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict:
        return {key: _snapshot(item) for key, item in value.items()}
    if kind is list:
        return [_snapshot(item) for item in value]
    if kind is tuple:
        return tuple(_snapshot(item) for item in value)
    return copy.deepcopy(value)


def encode_body(payload: dict[str, Any]) -> bytes:
    """`payload` as the JSON request body (UTF-8), byte for byte what `httpx` makes of `json=payload`;
    `EncodedList` fields are spliced from their fragments. Raises as `json.dumps` does."""
    if not any(type(value) is EncodedList for value in payload.values()) or not all(
        type(key) is str for key in payload  # json.dumps would turn other keys into strings: leave it to it
    ):
        return dumps(payload).encode("utf-8")
    out = []
    for key, value in payload.items():
        out.append(b"," + dumps(key).encode("utf-8") + b":" if out else b"{" + dumps(key).encode("utf-8") + b":")
        if type(value) is EncodedList and value.intact():
            out += (b"[", b",".join(value.fragments), b"]")
        else:
            out.append(dumps(value).encode("utf-8"))
    out.append(b"}")
    return b"".join(out)
