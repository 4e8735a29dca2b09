"""Stream text deltas from any model: an inkagent backend or a lagent one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import LLMError


def backend_stop_words(llm: Any, gen_params: dict[str, Any] | None = None) -> list[str]:
    """The stop words a model call would use without a protocol's: the call's own, else the backend's."""
    words = (gen_params or {}).get("stop_words")
    if words is None:
        words = (getattr(llm, "gen_params", None) or {}).get("stop_words")
    if isinstance(words, str):
        return [words]
    return list(words or [])


def stream_llm(llm: Any, messages: list[dict], *, native: bool = False, **gen_params: Any) -> Iterator[Any]:
    """Yield the model's output as deltas.

    inkagent backends stream deltas (`stream_text`, or `stream_deltas` with `native=True`: text and
    `ToolCallChunk`s); lagent models stream the text so far (`stream_chat` -> (state, text, _)), turned
    into deltas here; models with only `chat` give one piece.
    """
    if native or hasattr(llm, "stream_text"):
        stream = llm.stream_deltas(messages, **gen_params) if native else llm.stream_text(messages, **gen_params)
        try:
            yield from stream
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # stops the generation when the consumer stops early
        return
    if hasattr(llm, "stream_chat"):
        try:
            sent = ""
            for state, text, *_ in llm.stream_chat(messages, **gen_params):
                if int(state) < 0:
                    raise LLMError(f"the model reported {getattr(state, 'name', state)}")
                if text.startswith(sent):
                    delta, sent = text[len(sent) :], text
                    if delta:
                        yield delta
            return
        except NotImplementedError:
            pass
    yield llm.chat(messages, **gen_params)
