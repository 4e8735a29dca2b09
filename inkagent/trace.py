"""Traces: every agent event appended to a JSON-lines file as it happens.

Each line is flushed when written, so a run that is killed leaves a readable trace up to its last event.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, TypeAdapter

from .schema import AgentEvent

_EVENT_ADAPTER: TypeAdapter = TypeAdapter(AgentEvent)


class TraceWriter:
    """Appends events (pydantic models or dicts) to `path`, one JSON object per line."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8")

    def write(self, event: BaseModel | dict[str, Any]) -> None:
        if self._file is None:
            return
        record = event.model_dump(mode="json") if isinstance(event, BaseModel) else event
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __del__(self) -> None:
        self.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_trace(path: str | os.PathLike[str]) -> list[Any]:
    """The events of a trace file as typed events (unknown records stay dicts; a torn last line is skipped)."""
    events: list[Any] = []
    with Path(path).open(encoding="utf-8") as file:
        for line in file:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line being written when the run was killed
            try:
                events.append(_EVENT_ADAPTER.validate_python(record))
            except ValueError:
                events.append(record)
    return events
