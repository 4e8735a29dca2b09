"""lagent 0.2.4's agent API, mixed into inkagent's `Internlm2Agent`.

What lagent code reads and calls on an agent (`lagent/agents/base_agent.py`, `internlm2_agent.py`):

- `chat(message)` -> `AgentReturn`; `stream_chat(message)` -> `AgentReturn` snapshots with lagent's
  `AgentStatusCode`s (see `inkagent.agents.lagent_view`); `batch_chat([...])` -> a list of them;
- `_llm`, `_protocol`, `_action_executor` (also `_plugin_executor`), `_interpreter_executor`: readable
  and settable, with effect on the next call (they are the agent's `llm`, `protocol`,
  `plugin_executor`, `interpreter_executor`);
- `add_action(action)` / `del_action(name)` on the plugin executor.

As in lagent, a list of messages is the whole conversation: `history.append(user);
agent.stream_chat(history); history.extend(agent_return.inner_steps)` sends every turn once. A string
(or one message dict) continues the agent's own session instead.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from copy import deepcopy
from types import ModuleType
from typing import Any

from .steps import steps_from_messages


def as_executor(actions: Any) -> Any:
    """An inkagent `ActionExecutor` from one, from a lagent one, from one action or a list of actions."""
    from ..actions.executor import ActionExecutor

    if actions is None or isinstance(actions, ActionExecutor):
        return actions
    if hasattr(actions, "actions") and isinstance(actions.actions, dict):  # a lagent ActionExecutor
        return ActionExecutor(list(actions.actions.values()))
    return ActionExecutor(list(actions) if isinstance(actions, list | tuple) else [actions])


def as_protocol(protocol: Any) -> Any:
    """inkagent's protocol for `protocol`: itself, or the same prompts as a lagent `Internlm2Protocol`."""
    if protocol is None or hasattr(protocol, "stream_parser"):
        return protocol
    from ..protocols.internlm2 import Internlm2Protocol

    return Internlm2Protocol.from_lagent(protocol)


def _lagent_messages(message: Any) -> list[dict]:
    """The messages lagent's agent starts from (its first `inner_steps`)."""
    if isinstance(message, str):
        return [{"role": "user", "content": message}]
    if isinstance(message, dict):
        return [deepcopy(message)]
    return [m if not isinstance(m, dict) else deepcopy(m) for m in message]


@functools.cache
def _lagent_view() -> ModuleType:
    """`inkagent.agents.lagent_view`, imported on first use (the agents package imports this module)."""
    from ..agents import lagent_view

    return lagent_view


class LagentAgentAPI:
    """lagent's agent API (see the module docstring). The host class provides `llm`, `protocol`,
    `plugin_executor`, `interpreter_executor`, `gen_params`, `_conversation()` and `_stream()`."""

    llm: Any
    protocol: Any
    plugin_executor: Any
    interpreter_executor: Any
    gen_params: dict[str, Any]

    # -- lagent's attributes -------------------------------------------------------------------
    @property
    def _llm(self) -> Any:
        return self.llm

    @_llm.setter
    def _llm(self, value: Any) -> None:
        self.llm = value

    @property
    def _protocol(self) -> Any:
        return self.protocol

    @_protocol.setter
    def _protocol(self, value: Any) -> None:
        self.protocol = as_protocol(value) or self.default_protocol()  # type: ignore[attr-defined]

    @property
    def _action_executor(self) -> Any:
        return self.plugin_executor

    @_action_executor.setter
    def _action_executor(self, value: Any) -> None:
        self.plugin_executor = as_executor(value)

    _plugin_executor = _action_executor

    @property
    def _interpreter_executor(self) -> Any:
        return self.interpreter_executor

    @_interpreter_executor.setter
    def _interpreter_executor(self, value: Any) -> None:
        self.interpreter_executor = as_executor(value)

    # -- lagent's methods ----------------------------------------------------------------------
    def add_action(self, action: Any) -> None:
        """Add a tool (an inkagent or lagent action) to the plugin executor, made if there is none."""
        if self.plugin_executor is None:
            self.plugin_executor = as_executor([action])
        else:
            self.plugin_executor.add_action(action)

    def del_action(self, name: str) -> None:
        """Remove a tool from the plugin executor (nothing happens if there is no such tool)."""
        if self.plugin_executor is not None:
            self.plugin_executor.del_action(name)

    def chat(self, message: str | dict | list[dict], **gen_params: Any):
        """Run to the end; return lagent's `AgentReturn` (`.response`, `.actions`, `.state`, `.inner_steps`).

        `message`: a string or one message dict continues the session; a list of messages is the whole
        conversation, as in lagent.
        """
        events, builder = self._lagent_run(message, gen_params)
        return _lagent_view().agent_return_from_events(events, builder)

    def stream_chat(self, message: str | dict | list[dict], **gen_params: Any) -> Iterator:
        """Yield lagent `AgentReturn` snapshots with lagent's `AgentStatusCode` states (as `chat`)."""
        events, builder = self._lagent_run(message, gen_params)
        yield from _lagent_view().stream_agent_returns(events, builder)

    def batch_chat(self, batch_messages: list[str | dict | list[dict]], **gen_params: Any) -> list:
        """lagent's batch call: one `AgentReturn` per conversation; each item stands alone (a string is
        a new conversation, not the session's next message). The conversations run one after another.

        Raises:
            TypeError: `batch_messages` is not a list.
        """
        if not isinstance(batch_messages, list):
            raise TypeError(f"batch_chat takes a list of conversations, not {type(batch_messages).__name__}")
        return [self.chat(_lagent_messages(message), **gen_params) for message in batch_messages]

    def _lagent_args(self, call: Any, arguments: dict) -> dict:
        """The `args` the called action's lagent `ActionReturn` shows (lagent's interpreter: `{"text": code}`)."""
        executor = self.interpreter_executor if call.kind == "interpreter" else self.plugin_executor
        bound = executor.resolve(call) if executor is not None else None
        lagent_args = getattr(getattr(bound, "owner", None), "lagent_args", None)
        return lagent_args(arguments) if callable(lagent_args) else arguments

    def _lagent_run(self, message: Any, gen_params: dict[str, Any]) -> tuple[Iterator, Any]:
        history, new = self._conversation(message)  # type: ignore[attr-defined]
        offset = len(history) + len(new)
        builder = _lagent_view().AgentReturnBuilder(
            steps=lambda: steps_from_messages(history[offset:]),
            initial_steps=_lagent_messages(message),
            lagent_args=self._lagent_args,
        )
        events = self._stream(history, new, {**self.gen_params, **gen_params})  # type: ignore[attr-defined]
        return events, builder
