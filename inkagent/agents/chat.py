"""`ChatAgent`: persona chat. A system prompt, a multi-turn history, a streamed answer; no tools.

The conversation is sent to the model as messages (system, then user/assistant rounds); the backend
renders them with its template, InternLM2's chat template by default:

```text
<|im_start|>system
{persona}<|im_end|>
<|im_start|>user
{message}<|im_end|>
<|im_start|>assistant
```

(the tokenizer adds the BOS token `<s>` in front). The same agent is a tool for other agents through
`as_action()`: the model calls it with `{"message": ...}` and reads the persona's reply.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..actions.base import Action
from ..errors import ActionError, ConfigError
from ..llms.base import INTERNLM2_STOP_WORDS
from ..llms.stopping import StopTextFilter
from ..schema import AgentEvent, FinalAnswer, Message, UserMessage
from .llm_stream import stream_llm
from .skill import SkillAgent, guarded

#: How XComposer2's tokenizer spells `<|im_end|>`; a model may write it instead of the real token.
XCOMPOSER_IM_END = "[UNUSED_TOKEN_145]"


def stream_reply(llm: Any, prompt: list[dict] | str, **gen_params: Any) -> Iterator[str]:
    """The model's answer as text deltas, cut at the end of its turn.

    Backends remove their stop words, but scripted and lagent models may not: the deltas are filtered
    again so that `<|im_end|>` (or XComposer2's spelling of it) never reaches the user.
    """
    stop_words = [
        *(getattr(llm, "gen_params", {}).get("stop_words") or INTERNLM2_STOP_WORDS),
        XCOMPOSER_IM_END,
    ]
    text_filter = StopTextFilter(stop_words)
    for chunk in stream_llm(llm, prompt, **gen_params):
        visible = text_filter.feed(chunk)
        if visible:
            yield visible
        if text_filter.stopped:
            return
    tail = text_filter.flush()
    if tail:
        yield tail


def read_persona(path: str | os.PathLike[str]) -> str:
    """The system prompt kept in a text file (its whole content, surrounding blank space removed)."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the persona file: {exc.strerror or exc}", path=str(path)) from exc
    if not text:
        raise ConfigError("the persona file is empty", path=str(path))
    return text


class ChatAgent(SkillAgent):
    """Multi-turn chat with a persona (a system prompt), streamed.

    Args:
        llm: an inkagent backend (or any lagent model).
        system_prompt: the persona; or give `persona_file`, a text file holding it.
        name: the tool name when the agent is used as an action.
        description: what the tool does, for the calling model (default: from the persona).
        max_rounds: how many earlier rounds to send with a new message (None: all of them).
        gen_params: generation parameters for every call (temperature, max_new_tokens...).
    """

    def __init__(
        self,
        llm: Any,
        system_prompt: str | None = None,
        *,
        persona_file: str | os.PathLike[str] | None = None,
        name: str = "ChatAgent",
        description: str | None = None,
        max_rounds: int | None = None,
        **gen_params: Any,
    ) -> None:
        if system_prompt is not None and persona_file is not None:
            raise ConfigError("give the persona as system_prompt or as persona_file, not both")
        self.llm = llm
        self.system_prompt = read_persona(persona_file) if persona_file is not None else (system_prompt or "")
        self.name = name
        self.description = description or _describe(self.system_prompt)
        self.max_rounds = max_rounds
        self.gen_params = gen_params
        self.memory: list[Message] = []

    def prompt_messages(self) -> list[dict]:
        """What the model is sent: the persona, the last `max_rounds` earlier rounds, the new message."""
        history = self.memory
        if self.max_rounds is not None:
            starts = [i for i, m in enumerate(history) if m.role == "user"]
            keep = starts[-(self.max_rounds + 1) :]  # the earlier rounds kept, and the current one
            history = history[keep[0] :] if keep else history
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return messages + [{"role": m.role, "content": m.content} for m in history]

    # -- running --------------------------------------------------------------------------------
    def stream(self, message: str | dict | Message, **gen_params: Any) -> Iterator[AgentEvent]:
        """Yield `UserMessage`, `PromptSent`, `TextDelta`s, `ModelOutput` and the `FinalAnswer`.

        If the model fails or replies with nothing twice, or the consumer stops early, the unanswered
        message leaves the history.
        """
        text = _message_text(message)
        start = len(self.memory)

        def undo() -> None:
            del self.memory[start:]

        return guarded(self._turn(text, {**self.gen_params, **gen_params}), undo)

    def _turn(self, text: str, gen_params: dict[str, Any]) -> Iterator[AgentEvent]:
        self.memory.append(Message(role="user", content=text))
        yield UserMessage(text=text)
        answer: list[str] = []
        yield from self.reply_events(self.prompt_messages(), gen_params, answer)
        if answer:
            self.memory.append(Message(role="assistant", content=answer[0]))
            yield FinalAnswer(text=answer[0])

    def as_action(self) -> Action:
        """This agent as a tool: `{"message": ...}` in, the persona's reply out (the history is kept)."""
        return ChatSkill(self)


class ChatSkill(Action):
    """Talk to a persona and get its reply."""

    def __init__(self, agent: ChatAgent) -> None:
        self.agent = agent
        self.name = agent.name
        self.description = agent.description

    def run(self, message: str) -> str:
        """Say something to the persona.

        Args:
            message: what to say
        """
        result = self.agent.chat(message)
        if not result.response:
            raise ActionError(result.errmsg or "the persona gave no answer")
        return result.response


def _message_text(message: str | dict | Message) -> str:
    if isinstance(message, Message):
        return message.content
    if isinstance(message, dict):
        return str(message.get("content", message.get("message", "")))
    return str(message)


def _describe(system_prompt: str) -> str:
    first = system_prompt.strip().splitlines()[0] if system_prompt.strip() else ""
    if len(first) > 80:
        first = first[:79] + "…"
    return f"Chat with a persona ({first})" if first else "Chat with the assistant"
