"""lagent's view of a run: `AgentReturn` objects built from inkagent's events."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from copy import deepcopy

from ..schema import AgentError, AgentState, FinalAnswer, PromptSent, TextDelta, ToolCallStarted, ToolResult

_END_STATE_CODES = {
    AgentState.ANSWERED: "END",
    AgentState.MAX_TURN: "SESSION_OUT_OF_LIMIT",
    AgentState.REPEATED_FAILURE: "SESSION_INVALID_ARG",
    AgentState.LLM_ERROR: "SERVER_ERR",
    AgentState.CANCELLED: "SESSION_CLOSED",
}


def _call_dict(call) -> dict:
    return {"name": call.name, "parameters": call.arguments}


class _AgentReturnBuilder:
    """Keeps one `AgentReturn` up to date with the events of a run, in lagent's `AgentStatusCode` terms.

    STREAM_ING while language streams; PLUGIN_START/CODING, then PLUGIN_END/CODE_END with the call;
    PLUGIN_RETURN/CODE_RETURN once its result is in `actions`; a final END (or the failure's code).
    """

    def __init__(self) -> None:
        from lagent.schema import AgentReturn, AgentStatusCode

        self.codes = AgentStatusCode
        self.value = AgentReturn(state=AgentStatusCode.SESSION_READY)
        self.language = ""
        self.last_error = ""

    def update(self, event) -> str | None:
        """Apply one event. Returns "show" when a snapshot is due, "call" when a call starts (show the
        START state, then `call_end()` and show again), None when nothing changed for a lagent reader."""
        codes, ret = self.codes, self.value
        if isinstance(event, PromptSent):
            self.language = ""
            return None
        if isinstance(event, TextDelta):
            self.language += event.text
            if not event.text.strip() and ret.state in (codes.PLUGIN_END, codes.CODE_END):
                return None  # the newline after <|action_end|> is not new language
            ret.state, ret.response = codes.STREAM_ING, self.language
            return "show"
        if isinstance(event, ToolCallStarted):
            plugin = event.call.kind == "plugin"
            ret.state = codes.PLUGIN_START if plugin else codes.CODING
            ret.response = self.language.strip()
            ret.inner_steps.append({"role": "language", "content": self.language.strip()})
            ret.inner_steps.append({"role": "tool", "content": _call_dict(event.call), "name": event.call.kind})
            return "call"
        if isinstance(event, ToolResult):
            plugin = event.call.kind == "plugin"
            ret.actions.append(event.result.to_lagent(thought=self.language.strip()))
            ret.inner_steps.append({"role": "environment", "content": event.result.text(), "name": event.call.kind})
            ret.state = codes.PLUGIN_RETURN if plugin else codes.CODE_RETURN
            return "show"
        if isinstance(event, AgentError):
            self.last_error = event.message
            if event.kind == "parse_error":
                ret.inner_steps.append({"role": "environment", "content": event.message, "name": "plugin"})
            return None
        if isinstance(event, FinalAnswer):
            ret.state = getattr(codes, _END_STATE_CODES[event.state])
            ret.response = event.text
            if event.state == AgentState.ANSWERED:
                ret.inner_steps.append({"role": "language", "content": event.text})
            else:
                ret.errmsg = self.last_error or event.state.value
            return "show"
        return None

    def call_end(self, event: ToolCallStarted) -> None:
        plugin = event.call.kind == "plugin"
        self.value.state = self.codes.PLUGIN_END if plugin else self.codes.CODE_END
        self.value.response = _call_dict(event.call)


def stream_agent_returns(events: Iterable) -> Iterator:
    """Yield `AgentReturn` snapshots with lagent's `AgentStatusCode` sequence."""
    builder = _AgentReturnBuilder()
    for event in events:
        step = builder.update(event)
        if step == "call":
            yield deepcopy(builder.value)
            builder.call_end(event)
        if step is not None:
            yield deepcopy(builder.value)


def agent_return_from_events(events: Iterable):
    """The final `AgentReturn` of a run (no intermediate copies)."""
    builder = _AgentReturnBuilder()
    for event in events:
        if builder.update(event) == "call":
            builder.call_end(event)
    return builder.value
