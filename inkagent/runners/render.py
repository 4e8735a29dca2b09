"""One way to show agent events on a terminal, shared by `inkagent chat`, `inkagent run` and `trace show`.

On a terminal (rich): the model's text streams as it arrives; each tool call appears when the model
has written it (name, arguments as highlighted JSON, or code for the interpreter) with a running clock,
and is completed in place with its result or error and its duration; image results are shown as file
paths; errors that go back to the model say so. Anywhere else (a pipe, a file): the same content as
plain lines without escape codes, so transcripts can be read and grepped.

    renderer = EventRenderer(sys.stdout)
    try:
        for event in agent.stream("..."):
            renderer.render(event)
    finally:
        renderer.close()
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from ..schema import (
    AgentError,
    AgentState,
    FinalAnswer,
    ModelOutput,
    PromptSent,
    TextDelta,
    ToolCall,
    ToolCallStarted,
    ToolResult,
    UserMessage,
)

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from ..schema import ActionResult

#: Shown after an error the agent hands back to the model, so the user knows the run goes on.
SENT_BACK = "sent back to the model"
_MAX_RESULT_LINES = 20
_MAX_RESULT_CHARS = 2000
_COMPACT_JSON_CHARS = 80


@dataclass
class _CallView:
    """A tool call on screen: running until its result arrives."""

    call: ToolCall
    started: float = field(default_factory=time.perf_counter)
    result: ActionResult | None = None
    cancelled: bool = False


@dataclass
class _RunSummary:
    """What one run (a user message up to its final answer) did, for the line after the answer."""

    model_calls: int = 0
    tool_calls: int = 0
    failed_calls: int = 0
    started: float | None = None


class EventRenderer:
    """Shows agent events on `file` as they come.

    Args:
        file: where to write (a terminal gets rich output, anything else plain text).
        plain: force plain text (True) or rich output (False); by default, rich only on a terminal.
        live: animate running calls (a clock, completed in place). Off for replaying a saved trace,
            where each call is drawn once, complete.
        show_user: print the user's message (for traces; in the REPL the user just typed it).
        summary: after each answer, a short line: state, model calls, tool calls, duration.
        show_answer: print the final answer's text. Off where the answer goes elsewhere (`inkagent
            run` prints it on stdout): the model's text is then held until a tool call shows it was
            a thought, and an answer is not shown twice when stdout and stderr meet in one log.
    """

    def __init__(
        self,
        file: IO[str],
        *,
        plain: bool | None = None,
        live: bool = True,
        show_user: bool = False,
        summary: bool = True,
        show_answer: bool = True,
    ) -> None:
        self.file = file
        self.show_answer = show_answer
        self.plain = plain if plain is not None else not _is_terminal(file)
        self.live = live and not self.plain
        self.show_user = show_user
        self.summary = summary
        self.console: Console | None = None
        if not self.plain:
            from rich.console import Console

            self.console = Console(
                file=file, highlight=False, force_terminal=True if plain is False else None
            )
        self._calls: dict[str, _CallView] = {}
        self._live: Live | None = None
        self._held_text = ""  # text that arrived while calls were on screen, or trailing whitespace
        self._at_line_start = True
        self._text_in_turn = False
        self._run = _RunSummary()

    # -- public ------------------------------------------------------------------------------------
    def render(self, event: Any) -> None:
        """Show one event (unknown records, e.g. from a newer trace format, are ignored)."""
        if isinstance(event, TextDelta):
            self._text(event.text)
        elif isinstance(event, ToolCallStarted):
            self._call_started(event.call)
        elif isinstance(event, ToolResult):
            self._call_finished(event.call, event.result)
        elif isinstance(event, AgentError):
            self._error(event)
        elif isinstance(event, FinalAnswer):
            self._final(event)
        elif isinstance(event, PromptSent):
            self._run.model_calls += 1
            self._text_in_turn = False
            if not self._held_text.strip():
                self._held_text = ""
        elif isinstance(event, UserMessage):
            self._user(event)
        elif isinstance(event, ModelOutput):
            pass  # its text arrived as deltas

    def cancelled(self, message: str = "cancelled: the turn was dropped from the conversation") -> None:
        """The user stopped the run: mark running calls and say so."""
        for view in self._calls.values():
            if view.result is None:
                view.cancelled = True
        self.close()
        self._line(message, style="yellow", plain_prefix="[", plain_suffix="]")

    def close(self) -> None:
        """End the display of a run: draw calls that never finished, stop the clock, end the line."""
        self._stop_live()
        self._flush_text(final=True)
        self._end_line()

    def note(self, text: str, *, style: str = "dim") -> None:
        """A line of the program's own (REPL messages), styled on a terminal, plain elsewhere."""
        self._line(text, style=style)

    # -- text ------------------------------------------------------------------------------------
    def _text(self, text: str) -> None:
        self._held_text += text
        if self._calls or not self.show_answer:
            return  # printed once the calls on screen are complete, so lines do not interleave
        self._flush_text(final=False)

    def _flush_text(self, final: bool) -> None:
        text, self._held_text = self._held_text, ""
        if self._at_line_start:
            text = text.lstrip("\n")
        if final:
            text = text.rstrip()
        else:
            # hold trailing whitespace: the model often ends a thought with newlines before a call
            stripped = text.rstrip()
            self._held_text, text = text[len(stripped) :], stripped
        if text:
            self._write(text)
            self._text_in_turn = True

    def _write(self, text: str, style: str | None = None) -> None:
        if self.console is not None:
            from rich.text import Text

            self.console.print(Text(text, style=style or ""), end="", soft_wrap=True)
        else:
            self.file.write(text)
            self.file.flush()
        self._at_line_start = text.endswith("\n")

    def _end_line(self) -> None:
        if not self._at_line_start:
            self._write("\n")

    def _line(self, text: str, *, style: str = "", plain_prefix: str = "", plain_suffix: str = "") -> None:
        self._flush_text(final=True)
        self._end_line()
        if self.console is not None:
            from rich.text import Text

            self.console.print(Text(text, style=style), soft_wrap=True)
        else:
            self.file.write(f"{plain_prefix}{text}{plain_suffix}\n")
            self.file.flush()
        self._at_line_start = True

    # -- events ------------------------------------------------------------------------------------
    def _user(self, event: UserMessage) -> None:
        self._run = _RunSummary(started=event.time)
        if self.show_user:
            self._line(f"> {event.text}", style="bold cyan")

    def _call_started(self, call: ToolCall) -> None:
        self._flush_text(final=False)
        self._end_line()
        self._calls[call.id] = _CallView(call)
        self._run.tool_calls += 1
        if self.plain:
            self._plain_line(f"→ {call.name} {_compact_arguments(call)}")
        elif self.live:
            self._refresh_live()

    def _call_finished(self, call: ToolCall, result: ActionResult) -> None:
        view = self._calls.get(call.id)
        if view is None:  # a result without a start event (a trace cut at the front)
            view = self._calls[call.id] = _CallView(call)
            self._run.tool_calls += 1
        view.result = result
        if not result.ok:
            self._run.failed_calls += 1
        if self.plain:
            self._plain_result(result)
        elif self.live:
            self._refresh_live()
        if all(v.result is not None for v in self._calls.values()):
            self._stop_live()
            self._flush_text(final=False)

    def _error(self, event: AgentError) -> None:
        if event.kind == "parse_error":
            raw = f"\n  wrote: {_one_line(event.raw, 200)}" if event.raw else ""
            self._line(f"✗ malformed tool call ({SENT_BACK}): {event.message}{raw}", style="red")
        elif event.kind == "cancelled":
            self._stop_live(cancelled=True)
            self._line("cancelled", style="yellow", plain_prefix="[", plain_suffix="]")
        else:
            self._stop_live()
            self._line(f"error: {event.message}", style="bold red")

    def _final(self, event: FinalAnswer) -> None:
        self._stop_live()
        if not self.show_answer:
            self._held_text = ""  # the answer is printed elsewhere
        elif event.text and not self._text_in_turn and not self._held_text.strip():
            self._held_text = event.text  # an agent that does not stream, or a replayed trace
        self._flush_text(final=True)
        self._end_line()
        if self.summary and not self.plain:
            self._line(
                self._summary_text(event), style="dim" if event.state == AgentState.ANSWERED else "yellow"
            )
        elif event.state != AgentState.ANSWERED:
            self._line(f"no answer: {event.state.value}", plain_prefix="[", plain_suffix="]")
        self._run = _RunSummary()

    def _summary_text(self, event: FinalAnswer) -> str:
        run = self._run
        parts = [
            event.state.value if event.state == AgentState.ANSWERED else f"no answer ({event.state.value})"
        ]
        parts.append(_count(run.model_calls, "model call"))
        calls = _count(run.tool_calls, "tool call")
        parts.append(calls + (f" ({run.failed_calls} failed)" if run.failed_calls else ""))
        if run.started is not None:
            parts.append(f"{max(0.0, event.time - run.started):.1f} s")
        return " · ".join(parts)

    # -- plain -------------------------------------------------------------------------------------
    def _plain_line(self, text: str) -> None:
        self._end_line()
        self.file.write(text + "\n")
        self.file.flush()
        self._at_line_start = True

    def _plain_result(self, result: ActionResult) -> None:
        took = f"{result.duration_s:.2f} s"
        if result.ok:
            self._plain_line(f"← {result.name} ({took}): {_one_line(result.output, 300)}")
        else:
            kind = f" ({result.error_type})" if result.error_type else ""
            self._plain_line(
                f"✗ {result.name} failed{kind} ({took}), {SENT_BACK}: {_one_line(result.error, 300)}"
            )
        for path in result.files:
            self._plain_line(f"  image: {path}")

    # -- rich ------------------------------------------------------------------------------------
    def _refresh_live(self) -> None:
        renderable = _CallsView(list(self._calls.values()))
        if self._live is None:
            from rich.live import Live

            self._live = Live(renderable, console=self.console, refresh_per_second=4, transient=False)
            self._live.start()
        else:
            self._live.update(renderable, refresh=True)

    def _stop_live(self, cancelled: bool = False) -> None:
        """Draw the calls on screen in their final state and forget them."""
        if not self._calls:
            return
        if cancelled:
            for view in self._calls.values():
                view.cancelled = view.cancelled or view.result is None
        if self.plain:
            for view in self._calls.values():
                if view.result is None:
                    self._plain_line(f"✗ {view.call.name}: {'cancelled' if view.cancelled else 'no result'}")
        else:
            final = _CallsView(list(self._calls.values()), final=True)
            if self._live is not None:
                self._live.update(final, refresh=True)
                self._live.stop()
            else:
                assert self.console is not None
                self.console.print(final)
            self._at_line_start = True
        self._live = None
        self._calls = {}


class _CallsView:
    """The calls of one turn as panels; `__rich__` is evaluated at each refresh, so clocks tick."""

    def __init__(self, views: list[_CallView], final: bool = False):
        self.views = views
        self.final = final

    def __rich__(self) -> RenderableType:
        from rich.console import Group

        return Group(*(_call_panel(view, self.final) for view in self.views))


def _call_panel(view: _CallView, final: bool) -> RenderableType:
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    call, result = view.call, view.result
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("code" if call.kind == "interpreter" else "args", _arguments_renderable(call))
    if result is None:
        elapsed = time.perf_counter() - view.started
        if view.cancelled:
            title, style = f"■ {call.name} · cancelled after {elapsed:.1f} s", "yellow"
        elif final:
            title, style = f"? {call.name} · no result", "yellow"
        else:
            title, style = f"⏳ {call.name} · running {elapsed:.1f} s", "blue"
    elif result.ok:
        title, style = f"✓ {call.name} · {result.duration_s:.2f} s", "green"
        if result.output:
            grid.add_row("result", Text(_clip(result.output)))
    else:
        kind = f" ({result.error_type})" if result.error_type else ""
        title, style = f"✗ {call.name} · failed{kind} · {result.duration_s:.2f} s", "red"
        grid.add_row("error", Text(_clip(result.error or ""), style="red"))
        grid.add_row("", Text(f"↩ {SENT_BACK}", style="italic red"))
    if result is not None:
        for path in result.files:
            grid.add_row("image", Text(path, style="underline"))
    return Panel(
        grid, title=Text(title, style=f"bold {style}"), title_align="left", border_style=style, expand=False
    )


def _arguments_renderable(call: ToolCall) -> RenderableType:
    from rich.json import JSON
    from rich.syntax import Syntax

    code = call.arguments.get("command") if call.kind == "interpreter" else None
    if isinstance(code, str):
        return Syntax(code, "python", theme="ansi_dark", background_color="default", word_wrap=True)
    compact = json.dumps(call.arguments, ensure_ascii=False, default=str)
    indent = None if len(compact) <= _COMPACT_JSON_CHARS else 2
    return JSON.from_data(call.arguments, indent=indent, ensure_ascii=False, default=str)


def _compact_arguments(call: ToolCall) -> str:
    if call.kind == "interpreter" and isinstance(call.arguments.get("command"), str):
        code = call.arguments["command"]
        return "\n" + "\n".join("    " + line for line in code.splitlines())
    return json.dumps(call.arguments, ensure_ascii=False, default=str)


def _clip(text: str) -> str:
    """At most a screenful of a result: the model gets all of it, the screen a preview."""
    lines = text.splitlines()
    clipped = "\n".join(lines[:_MAX_RESULT_LINES])
    if len(clipped) > _MAX_RESULT_CHARS:
        clipped = clipped[:_MAX_RESULT_CHARS]
    if len(clipped) < len(text.rstrip()):
        clipped += f"\n… ({len(text)} characters, {len(lines)} lines in all)"
    return clipped


def _one_line(text: str | None, limit: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _is_terminal(file: IO[str]) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):  # a closed or fake file
        return False
