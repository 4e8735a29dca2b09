"""`inkagent trace show FILE [--json]`: a saved trace, shown the way the REPL showed it.

A trace holds every event but the text deltas (the text is in each turn's `ModelOutput`), so the
language of each turn is recovered by running the protocol's parser over the raw output again, and put
back in its place among the turn's tool calls. `--json` prints the events as validated JSON lines.

`--full` also prints each prompt the model received, whole (the trace stores each prompt as what it
adds to the previous one; see `inkagent.trace`).

Exit codes: 0 shown, 1 the file holds no inkagent events, 2 the file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="trace_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="render a trace file (JSON lines) as the REPL showed it")
    show.add_argument("file", help="a trace written by `inkagent run` or `inkagent chat`")
    show.add_argument("--json", action="store_true", help="print the events as JSON lines instead")
    show.add_argument("--plain", action="store_true", help="plain text, even on a terminal")
    show.add_argument(
        "--full", action="store_true", help="also print every prompt sent to the model, in full"
    )


def run(args: argparse.Namespace) -> int:
    from ..schema import PromptSent
    from ..trace import read_trace
    from .render import EventRenderer

    path = Path(args.file)
    for stream in (sys.stdout, sys.stderr):  # text a model wrote may hold lone surrogates
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        events = read_trace(path)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {path}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 2
    known = [e for e in events if not isinstance(e, dict)]
    if not known:
        print(f"error: {path} holds no inkagent events", file=sys.stderr)
        return 1
    try:
        if args.json:
            for event in events:
                record = event if isinstance(event, dict) else event.model_dump(mode="json")
                sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
            return 0
        renderer = EventRenderer(sys.stdout, plain=True if args.plain else None, live=False, show_user=True)
        for event in replay(known):
            if getattr(args, "full", False) and isinstance(event, PromptSent):
                renderer.close()
                _print_prompt(event)
            renderer.render(event)
        renderer.close()
    except BrokenPipeError:  # `inkagent trace show FILE | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    return 0


def _print_prompt(event: Any) -> None:
    """A prompt as the model received it: one block per message."""
    sys.stdout.write(f"--- prompt of turn {event.turn + 1} ({len(event.messages)} messages) ---\n")
    for message in event.messages:
        name = f" ({message['name']})" if message.get("name") else ""
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        sys.stdout.write(f"[{message.get('role', '?')}{name}]\n{text}\n")
    sys.stdout.write("--- end of prompt ---\n")
    sys.stdout.flush()


def replay(events: Iterable[Any]) -> Iterator[Any]:
    """The events of a trace in the order a live run showed them, with the turns' text put back.

    In a live run, a turn's text deltas, tool calls and parse errors arrive interleaved while the model
    streams, and the `ModelOutput` comes after them. A trace has the calls and errors but no deltas:
    here each turn's events are held until its `ModelOutput`, whose text is parsed again; its language
    becomes `TextDelta`s between the recorded calls and errors, in the order the parser finds them.
    """
    from ..schema import ModelOutput, PromptSent, TextDelta

    held: list[Any] = []
    in_turn = False
    for event in events:
        if isinstance(event, PromptSent):
            yield from held
            held, in_turn = [], True
            yield event
        elif in_turn and _during_stream(event):
            held.append(event)
        elif in_turn and isinstance(event, ModelOutput):
            if any(isinstance(e, TextDelta) for e in held):
                yield from held  # a trace that kept its deltas
            else:
                yield from _interleave(event.text, held)
            held, in_turn = [], False
            yield event
        else:
            yield from held
            held, in_turn = [], False
            yield event
    yield from held


def _during_stream(event: Any) -> bool:
    """Whether the agent emits this event while the model streams: a call, or a malformed call."""
    from ..schema import AgentError, ToolCallStarted

    return isinstance(event, ToolCallStarted) or (
        isinstance(event, AgentError) and event.kind == "parse_error"
    )


def _interleave(raw: str, recorded: list[Any]) -> Iterator[Any]:
    from ..protocols.internlm2_parser import CallInvalid, CallParsed, Internlm2StreamParser, TextPiece
    from ..schema import TextDelta

    parser = Internlm2StreamParser()
    queue = deque(recorded)
    for item in [*parser.feed(raw), *parser.close()]:
        if isinstance(item, TextPiece):
            yield TextDelta(text=item.text)
        elif isinstance(item, CallParsed | CallInvalid) and queue:
            yield queue.popleft()  # the recorded event keeps its call id, time and message
    yield from queue
