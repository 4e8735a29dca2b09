"""`ToolAgent`: the one tool-calling loop, on any `ToolProtocol`, as a stream of typed events.

One turn: the protocol makes the request from the history, the model's output streams through the
protocol's parser, the calls run, their results go back in the protocol's form; repeat until the model
answers or `max_turn` runs out. A malformed call is never dropped: its reason goes back to the model.
An empty reply is not an answer: the model is told once and tries again (a second one ends the run in
`AgentState.EMPTY_ANSWER`). `chat()`, `stream_chat()` and the rest of lagent's agent API come from
`inkagent.compat.lagent_agent`.
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
from ..protocols.base import CallInvalid, CallParsed, CallStarted, CallText, TextPiece, ToolProtocol
from ..schema import (
    EMPTY_REPLY_NOTE,
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
from .llm_stream import backend_stop_words, stream_llm

__all__ = ["EMPTY_REPLY_NOTE", "ToolAgent"]

logger = logging.getLogger(__name__)

_STREAMED = (TextDelta, ToolCallDelta)  # not traced: the turn's ModelOutput holds the whole text

# The events a turn makes most of, made as `Event(**fields)` makes them (the model's validator) but
# called directly: `make(fields)` skips the Python-level `__init__`, a third of an event's cost.
_TEXT_DELTA, _CALL_DELTA, _CALL_STARTED, _MODEL_OUTPUT, _TOOL_RESULT = (
    event.__pydantic_validator__.validate_python
    for event in (TextDelta, ToolCallDelta, ToolCallStarted, ModelOutput, ToolResult)
)


class ToolAgent(LagentAgentAPI):
    """An agent that calls tools through a `ToolProtocol` (lagent's constructor arguments, plus `trace`).

    Args:
        llm: an inkagent backend or any lagent model (`stream_chat` or `chat`); a native protocol
            (`OpenAIToolsProtocol`) needs `stream_deltas` (`OpenAICompatible(mode="chat")`).
        plugin_executor: the tools, as an `ActionExecutor` (inkagent's or lagent's) or a list of actions.
        interpreter_executor: the code interpreter, same forms; `None` for no interpreter.
        protocol: the tool-call format (`inkagent.protocols`), or a lagent `Internlm2Protocol`.
        max_turn: model calls per `chat()` before giving up (the run then ends in `AgentState.MAX_TURN`).
        trace: a path (or `TraceWriter`) that receives every event as a JSON line.
        max_repeats: stop when the same call fails the same way this many times in a row.
        **gen_params: generation parameters for every model call (a call's own override them).

    Raises:
        ConfigError: the backend cannot serve the protocol (`protocol.check_backend`).

    A string (or one message dict) given to `stream` / `chat` / `stream_chat` continues this agent's
    session (`memory`); a list of messages is the whole conversation, as in lagent (earlier turns
    included, lagent's `inner_steps` roles accepted), and leaves the session as it was.
    """

    def __init__(
        self,
        llm: Any,
        plugin_executor: Any = None,
        interpreter_executor: Any = None,
        protocol: ToolProtocol | Any = None,
        max_turn: int = 3,
        *,
        trace: str | os.PathLike[str] | TraceWriter | None = None,
        max_repeats: int = 2,
        **gen_params: Any,
    ) -> None:
        self.llm = llm
        self.plugin_executor = as_executor(plugin_executor)
        self.interpreter_executor = as_executor(interpreter_executor)
        self.protocol = as_protocol(protocol) or self.default_protocol()
        self.protocol.check_backend(llm)
        self.max_turn = max_turn
        self.max_repeats = max_repeats
        self.gen_params = gen_params
        self.trace = trace if isinstance(trace, TraceWriter) or trace is None else TraceWriter(trace)
        self.memory: list[Message] = []

    @staticmethod
    def default_protocol() -> ToolProtocol:
        """The protocol used when none is given (InternLM2's, with lagent's Chinese prompts)."""
        from ..protocols.internlm2 import Internlm2Protocol

        return Internlm2Protocol()

    def reset(self) -> None:
        """Forget the conversation (the tools keep their state; see `close()`)."""
        self.memory = []

    def close(self) -> None:
        for executor in (self.plugin_executor, self.interpreter_executor):
            if executor is not None:
                executor.close()
        if self.trace is not None:
            self.trace.close()

    def __enter__(self) -> ToolAgent:
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

    def _run(self, history: list[Message], new: list[Message], gen_params: dict[str, Any]) -> Iterator[AgentEvent]:
        for user in new:
            history.append(user)
            yield UserMessage(text=user.content)
        repeats, told_empty = _RepeatedFailures(self.max_repeats), False
        own_stop_words = backend_stop_words(self.llm, gen_params)
        for turn in range(self.max_turn):
            request = self.protocol.request(history, self.plugin_executor, self.interpreter_executor)
            yield PromptSent.of(turn, request.messages)
            interpreter = self._interpreter_name()
            output = _Output(self.protocol.stream_parser(interpreter), interpreter)
            try:
                yield from output.read(self._model_stream(request, gen_params, own_stop_words))
            except Exception as exc:  # the backend failed: end the run with the reason, keep the session
                yield from _model_failed(exc)
                return
            yield _MODEL_OUTPUT({"turn": turn, "text": output.raw, "duration_s": output.duration_s})
            parsed = output.parser.result()
            empty = parsed.is_answer and self._is_empty(parsed.thought, own_stop_words)
            if parsed.is_answer and (not empty or told_empty):
                yield from _final(history, "" if empty else parsed.thought)
                return
            if parsed.is_answer:  # an empty reply: the model is told once
                told_empty = True
                history += [Message(role="assistant", content=""), Message(role="environment", content=EMPTY_REPLY_NOTE)]
                yield AgentError(kind="empty_reply", message=EMPTY_REPLY_NOTE)
                continue
            results = self._run_calls(parsed.calls)
            history.append(self.protocol.assistant_message(output.raw, parsed, output.invalid))
            history += [self.protocol.format_result(c, r) for c, r in zip(parsed.calls, results, strict=True)]
            history += [self.protocol.format_invalid(bad) for bad in output.invalid]
            for call, result in zip(parsed.calls, results, strict=True):
                yield _TOOL_RESULT({"call": call, "result": result})
            if repeats.stop(parsed.calls, results, output.invalid):
                yield AgentError(kind="repeated_failure",
                                 message=f"The model repeated the same failing call {self.max_repeats} times in a row; stopped.")
                yield FinalAnswer(text="", state=AgentState.REPEATED_FAILURE)
                return
        yield AgentError(kind="max_turn", message=f"No answer after max_turn={self.max_turn} model calls.")
        yield FinalAnswer(text="", state=AgentState.MAX_TURN)

    # -- the parts of a turn -------------------------------------------------------------------
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
            if self.trace is None:
                yield from self._run(history, new, gen_params)
            else:
                for event in self._run(history, new, gen_params):
                    if not isinstance(event, _STREAMED):
                        self.trace.write(event)  # deltas are in the turn's ModelOutput
                    yield event
            finished = True
        finally:
            if not finished:  # the consumer stopped (Ctrl-C, closed generator): drop the partial turn
                del history[start_len:]
                if self.trace is not None:
                    self.trace.write(AgentError(kind="cancelled", message="the run was cancelled"))

    def _model_stream(self, request: Any, gen_params: dict[str, Any], own: list[str]) -> Iterator[Any]:
        """The model's output for `request`: text deltas, and `ToolCallChunk`s for a native protocol.
        The protocol's stop words are added to the backend's, `own` (nothing is sent when it adds none)."""
        params = {**gen_params, **request.gen_params(own)}
        if params.get("stop_words") == own:
            params.pop("stop_words")
            if "stop_words" in gen_params:
                params["stop_words"] = gen_params["stop_words"]
        return stream_llm(self.llm, request.messages, native=self.protocol.native_tools, **params)

    def _is_empty(self, text: str, own_stop_words: list[str]) -> bool:
        """Whether an answer says nothing: blank once end-of-turn tokens (the backend's stop words,
        `own_stop_words`, and the protocol's) are removed."""
        for word in (*own_stop_words, *self.protocol.stop_words):
            text = text.replace(word, "")
        return not text.strip()

    def _run_calls(self, calls: list[ToolCall]) -> list[ActionResult]:
        if self.plugin_executor is not None and all(call.kind == "plugin" for call in calls):
            return self.plugin_executor.run_all(calls)  # the common case: one executor runs them all
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


class _Output:
    """One model output read through the protocol's parser: its events, raw text and malformed calls."""

    def __init__(self, parser: Any, interpreter_name: str) -> None:
        self.parser = parser
        self.interpreter_name = interpreter_name
        self.raw = ""
        self.invalid: list[CallInvalid] = []
        self.duration_s = 0.0

    def read(self, stream: Iterator[Any]) -> Iterator[AgentEvent]:
        started = time.perf_counter()
        raw: list[str] = []
        for chunk in stream:
            if isinstance(chunk, str):
                raw.append(chunk)
            for item in self.parser.feed(chunk):
                if (event := self._event(item)) is not None:
                    yield event
        for item in self.parser.close():
            if (event := self._event(item)) is not None:
                yield event
        self.raw, self.duration_s = "".join(raw), time.perf_counter() - started

    def _event(self, item: Any) -> AgentEvent | None:
        """The event for one parser item (a call streams as it is written; it is announced once complete)."""
        if isinstance(item, TextPiece):
            return _TEXT_DELTA({"text": item.text})
        if isinstance(item, CallStarted):
            name = item.name or (self.interpreter_name if item.kind == "interpreter" else None)
            return _CALL_DELTA({"kind": item.kind, "name": name, "start": True})
        if isinstance(item, CallText):
            return _CALL_DELTA({"kind": item.kind, "text": item.text})
        if isinstance(item, CallParsed):
            return _CALL_STARTED({"call": item.call})
        if isinstance(item, CallInvalid):
            self.invalid.append(item)
            return AgentError(kind="parse_error", message=item.message, raw=item.raw)
        return None


class _RepeatedFailures:
    """Counts, per failure (call, arguments, error), the turns in a row it happened in."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.counts: dict[str, int] = {}

    def stop(self, calls: list[ToolCall], results: list[ActionResult], invalid: list[CallInvalid]) -> bool:
        """Whether every call of this turn failed, each as often in a row as the limit allows."""
        if not invalid and all(r.ok for r in results):  # the common case: nothing failed
            self.counts = {}
            return False
        failures = {_failure_key(c, r) for c, r in zip(calls, results, strict=True) if not r.ok}
        failures |= {json.dumps(["parse", bad.raw, bad.message]) for bad in invalid}
        self.counts = {key: self.counts.get(key, 0) + 1 for key in failures}
        return bool(failures) and all(not r.ok for r in results) and min(self.counts.values()) >= self.limit


def _final(history: list[Message], text: str) -> Iterator[AgentEvent]:
    history.append(Message(role="assistant", content=text))
    if text:
        yield FinalAnswer(text=text)
        return
    yield AgentError(kind="empty_answer", message="The model replied with nothing twice; no answer.")
    yield FinalAnswer(text="", state=AgentState.EMPTY_ANSWER)


def _model_failed(exc: Exception) -> Iterator[AgentEvent]:
    reason = str(exc) if isinstance(exc, LLMError) else f"{type(exc).__name__}: {exc}"
    logger.debug("model call failed", exc_info=True)
    yield AgentError(kind="llm_error", message=f"The model failed: {reason}")
    yield FinalAnswer(text="", state=AgentState.LLM_ERROR)


def _failure_key(call: ToolCall, result: ActionResult) -> str:
    return json.dumps([call.name, call.arguments, result.error], sort_keys=True, ensure_ascii=False, default=str)


def _no_executor(call: ToolCall, plugin_executor: ActionExecutor | None) -> ActionResult:
    if call.kind == "interpreter":
        tools = ", ".join(plugin_executor.api_names()) if plugin_executor else "none"
        message = f"No code interpreter is available. Use the tools instead: {tools}."
    else:
        message = f"Unknown tool '{call.name}'. No tools are available; answer directly."
    return ActionResult(name=call.name, arguments=call.arguments, error=message, error_type="unknown_tool", call_id=call.id)

