"""Traces: every agent event appended to a JSON-lines file as it happens.

Each line is flushed when written, so a run that is killed leaves a readable trace up to its last event
(`read_trace` skips a line torn by the kill, even one cut inside a UTF-8 character).

The writer never raises: text a model, a tool or a user produced (lone surrogates, NUL bytes, megabytes)
is written as valid JSON, and a failing disk costs the trace, not the run (a warning says so).

A prompt event stores only what it adds to the previous prompt of the file: `"kept": K` means "the
first K messages of the previous prompt, then these `messages`", so a long conversation costs linear,
not quadratic, space. `read_trace` gives back whole prompts (`inkagent trace show --full` prints them).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, TypeAdapter

from .schema import AgentEvent, PromptSent

logger = logging.getLogger(__name__)

_EVENT_ADAPTER: TypeAdapter = TypeAdapter(AgentEvent)
_MESSAGES_ADAPTER: TypeAdapter = TypeAdapter(list[dict[str, Any]])


def _json_line(record: Any) -> str:
    """One JSON line for `record`, whatever text it holds (lone surrogates are written escaped)."""
    try:
        line = json.dumps(record, ensure_ascii=False, default=str)
        line.encode("utf-8")  # a lone surrogate cannot be written as UTF-8...
    except UnicodeEncodeError:
        line = json.dumps(record, ensure_ascii=True, default=str)  # ...but JSON's \\udXXX escape can hold it
    return line + "\n"


class TraceWriter:
    """Appends events (pydantic models or dicts) to `path`, one JSON object per line. Never raises on write."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._previous_prompt: list[Any] | None = None
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8", newline="\n")
        try:  # a line torn by an earlier kill must not swallow our first event
            with self.path.open("rb") as existing:
                existing.seek(0, os.SEEK_END)
                if existing.tell():
                    existing.seek(-1, os.SEEK_END)
                    if existing.read(1) != b"\n":
                        self._file.write("\n")
        except OSError:
            pass

    def write(self, event: BaseModel | dict[str, Any]) -> None:
        """Append `event`; problems are logged, never raised (a trace must not end a run)."""
        with self._lock:
            if self._file is None:
                return
            try:
                if isinstance(event, PromptSent):
                    record = self._prompt_record(event)
                else:
                    record = event.model_dump(mode="json") if isinstance(event, BaseModel) else dict(event)
                    if record.get("type") == "prompt" and isinstance(record.get("messages"), list):
                        record = self._prompt_delta(record)
                try:
                    line = _json_line(record)
                except (ValueError, TypeError, RecursionError) as exc:  # e.g. a value that refers to itself
                    line = _json_line({"type": record.get("type", "unknown"), "unwritable": str(exc)})
                self._file.write(line)
                self._file.flush()
            except Exception as exc:  # a full disk, a closed file, a value json cannot take
                logger.warning("could not write to the trace %s (%s); the trace stops here", self.path, exc)
                self._close_quietly()

    def _prompt_record(self, event: PromptSent) -> dict[str, Any]:
        """A prompt event as what it adds to the previous prompt, worked out before anything is dumped:
        only the new messages are converted (the protocol hands over the same message objects each turn,
        so the kept prefix is mostly found by identity), so a turn costs what it adds, not the history."""
        messages = event.messages
        # a copy of the list (not of the messages): a protocol may extend its list in place next turn
        previous, self._previous_prompt = self._previous_prompt, list(messages)
        kept = 0
        if previous:
            for old, new in zip(previous, messages, strict=False):
                if old is not new and old != new:
                    break
                kept += 1
        record = event.model_dump(mode="json", exclude={"messages"})
        record["messages"] = _MESSAGES_ADAPTER.dump_python(messages[kept:], mode="json")
        if kept:
            record["kept"] = kept
        return record

    def _prompt_delta(self, record: dict[str, Any]) -> dict[str, Any]:
        messages = record["messages"]
        previous, self._previous_prompt = self._previous_prompt, messages
        kept = 0
        if previous:
            for old, new in zip(previous, messages, strict=False):
                if old != new:
                    break
                kept += 1
        if not kept:
            return record
        return {**record, "kept": kept, "messages": messages[kept:]}

    def _close_quietly(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except Exception:
                logger.debug("closing the trace %s failed", self.path, exc_info=True)

    def close(self) -> None:
        with self._lock:
            self._close_quietly()

    def __del__(self) -> None:
        self._close_quietly()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_records(path: str | os.PathLike[str]) -> list[Any]:
    """The JSON records of a trace file, prompts made whole again.

    Lines that are not JSON objects (the one being written when the run was killed) are skipped.
    """
    records: list[Any] = []
    previous_prompt: list[Any] = []
    with Path(path).open("rb") as file:
        for raw in file:
            line = raw.decode("utf-8", errors="replace")
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                continue  # the line being written when the run was killed
            if not isinstance(record, dict):
                continue
            if record.get("type") == "prompt" and isinstance(record.get("messages"), list):
                kept = record.pop("kept", 0)
                if isinstance(kept, int) and kept > 0:
                    record["messages"] = previous_prompt[:kept] + record["messages"]
                previous_prompt = record["messages"]
            records.append(record)
    return records


def read_trace(path: str | os.PathLike[str]) -> list[Any]:
    """The events of a trace file as typed events (unknown records stay dicts; a torn line is skipped)."""
    events: list[Any] = []
    for record in read_records(path):
        try:
            events.append(_EVENT_ADAPTER.validate_python(record))
        except ValueError:
            events.append(record)
    return events
