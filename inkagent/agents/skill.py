"""`SkillAgent`: what the skill agents (`ChatAgent`, `ImageUnderstanding`, `IllustratedWriter`) share.

A skill answers a message with one streamed model reply (the writer then works on it): the history
(`memory`, `reset()`), `close()` / context manager, lagent's `chat()` / `stream_chat()` views of
`stream()`, the reply's events (`reply_events`: an empty reply is not an answer — the model is told once
and tries again; a second one ends in `AgentState.EMPTY_ANSWER`) and cancellation (`guarded`: a turn
that does not end with an answer, or whose consumer stops, is taken back out of the history).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import InkAgentError
from ..schema import (
    EMPTY_REPLY_NOTE,
    AgentError,
    AgentEvent,
    AgentState,
    FinalAnswer,
    Message,
    ModelOutput,
    PromptSent,
    TextDelta,
)
from .lagent_view import agent_return_from_events, stream_agent_returns

logger = logging.getLogger(__name__)


class SkillAgent:
    """The base of the skill agents (see the module docstring). Subclasses set `llm`, `gen_params` and
    `memory`, and implement `stream()`."""

    llm: Any
    gen_params: dict[str, Any]
    memory: list[Message]
    #: The role of the note that tells the model its reply was empty (what the skill's template accepts).
    note_role = "system"
    #: How a failure of the model is introduced in the error the user sees.
    failure_prefix = "The model failed"

    def stream(self, *args: Any, **gen_params: Any) -> Iterator[AgentEvent]:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the conversation."""
        self.memory = []

    def close(self) -> None:
        """Release what the skill holds (the model is the caller's: it is not closed)."""

    def __enter__(self) -> SkillAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lagent's views ------------------------------------------------------------------------
    def chat(self, *args: Any, **gen_params: Any) -> Any:
        """Answer one message; returns lagent's `AgentReturn` (`.response` is the reply)."""
        return agent_return_from_events(self.stream(*args, **gen_params))

    def stream_chat(self, *args: Any, **gen_params: Any) -> Iterator[Any]:
        """lagent's streaming view: `AgentReturn` snapshots."""
        yield from stream_agent_returns(self.stream(*args, **gen_params))

    # -- the parts of a turn -------------------------------------------------------------------
    def note(self, text: str) -> dict[str, Any]:
        """A message of the skill's prompt format saying `text` (to the model)."""
        return {"role": self.note_role, "content": text}

    def reply_events(self, prompt: list[dict] | str, gen_params: dict[str, Any], out: list[str]) -> Iterator[AgentEvent]:
        """The events of the model's reply to `prompt`; its text (stripped) is appended to `out` when there
        is one. Otherwise (the model failed, or replied with nothing twice) the events end the run."""
        from .chat import stream_reply  # (chat.py imports this module)

        for attempt in range(2):
            yield PromptSent(turn=attempt, messages=prompt if isinstance(prompt, list) else [self.note(prompt)])
            parts: list[str] = []
            started = time.perf_counter()
            try:
                for delta in stream_reply(self.llm, prompt, **gen_params):
                    parts.append(delta)
                    yield TextDelta(text=delta)
            except Exception as exc:  # the backend failed: say so, keep the session usable
                reason = str(exc) if isinstance(exc, InkAgentError) else f"{type(exc).__name__}: {exc}"
                logger.debug("model call failed", exc_info=True)
                yield AgentError(kind="llm_error", message=f"{self.failure_prefix}: {reason}")
                yield FinalAnswer(text="", state=AgentState.LLM_ERROR)
                return
            yield ModelOutput(turn=attempt, text="".join(parts), duration_s=time.perf_counter() - started)
            if text := "".join(parts).strip():
                out.append(text)
                return
            if attempt == 0:
                yield AgentError(kind="empty_reply", message=EMPTY_REPLY_NOTE)
                if isinstance(prompt, str):
                    prompt = [{"role": "user", "content": prompt}]
                prompt = [*prompt, {**self.note(""), "role": "assistant"}, self.note(EMPTY_REPLY_NOTE)]
        yield AgentError(kind="empty_answer", message="The model replied with nothing twice; no answer.")
        yield FinalAnswer(text="", state=AgentState.EMPTY_ANSWER)


def guarded(events: Iterator[AgentEvent], undo: Callable[[], None]) -> Iterator[AgentEvent]:
    """`events`, with `undo()` run when they end without an answer, raise, or their consumer stops."""
    answered = False
    try:
        for event in events:
            if isinstance(event, FinalAnswer) and event.state == AgentState.ANSWERED:
                answered = True
            yield event
    finally:
        if not answered:
            undo()
