"""`inkagent chat CONFIG`: talk to an agent in a REPL that shows every tool call as it happens.

On a terminal, input comes from prompt_toolkit (history kept across sessions in `$INKAGENT_HOME/history`,
default `~/.inkagent/history`; multi-line input with Alt+Enter or a trailing backslash; Tab completes
slash commands and, after /save and /load, file names) and output goes through the shared event
renderer (`render.py`). Ctrl-C during a turn cancels it, model and running tool, and drops it from the
conversation; Ctrl-C at the prompt clears the line; Ctrl-D exits.

When stdin or stdout is not a terminal, lines are read from stdin (a trailing backslash continues a
message) and everything is printed as plain text, so a session can be scripted:

    printf 'What is 17 * 23?\\n/exit\\n' | inkagent chat configs/scripted.yaml

Any agent with `stream()`, `reset()` and `memory` works here: `Internlm2Agent`, persona `ChatAgent`s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from ..errors import InkAgentError

if TYPE_CHECKING:
    from ..schema import Message, ToolSpec
    from ..trace import TraceWriter
    from .render import EventRenderer

logger = logging.getLogger(__name__)

#: Format tag of a saved conversation (`/save`), so `/load` can tell it from any other JSON.
CONVERSATION_FORMAT = "inkagent-conversation"
PROMPT = "› "
KEYS_HELP = (
    "Enter sends · Alt+Enter or a trailing \\ adds a line · Tab completes commands · "
    "Ctrl-C cancels a turn or clears the line · Ctrl-D exits"
)


CHAT_HELP = """\
commands: /help  /tools  /reset  /history  /save FILE (/save! replaces)  /load FILE  /trace  /exit
          (//text sends /text)
keys:     Enter sends; Alt+Enter or a trailing \\ adds a line; Tab completes commands and file names;
          Ctrl-C cancels a running turn (model and tool) or clears the line; Ctrl-D exits
input history: $INKAGENT_HOME/history (default ~/.inkagent/history)
not a terminal: messages are read line by line from stdin and the output is plain text
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = CHAT_HELP
    parser.add_argument("config", help="YAML config file (see configs/ and `inkagent run --help`)")
    parser.add_argument(
        "--trace", help="append the session's trace here (default: the config's, or runs/<time>)"
    )
    parser.add_argument("--plain", action="store_true", help="plain text output, even on a terminal")


def inkagent_home() -> Path:
    """Where inkagent keeps per-user state (the REPL history): `$INKAGENT_HOME`, else `~/.inkagent`."""
    return Path(os.environ.get("INKAGENT_HOME") or Path.home() / ".inkagent").expanduser()


def run(args: argparse.Namespace) -> int:
    from .config import build_agent, load_config
    from .render import EventRenderer
    from .run import close_agent, default_trace_path

    try:
        config = load_config(args.config)
        trace_path = Path(args.trace or config.trace or default_trace_path())
        agent = build_agent(config, trace=trace_path)
    except InkAgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not callable(getattr(agent, "stream", None)):
        print(f"error: {type(agent).__name__} has no stream(), so it cannot chat", file=sys.stderr)
        close_agent(agent)
        return 2
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    renderer = EventRenderer(sys.stdout, plain=True if args.plain or not interactive else None)
    session = ChatSession(agent, renderer, trace_path=trace_path, config_path=Path(args.config))
    try:
        if interactive:
            session.banner()
            source: LineSource = TerminalInput(inkagent_home() / "history", session.command_help())
        else:
            source = StreamInput(sys.stdin)
        return session.loop(source)
    finally:
        session.close()


# -- input ------------------------------------------------------------------------------------------


class LineSource(Protocol):
    def read(self) -> str | None:
        """The next message or command; None at the end of input. Ctrl-C raises KeyboardInterrupt."""


class StreamInput:
    """Messages from a non-terminal stream, one per line; a line ending in a backslash continues."""

    interactive = False

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def read(self) -> str | None:
        parts: list[str] = []
        while True:
            line = self.stream.readline()
            if not line:
                return "\n".join(parts) if parts else None
            line = line.rstrip("\r\n")
            if line.endswith("\\"):
                parts.append(line[:-1])
                continue
            parts.append(line)
            return "\n".join(parts)


class TerminalInput:
    """prompt_toolkit input: persistent history, multi-line editing, completion of slash commands."""

    interactive = True

    def __init__(self, history_path: Path, commands: dict[str, str]):
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        history_path.parent.mkdir(parents=True, exist_ok=True)
        self.session: Any = PromptSession(
            history=FileHistory(str(history_path)),
            completer=_slash_completer(commands),
            complete_while_typing=True,
            multiline=True,  # Enter is rebound to send; see _key_bindings
            key_bindings=_key_bindings(),
            prompt_continuation=lambda width, line_number, is_soft_wrap: "… ".rjust(width),
        )

    def read(self) -> str | None:
        try:
            return self.session.prompt(PROMPT)
        except EOFError:
            return None


def _key_bindings() -> Any:
    from prompt_toolkit.key_binding import KeyBindings

    bindings = KeyBindings()

    @bindings.add("enter")
    def _send_or_continue(event: Any) -> None:
        buffer = event.current_buffer
        if buffer.document.is_cursor_at_the_end and buffer.text.endswith("\\"):
            buffer.delete_before_cursor(1)  # `text \` + Enter continues on a new line
            buffer.insert_text("\n")
        else:
            buffer.validate_and_handle()

    @bindings.add("escape", "enter")
    def _new_line(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    return bindings


def _slash_completer(commands: dict[str, str]) -> Any:
    from prompt_toolkit.completion import Completer, Completion, PathCompleter
    from prompt_toolkit.document import Document

    paths = PathCompleter(expanduser=True)

    class SlashCompleter(Completer):
        """Completes `/commands`, and file names after the commands that take one."""

        def get_completions(self, document: Any, complete_event: Any) -> Iterator[Any]:
            text = document.text_before_cursor
            if not text.startswith("/") or "\n" in text:
                return
            command, space, argument = text.partition(" ")
            if not space:
                for name, help_text in commands.items():
                    if name.startswith(text):
                        yield Completion(name, start_position=-len(text), display_meta=help_text)
            elif command in ("/save", "/save!", "/load"):
                yield from paths.get_completions(Document(argument, len(argument)), complete_event)

    return SlashCompleter()


# -- the session ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    usage: str
    help: str
    handler: Callable[[list[str]], bool]  # returns False to end the session


class ChatSession:
    """A conversation with one agent: turns, slash commands, and the trace of it all."""

    def __init__(
        self, agent: Any, renderer: EventRenderer, *, trace_path: Path, config_path: Path | None = None
    ):
        from ..trace import TraceWriter

        self.agent = agent
        self.renderer = renderer
        self.trace_path = trace_path
        self.config_path = config_path
        # An agent that writes no trace of its own (a skill agent) gets one written here.
        self._own_trace: TraceWriter | None = None
        if not isinstance(getattr(agent, "trace", None), TraceWriter):
            self._own_trace = TraceWriter(trace_path)
        self.commands: dict[str, Command] = {
            "/help": Command("/help", "this help", self._help),
            "/tools": Command("/tools", "the agent's tools and their parameters", self._tools),
            "/reset": Command("/reset", "forget the conversation", self._reset),
            "/history": Command("/history", "show the conversation so far", self._history),
            "/save": Command("/save FILE", "save the conversation as JSON (never over an existing file)", self._save),
            "/save!": Command("/save! FILE", "save the conversation, replacing FILE", self._save_replacing),
            "/load": Command("/load FILE", "restore a saved conversation", self._load),
            "/trace": Command("/trace", "where this session's trace is written", self._trace),
            "/exit": Command("/exit", "leave (or Ctrl-D)", lambda args: False),
        }

    def command_help(self) -> dict[str, str]:
        return {name: command.help for name, command in self.commands.items()}

    def close(self) -> None:
        self.renderer.close()
        if self._own_trace is not None:
            self._own_trace.close()
        from .run import close_agent

        close_agent(self.agent)

    # -- the loop --------------------------------------------------------------------------------
    def loop(self, source: LineSource) -> int:
        """Read and handle input until /exit or the end of input. Returns the exit status."""
        while True:
            try:
                text = source.read()
            except KeyboardInterrupt:
                if getattr(source, "interactive", False):
                    continue  # Ctrl-C at the prompt: prompt_toolkit dropped the line; ask again
                return 130
            if text is None:
                return 0
            if not self.handle(text):
                return 0

    def handle(self, text: str) -> bool:
        """One line of input: a slash command or a message. Returns False when the session should end."""
        stripped = text.strip()
        if not stripped:
            return True
        if stripped.startswith("/") and not stripped.startswith("//"):
            return self._command(stripped)
        self.ask(text[1:] if stripped.startswith("//") else text)  # `//x` sends `/x` to the model
        return True

    def ask(self, text: str) -> None:
        """Run one turn, rendering its events; Ctrl-C cancels it and leaves the conversation as it was."""
        stream = self.agent.stream(text)
        try:
            for event in stream:
                self._write_trace(event)
                self.renderer.render(event)
        except KeyboardInterrupt:
            with _sigint_ignored():  # a second Ctrl-C must not interrupt the clean-up
                stream.close()  # the agent drops the partial turn from its memory
                _interrupt_tools(self.agent)
                if self._own_trace is not None:
                    from ..schema import AgentError

                    self._own_trace.write(AgentError(kind="cancelled", message="the run was cancelled"))
                self.renderer.cancelled()
        except Exception as exc:  # an agent that raises instead of reporting: say so, keep the session
            logger.debug("the turn failed", exc_info=True)
            stream.close()
            self.renderer.close()
            self.renderer.note(f"error: {type(exc).__name__}: {exc} (the turn was dropped)", style="bold red")
        finally:
            self.renderer.close()

    def _write_trace(self, event: Any) -> None:
        from ..schema import TextDelta, ToolCallDelta

        if self._own_trace is not None and not isinstance(event, TextDelta | ToolCallDelta):
            self._own_trace.write(event)  # deltas are in the turn's ModelOutput

    # -- commands --------------------------------------------------------------------------------
    def _command(self, line: str) -> bool:
        try:
            words = shlex.split(line)
        except ValueError as exc:  # an unclosed quote
            self.renderer.note(f"cannot read the command: {exc}", style="red")
            return True
        name, args = words[0], words[1:]
        command = self.commands.get(name) or (self.commands["/exit"] if name == "/quit" else None)
        if command is None:
            self.renderer.note(f"unknown command {name}; /help lists them", style="red")
            return True
        try:
            return command.handler(args)
        except (OSError, ValueError, InkAgentError) as exc:
            self.renderer.note(f"{name} failed: {exc}", style="red")
            return True

    def banner(self) -> None:
        tools = len(tool_specs(self.agent))
        where = f"{self.config_path} · " if self.config_path else ""
        self.renderer.note(
            f"inkagent chat · {where}{type(self.agent).__name__} · {tools} tool{'s' if tools != 1 else ''}"
            f" · trace {self.trace_path}\n/help for commands · {KEYS_HELP}"
        )

    def _help(self, args: list[str]) -> bool:
        width = max(len(c.usage) for c in self.commands.values())
        lines = [f"{c.usage.ljust(width)}  {c.help}" for c in self.commands.values()]
        lines += ["//text".ljust(width) + "  send a message that starts with /", "", KEYS_HELP]
        self.renderer.note("\n".join(lines), style="")
        return True

    def _tools(self, args: list[str]) -> bool:
        specs = tool_specs(self.agent)
        if not specs:
            self.renderer.note("this agent has no tools")
            return True
        console = self.renderer.console
        if console is None:
            self.renderer.note("\n".join(_describe_spec_plain(spec) for spec in specs), style="")
            return True
        from rich.table import Table

        table = Table(show_header=True, header_style="bold", expand=False)
        table.add_column("tool", style="bold cyan", no_wrap=True)
        table.add_column("parameters")
        table.add_column("description", overflow="fold")
        for spec in specs:
            table.add_row(
                spec.name, "\n".join(_parameter_lines(spec)) or "(none)", _first_line(spec.description)
            )
        console.print(table)
        return True

    def _reset(self, args: list[str]) -> bool:
        self.agent.reset()
        self.renderer.note("the conversation was cleared")
        return True

    def _history(self, args: list[str]) -> bool:
        messages = list(getattr(self.agent, "memory", []) or [])
        if not messages:
            self.renderer.note("the conversation is empty")
            return True
        for message in messages:
            role, content, calls = _message_parts(message)
            if role == "environment":
                self.renderer.note(f"  ← {_clip(content, 300)}")
                continue
            label = {"user": "you", "assistant": "agent"}.get(role, role)
            if content:
                self.renderer.note(f"{label}: {content}", style="bold" if role == "user" else "")
            for call in calls:
                arguments = json.dumps(call.get("arguments", {}), ensure_ascii=False)
                self.renderer.note(f"  → {call.get('name')} {arguments}")
        return True

    def _save_replacing(self, args: list[str]) -> bool:
        return self._save(args, replace=True)

    def _save(self, args: list[str], *, replace: bool = False) -> bool:
        path = _one_path(args, "/save! FILE" if replace else "/save FILE")
        if path.exists() and not replace:
            self.renderer.note(f"{path} exists: /save! {args[0]} replaces it", style="red")
            return True
        messages = [_dump_message(m) for m in getattr(self.agent, "memory", [])]
        document = {"format": CONVERSATION_FORMAT, "version": 1, "messages": messages}
        if self.config_path is not None:
            document["config"] = str(self.config_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        self.renderer.note(f"saved {len(messages)} messages to {path}")
        return True

    def _load(self, args: list[str]) -> bool:
        path = _one_path(args, "/load FILE")
        messages = load_conversation(path)
        self.agent.memory = messages
        self.renderer.note(f"loaded {len(messages)} messages from {path}; /history shows them")
        return True

    def _trace(self, args: list[str]) -> bool:
        self.renderer.note(str(self.trace_path.resolve()), style="")
        return True


def load_conversation(path: Path) -> list[Message]:
    """The messages of a conversation saved by /save (or a bare JSON list of messages)."""
    from pydantic import TypeAdapter, ValidationError

    from ..schema import Message

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON (line {exc.lineno}: {exc.msg})") from exc
    if isinstance(document, dict):
        if document.get("format") != CONVERSATION_FORMAT:
            raise ValueError(f"{path} is not a conversation saved by /save")
        document = document.get("messages")
    try:
        return TypeAdapter(list[Message]).validate_python(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ValueError(f"{path}: messages.{where}: {error['msg']}") from exc


def tool_specs(agent: Any) -> list[ToolSpec]:
    """The tools an agent offers the model: its plugins, then its interpreter."""
    specs: list[ToolSpec] = []
    for attribute in ("plugin_executor", "interpreter_executor"):
        executor = getattr(agent, attribute, None)
        if executor is not None and callable(getattr(executor, "specs", None)):
            specs.extend(executor.specs())
    return specs


def _interrupt_tools(agent: Any) -> None:
    """Ask the agent's actions to stop running calls (an action may define `interrupt()`; the
    interpreter interrupts its kernel). Other calls are abandoned on their thread by the executor."""
    for attribute in ("plugin_executor", "interpreter_executor"):
        executor = getattr(agent, attribute, None)
        for action in getattr(executor, "actions", {}).values():
            interrupt = getattr(action, "interrupt", None)
            if callable(interrupt):
                try:
                    interrupt()
                except Exception:  # the turn is cancelled anyway; this must not end the session
                    logger.warning("interrupting %s failed", type(action).__name__, exc_info=True)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to protect
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _one_path(args: list[str], usage: str) -> Path:
    if len(args) != 1:
        raise ValueError(f"usage: {usage}")
    return Path(args[0]).expanduser()


def _dump_message(message: Any) -> dict[str, Any]:
    if hasattr(message, "model_dump"):
        return message.model_dump(mode="json")
    return dict(message)


def _message_parts(message: Any) -> tuple[str, str, list[dict[str, Any]]]:
    data = _dump_message(message)
    return str(data.get("role", "")), str(data.get("content", "")), list(data.get("tool_calls") or [])


def _parameter_lines(spec: ToolSpec) -> list[str]:
    properties = spec.parameters.get("properties", {})
    required = set(spec.parameters.get("required", []))
    lines = []
    for name, prop in properties.items():
        kind = prop.get("type") or "/".join(str(o.get("type", "?")) for o in prop.get("anyOf", [])) or "any"
        mark = "" if name in required else "?"
        description = f" — {prop['description']}" if prop.get("description") else ""
        lines.append(f"{name}{mark}: {kind}{description}")
    return lines


def _describe_spec_plain(spec: ToolSpec) -> str:
    head = f"{spec.name}: {_first_line(spec.description)}".rstrip(": ")
    return "\n".join([head, *("  " + line for line in _parameter_lines(spec))])


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
