"""`Internlm2Agent`: the plugin + interpreter loop of InternLM2, as a stream of typed events.

One turn: format the history, stream the model's output through the protocol's parser, run the calls,
put their results back as environment messages; repeat until the model answers or `max_turn` runs out.
A malformed call is never dropped: its reason goes back to the model as the environment's answer.
`chat()`, `stream_chat()` and the rest of lagent's agent API come from `inkagent.compat.lagent_agent`.

lagent's names of this module are here too, so that `from lagent.agents.internlm2_agent import
INTERPRETER_CN, META_CN, PLUGIN_CN, Internlm2Agent, Internlm2Protocol` ports by renaming the package.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from ..actions.executor import ActionExecutor
from ..compat.lagent_agent import LagentAgentAPI, as_executor, as_protocol
from ..compat.steps import messages_from_steps
from ..errors import LLMError
from ..protocols.internlm2 import Internlm2Protocol
from ..protocols.internlm2_parser import (
    CallInvalid,
    CallParsed,
    CallStarted,
    CallText,
    TextPiece,
    normalize_special_tokens,
)
from ..protocols.prompts import INTERPRETER_ZH as INTERPRETER_CN
from ..protocols.prompts import META_ZH as META_CN
from ..protocols.prompts import PLUGIN_ZH as PLUGIN_CN
from ..schema import (
    ActionResult,
    AgentError,
    AgentEvent,
    AgentState,
    FinalAnswer,
    Message,
    ModelOutput,
    PromptSent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallStarted,
    ToolResult,
    UserMessage,
)
from ..trace import TraceWriter
from .llm_stream import stream_llm

__all__ = ["INTERPRETER_CN", "META_CN", "PLUGIN_CN", "Internlm2Agent", "Internlm2Protocol", "as_executor"]

logger = logging.getLogger(__name__)

_STREAMED = (TextDelta, ToolCallDelta)  # not traced: the turn's ModelOutput holds the whole text


class Internlm2Agent(LagentAgentAPI):
    """An agent speaking the InternLM2 protocol (lagent's constructor arguments, plus `trace`).

    Args:
        llm: an inkagent backend or any lagent model (`stream_chat` or `chat`).
        plugin_executor: the tools, as an `ActionExecutor` (inkagent's or lagent's) or a list of actions.
        interpreter_executor: the code interpreter, same forms; `None` for no interpreter.
        protocol: how prompts are formatted and outputs parsed; `Internlm2Protocol()` by default.
        max_turn: model calls per `chat()` before giving up (the run then ends in `AgentState.MAX_TURN`).
        trace: a path (or `TraceWriter`) that receives every event as a JSON line.
        max_repeats: stop when the same call fails the same way this many times in a row.
        **gen_params: generation parameters for every model call (a call's own override them).

    A string (or one message dict) given to `stream` / `chat` / `stream_chat` continues this agent's
    session (`memory`); a list of messages is the whole conversation, as in lagent (earlier turns
    included, lagent's `inner_steps` roles accepted), and leaves the session as it was.
    """

    def __init__(
        self,
        llm: Any,
        plugin_executor: Any = None,
        interpreter_executor: Any = None,
        protocol: Internlm2Protocol | None = None,
        max_turn: int = 3,
        *,
        trace: str | os.PathLike[str] | TraceWriter | None = None,
        max_repeats: int = 2,
        **gen_params: Any,
    ) -> None:
        self.llm = llm
        self.plugin_executor = as_executor(plugin_executor)
        self.interpreter_executor = as_executor(interpreter_executor)
        self.protocol = as_protocol(protocol) or Internlm2Protocol()  # a lagent protocol: same prompts
        self.max_turn = max_turn
        self.max_repeats = max_repeats
        self.gen_params = gen_params
        self.trace = trace if isinstance(trace, TraceWriter) or trace is None else TraceWriter(trace)
        self.memory: list[Message] = []

    def reset(self) -> None:
        """Forget the conversation (the tools keep their state; see `close()`)."""
        self.memory = []

    def close(self) -> None:
        for executor in (self.plugin_executor, self.interpreter_executor):
            if executor is not None:
                executor.close()
        if self.trace is not None:
            self.trace.close()

    def __enter__(self) -> Internlm2Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the loop ------------------------------------------------------------------------------
    def stream(self, message: str | dict | list[dict], **gen_params: Any) -> Iterator[AgentEvent]:
        """Yield the run's events: prompt, text deltas, tool calls and results, errors, final answer.

        `message`: a string or a message dict continues the session; a list of messages is the whole
        conversation (see the class docstring).

        Raises:
            ValueError: a message list with an unknown role (lagent's roles are accepted).
        """
        history, new = self._conversation(message)
        return self._stream(history, new, {**self.gen_params, **gen_params})

    def _conversation(self, message: str | dict | list[dict]) -> tuple[list[Message], list[Message]]:
        """The history to run on and the new user messages to add to it."""
        if isinstance(message, str):
            return self.memory, [Message(role="user", content=message)]
        if isinstance(message, dict | Message):
            return self.memory, messages_from_steps([message])
        messages = messages_from_steps(message)
        split = len(messages)
        while split > 0 and messages[split - 1].role == "user":
            split -= 1
        return messages[:split], messages[split:]

    def _stream(self, history: list[Message], new: list[Message], gen_params: dict[str, Any]) -> Iterator[AgentEvent]:
        start_len = len(history)
        finished = False
        try:
            for event in self._run(history, new, gen_params):
                if self.trace is not None and not isinstance(event, _STREAMED):
                    self.trace.write(event)  # deltas are in the turn's ModelOutput
                yield event
            finished = True
        finally:
            if not finished:  # the consumer stopped (Ctrl-C, closed generator): drop the partial turn
                del history[start_len:]
                if self.trace is not None:
                    self.trace.write(AgentError(kind="cancelled", message="the run was cancelled"))

    def _run(self, history: list[Message], new: list[Message], gen_params: dict[str, Any]) -> Iterator[AgentEvent]:
        for user in new:
            history.append(user)
            yield UserMessage(text=user.content)
        last_failures: dict[str, int] = {}
        for turn in range(self.max_turn):
            prompt = self.protocol.format(history, self.plugin_executor, self.interpreter_executor)
            yield PromptSent(turn=turn, messages=prompt)
            parser = self.protocol.stream_parser(self._interpreter_name())
            raw: list[str] = []
            invalid: list[CallInvalid] = []
            started = time.perf_counter()
            try:
                for chunk in stream_llm(self.llm, prompt, **gen_params):
                    raw.append(chunk)
                    for item in parser.feed(chunk):
                        if (event := self._on_item(item, invalid)) is not None:
                            yield event
                for item in parser.close():
                    if (event := self._on_item(item, invalid)) is not None:
                        yield event
            except Exception as exc:  # the backend failed: end the run with the reason, keep the session
                reason = str(exc) if isinstance(exc, LLMError) else f"{type(exc).__name__}: {exc}"
                logger.debug("model call failed", exc_info=True)
                yield AgentError(kind="llm_error", message=f"The model failed: {reason}")
                yield FinalAnswer(text="", state=AgentState.LLM_ERROR)
                return
            raw_text = "".join(raw)
            yield ModelOutput(turn=turn, text=raw_text, duration_s=time.perf_counter() - started)
            parsed = parser.result()
            if parsed.is_answer:
                history.append(Message(role="assistant", content=parsed.thought))
                yield FinalAnswer(text=parsed.thought)
                return

            results = self._run_calls(parsed.calls)
            if invalid:  # the model sees what it wrote, then why it is wrong
                history.append(Message(role="assistant", content=_turn_text(raw_text)))
            else:
                history.append(Message(role="assistant", content=parsed.thought, tool_calls=parsed.calls))
            for call, result in zip(parsed.calls, results, strict=True):
                history.append(self.protocol.format_result(call, result))
            for bad in invalid:
                history.append(Message(role="environment", content=bad.message, name="plugin"))
            for call, result in zip(parsed.calls, results, strict=True):
                yield ToolResult(call=call, result=result)

            failures = {_failure_key(c, r) for c, r in zip(parsed.calls, results, strict=True) if not r.ok}
            failures |= {json.dumps(["parse", bad.raw, bad.message]) for bad in invalid}
            last_failures = {key: last_failures.get(key, 0) + 1 for key in failures}
            all_failed = all(not r.ok for r in results)
            if failures and all_failed and min(last_failures.values()) >= self.max_repeats:
                yield AgentError(
                    kind="repeated_failure",
                    message=f"The model repeated the same failing call {self.max_repeats} times in a row; stopped.",
                )
                yield FinalAnswer(text="", state=AgentState.REPEATED_FAILURE)
                return
        yield AgentError(kind="max_turn", message=f"No answer after max_turn={self.max_turn} model calls.")
        yield FinalAnswer(text="", state=AgentState.MAX_TURN)

    def _on_item(self, item: Any, invalid: list[CallInvalid]) -> AgentEvent | None:
        """The event for one parser item (a call streams as it is written; it is announced once complete)."""
        if isinstance(item, TextPiece):
            return TextDelta(text=item.text)
        if isinstance(item, CallStarted):
            name = self._interpreter_name() if item.kind == "interpreter" else None
            return ToolCallDelta(kind=item.kind, name=name, start=True)
        if isinstance(item, CallText):
            return ToolCallDelta(kind=item.kind, text=item.text)
        if isinstance(item, CallParsed):
            return ToolCallStarted(call=item.call)
        if isinstance(item, CallInvalid):
            invalid.append(item)
            return AgentError(kind="parse_error", message=item.message, raw=item.raw)
        return None

    def _run_calls(self, calls: list[ToolCall]) -> list[ActionResult]:
        results: list[ActionResult | None] = [None] * len(calls)
        for kind, executor in (("plugin", self.plugin_executor), ("interpreter", self.interpreter_executor)):
            indexes = [i for i, call in enumerate(calls) if call.kind == kind]
            if not indexes:
                continue
            if executor is None:
                for i in indexes:
                    results[i] = _no_executor(calls[i], self.plugin_executor)
                continue
            for i, result in zip(indexes, executor.run_all([calls[i] for i in indexes]), strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    def _interpreter_name(self) -> str:
        if self.interpreter_executor is not None and self.interpreter_executor.api_names():
            return self.interpreter_executor.api_names()[0]
        return "IPythonInterpreter"


def _user_messages(message: str | dict | list[dict]) -> list[Message]:
    if isinstance(message, str):
        return [Message(role="user", content=message)]
    if isinstance(message, dict):
        message = [message]
    return [m if isinstance(m, Message) else Message(role=m.get("role", "user"), content=m.get("content", "")) for m in message]


def _turn_text(raw: str) -> str:
    """The model's output as it belongs in the history: special tokens normalised, cut at <|im_end|>."""
    text = normalize_special_tokens(raw)
    return text.split("<|im_end|>", 1)[0]


def _failure_key(call: ToolCall, result: ActionResult) -> str:
    return json.dumps([call.name, call.arguments, result.error], sort_keys=True, ensure_ascii=False, default=str)


def _no_executor(call: ToolCall, plugin_executor: ActionExecutor | None) -> ActionResult:
    if call.kind == "interpreter":
        tools = ", ".join(plugin_executor.api_names()) if plugin_executor else "none"
        message = f"No code interpreter is available. Use the tools instead: {tools}."
    else:
        message = f"Unknown tool '{call.name}'. No tools are available; answer directly."
    return ActionResult(name=call.name, arguments=call.arguments, error=message, error_type="unknown_tool", call_id=call.id)
