"""lagent's view of a run: `AgentReturn` snapshots built from inkagent's events.

The snapshots follow lagent 0.2.4's `Internlm2Agent.stream_chat`
(`lagent/agents/internlm2_agent.py`), so code written against it reads the same values:

- language streams as `STREAM_ING` with `response` = the language so far;
- when a call starts, one snapshot carries the language in the state before, then the state becomes
  `CODING` (interpreter) or `PLUGIN_START` (plugin) and `response` is the call as written so far: for
  the interpreter `{"name": ..., "parameters": {"command": code}}` (code as the model writes it, ```
  fence included), for a plugin the raw JSON text;
- the complete call: `CODE_END` / `PLUGIN_END` with the call as a dict;
- its result: `CODE_RETURN` / `PLUGIN_RETURN`, with lagent's `ActionReturn` in `actions` (`args` is
  `{"text": code}` for the interpreter, the arguments for a plugin; `thought` is the language before it);
- `END` with the answer in `response` and lagent's `inner_steps`.

inkagent's own outcomes keep their meaning: a malformed call (lagent drops it) ends as `*_END` then
`*_RETURN` with an `ActionReturn` in the `ARGS_ERROR` state whose `errmsg` is what the model is told;
a run out of turns, a repeated failure and a model failure end in `SESSION_OUT_OF_LIMIT`,
`SESSION_INVALID_ARG` and `SERVER_ERR` with `errmsg` set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from ..schema import (
    AgentError,
    AgentState,
    FinalAnswer,
    ModelOutput,
    PromptSent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallStarted,
    ToolResult,
    UserMessage,
    lagent_schema,
)

_END_STATE_CODES = {
    AgentState.ANSWERED: "END",
    AgentState.MAX_TURN: "SESSION_OUT_OF_LIMIT",
    AgentState.REPEATED_FAILURE: "SESSION_INVALID_ARG",
    AgentState.LLM_ERROR: "SERVER_ERR",
    AgentState.EMPTY_ANSWER: "SERVER_ERR",  # the model gave nothing: a failure of the model's side
    AgentState.CANCELLED: "SESSION_CLOSED",
}


@dataclass
class _CallView:
    """The call being written, as lagent shows it."""

    kind: str
    name: str
    text: str = ""
    done: bool = False  # complete (parsed or found malformed)

    def partial(self) -> Any:
        """lagent's `response` while the call is written."""
        if self.kind == "interpreter":
            return {"name": self.name, "parameters": {"command": self.text.strip()}}
        return self.text  # lagent parses the plugin's JSON only once it is complete

    def complete(self, call: ToolCall) -> dict:
        if self.kind == "interpreter":
            return {"name": call.name, "parameters": {"command": self.code(call)}}
        return {"name": call.name, "parameters": call.arguments}

    def code(self, call: ToolCall) -> str:
        """The code as the model wrote it (lagent keeps the ``` fence), or as the call holds it."""
        from ..compat.steps import fence_code

        return self.text.strip() or fence_code(str(call.arguments.get("command", "")))


