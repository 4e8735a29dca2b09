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


def stream_agent_returns(events: Iterable) -> Iterator:
    """Yield `AgentReturn` snapshots with lagent's `AgentStatusCode` sequence.

    STREAM_ING while language streams; PLUGIN_START/CODING, then PLUGIN_END/CODE_END with the call;
    PLUGIN_RETURN/CODE_RETURN once its result is in `actions`; a final END (or the failure's code).
    """
    from lagent.schema import AgentReturn, AgentStatusCode

    agent_return = AgentReturn(state=AgentStatusCode.SESSION_READY)
    call_states = {AgentStatusCode.PLUGIN_END, AgentStatusCode.CODE_END}
    language = ""
    errors: list[str] = []
    for event in events:
        if isinstance(event, PromptSent):
            language = ""
            continue
        if isinstance(event, TextDelta):
            language += event.text
            if not event.text.strip() and agent_return.state in call_states:
                continue  # the newline after <|action_end|> is not new language
            agent_return.state, agent_return.response = AgentStatusCode.STREAM_ING, language
        elif isinstance(event, ToolCallStarted):
            plugin = event.call.kind == "plugin"
            agent_return.state = AgentStatusCode.PLUGIN_START if plugin else AgentStatusCode.CODING
            agent_return.response = language.strip()
            yield deepcopy(agent_return)
            agent_return.state = AgentStatusCode.PLUGIN_END if plugin else AgentStatusCode.CODE_END
            agent_return.response = _call_dict(event.call)
            agent_return.inner_steps.append({"role": "language", "content": language.strip()})
            agent_return.inner_steps.append({"role": "tool", "content": _call_dict(event.call), "name": event.call.kind})
        elif isinstance(event, ToolResult):
            plugin = event.call.kind == "plugin"
            agent_return.actions.append(event.result.to_lagent(thought=language.strip()))
            agent_return.inner_steps.append({"role": "environment", "content": event.result.text(), "name": event.call.kind})
            agent_return.state = AgentStatusCode.PLUGIN_RETURN if plugin else AgentStatusCode.CODE_RETURN
            language = ""
        elif isinstance(event, AgentError):
            errors.append(event.message)
            if event.kind == "parse_error":
                agent_return.inner_steps.append({"role": "environment", "content": event.message, "name": "plugin"})
            continue
        elif isinstance(event, FinalAnswer):
            agent_return.state = getattr(AgentStatusCode, _END_STATE_CODES[event.state])
            agent_return.response = event.text
            if event.state == AgentState.ANSWERED:
                agent_return.inner_steps.append({"role": "language", "content": event.text})
            else:
                agent_return.errmsg = "; ".join(errors[-1:]) or event.state.value
        else:
            continue
        yield deepcopy(agent_return)


def agent_return_from_events(events: Iterable):
    """The final `AgentReturn` of a run."""
    from lagent.schema import AgentReturn

    last = AgentReturn()
    for last in stream_agent_returns(events):  # noqa: B007
        pass
    return last