class AgentReturnBuilder:
    """Keeps one lagent `AgentReturn` up to date with the events of a run.

    Args:
        steps: gives lagent's `inner_steps` of the run so far (from the agent's history); without it
            they are collected from the events.
        initial_steps: `inner_steps` until the first result (lagent starts with the input messages).
        lagent_args: `(call, arguments) -> args` of the `ActionReturn` (each action shows its own; an
            interpreter's arguments hold the code as the model wrote it). Default: lagent's
            interpreter's `{"text": code}`, a plugin's arguments.
        on_snapshot: called with the `AgentReturn` each time a snapshot is due (lagent's `stream_chat`
            yields one there); `None` when only the final value is read.
    """

    def __init__(
        self,
        steps: Callable[[], list[dict]] | None = None,
        initial_steps: list[dict] | None = None,
        lagent_args: Callable[[ToolCall, dict], dict] | None = None,
        on_snapshot: Callable[[Any], None] | None = None,
    ) -> None:
        lagent = lagent_schema()
        self.codes = lagent.AgentStatusCode
        self._value = lagent.AgentReturn(state=self.codes.SESSION_READY, inner_steps=list(initial_steps or []))
        self._steps = steps
        self._steps_due = False  # `steps()` changed since `inner_steps` was last set (read when a snapshot is due)
        self._lagent_args = lagent_args
        self.on_snapshot = on_snapshot
        self._collected: list[dict] = []
        self.language = ""
        self.call: _CallView | None = None  # the call being written, or the last one of this turn
        self._views: dict[str, _CallView] = {}  # call id -> how it was written
        self._pending: list[Any] = []  # ActionReturns of malformed calls, shown after the turn
        self.last_error = ""

    @property
    def value(self) -> Any:
        """The `AgentReturn` as of the last event."""
        if self._steps_due:
            self._steps_due = False
            self._value.inner_steps = self._steps()  # type: ignore[misc]
        return self._value

    def feed(self, event: Any) -> None:
        """Apply one event (`on_snapshot` is called at each snapshot it makes due)."""
        handler = _HANDLERS.get(type(event))
        if handler is None:  # a subclass of an event type
            handler = next((_HANDLERS[cls] for cls in type(event).__mro__ if cls in _HANDLERS), None)
        if handler is not None:
            handler(self, event)

    # -- one method per event type -------------------------------------------------------------
    def _on_prompt(self, event: PromptSent) -> None:
        self._flush()
        self.language, self.call = "", None

    def _on_text(self, event: TextDelta) -> None:
        if self.call is not None:  # after a call: only real language starts streaming again
            if not event.text.strip():
                return
            self.call = None
        self.language += event.text
        ret = self._value
        ret.state, ret.response = self.codes.STREAM_ING, self.language
        self._snapshot()

    def _on_call_delta(self, event: ToolCallDelta) -> None:
        if event.start or self.call is None or self.call.done:
            self._start_call(event.kind, event.name or "IPythonInterpreter")
        assert self.call is not None
        self.call.text += event.text
        self._value.response = self.call.partial()
        self._snapshot()

    def _on_call(self, event: ToolCallStarted) -> None:
        call, ret = event.call, self._value
        if self.call is None or self.call.done or self.call.kind != call.kind:
            self._start_call(call.kind, call.name)  # a protocol that does not stream calls
        view = self.call
        assert view is not None
        view.done = True
        self._views[call.id] = view
        ret.state = self.codes.PLUGIN_END if call.kind == "plugin" else self.codes.CODE_END
        ret.response = view.complete(call)
        if self._steps is None:
            self._collect({"role": "language", "content": self.language.strip()})
            self._collect({"role": "tool", "content": view.complete(call), "name": call.kind})
        self._snapshot()

    def _on_result(self, event: ToolResult) -> None:
        self._flush()
        call, view = event.call, self._views.get(event.call.id)
        arguments = call.arguments
        if call.kind == "interpreter":
            arguments = {"command": view.code(call) if view else str(call.arguments.get("command", ""))}
        if self._lagent_args is not None:
            args = self._lagent_args(call, arguments)
        else:
            args = {"text": arguments["command"]} if call.kind == "interpreter" else arguments
        ret = self._value
        ret.actions.append(event.result.to_lagent(thought=self.language, args=args))
        if self._steps is None:
            self._collect({"role": "environment", "content": event.result.text(), "name": call.kind})
        ret.state = self.codes.PLUGIN_RETURN if call.kind == "plugin" else self.codes.CODE_RETURN
        self._update_steps()
        self._snapshot()

    def _on_error(self, event: AgentError) -> None:
        self.last_error = event.message
        if event.kind == "parse_error":
            self._malformed(event)
        else:
            self._flush()

    def _on_final(self, event: FinalAnswer) -> None:
        self._flush()
        ret = self._value
        ret.state = getattr(self.codes, _END_STATE_CODES[event.state])
        ret.response = event.text
        if event.state == AgentState.ANSWERED:
            self._collect({"role": "language", "content": event.text})
        else:
            ret.errmsg = self.last_error or event.state.value
        self._update_steps()
        self._snapshot()

    # -- internals -----------------------------------------------------------------------------
    def _snapshot(self) -> None:
        if self.on_snapshot is not None:
            self.on_snapshot(self.value)

    def _start_call(self, kind: str, name: str) -> None:
        codes, ret = self.codes, self._value
        state = codes.PLUGIN_START if kind == "plugin" else codes.CODING
        if ret.state != state:  # lagent shows the language once more, in the state before
            ret.response = self.language
            self._snapshot()
        ret.state = state
        self.call = _CallView(kind, name)

    def _malformed(self, event: AgentError) -> None:
        """A call the protocol could not read: shown as lagent shows a call, with its error as the result."""
        lagent = lagent_schema()
        codes, ret = self.codes, self._value
        kind = self.call.kind if self.call is not None else "plugin"
        raw = event.raw or (self.call.text if self.call is not None else "")
        ret.state = codes.PLUGIN_END if kind == "plugin" else codes.CODE_END
        ret.response = raw
        self._snapshot()
        name = self.call.name if kind == "interpreter" and self.call is not None else "InvalidAction"
        self._pending.append(
            (
                kind,
                lagent.ActionReturn(
                    args={"text": raw},
                    type=name,
                    errmsg=event.message,
                    state=lagent.ActionStatusCode.ARGS_ERROR,
                    thought=self.language,
                    valid=lagent.ActionValidCode.INVALID,
                ),
            )
        )
        self._collect({"role": "environment", "content": event.message, "name": "plugin"})
        self.call = self.call or _CallView(kind, name, raw)
        self.call.done = True

    def _flush(self) -> None:
        """The results of malformed calls, once the turn is in the history."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        for kind, action in pending:
            self._value.actions.append(action)
            self._value.state = self.codes.PLUGIN_RETURN if kind == "plugin" else self.codes.CODE_RETURN
            self._update_steps()
            self._snapshot()

    def _collect(self, step: dict) -> None:
        if self._steps is None:  # otherwise the steps come from the history
            self._collected.append(step)

    def _update_steps(self) -> None:
        if self._steps is None:
            self._value.inner_steps = deepcopy(self._collected)
        else:  # from the history, when next read (`chat()` reads only the last)
            self._steps_due = True


_HANDLERS: dict[type, Callable[[AgentReturnBuilder, Any], None]] = {
    PromptSent: AgentReturnBuilder._on_prompt,
    TextDelta: AgentReturnBuilder._on_text,
    ToolCallDelta: AgentReturnBuilder._on_call_delta,
    ToolCallStarted: AgentReturnBuilder._on_call,
    ToolResult: AgentReturnBuilder._on_result,
    AgentError: AgentReturnBuilder._on_error,
    FinalAnswer: AgentReturnBuilder._on_final,
    UserMessage: lambda builder, event: None,  # lagent shows neither
    ModelOutput: lambda builder, event: None,
}


def stream_agent_returns(events: Iterable, builder: AgentReturnBuilder | None = None) -> Iterator:
    """Yield `AgentReturn` snapshots (copies) with lagent's `AgentStatusCode` sequence."""
    builder = builder or AgentReturnBuilder()
    snapshots: list[Any] = []
    builder.on_snapshot = lambda value: snapshots.append(deepcopy(value))
    for event in events:
        builder.feed(event)
        while snapshots:
            yield snapshots.pop(0)


def agent_return_from_events(events: Iterable, builder: AgentReturnBuilder | None = None):
    """The final `AgentReturn` of a run (no intermediate copies)."""
    builder = builder or AgentReturnBuilder()
    feed, handlers = builder.feed, _HANDLERS
    for event in events:
        handler = handlers.get(type(event))
        if handler is not None:
            handler(builder, event)
        else:
            feed(event)
    return builder.value
