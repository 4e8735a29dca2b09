"""`ScriptedLLM`: a model that answers from a script. For tests, demos and offline configs."""

from __future__ import annotations

import time
from collections.abc import Iterator

from ..errors import LLMError
from .base import LLM, GenerationStats, Prompt, Stopwatch


class ScriptedLLM(LLM):
    """Streams the given responses in order, one per model call, in chunks of `chunk_size` characters.

    What each call was sent is kept: `.prompts` holds the rendered prompt text, `.messages` the
    messages (when the caller sent messages). `delay_s` waits between chunks, to imitate a slow model.
    With `cycle=True` the script starts over when it runs out; otherwise running out is an `LLMError`.
    """

    def __init__(
        self,
        responses: list[str] | None = None,
        *,
        chunk_size: int = 4,
        delay_s: float = 0.0,
        cycle: bool = False,
        **kwargs,
    ):
        super().__init__(path="scripted", **kwargs)
        self.responses = list(responses or [])
        self.chunk_size = max(1, chunk_size)
        self.delay_s = delay_s
        self.cycle = cycle
        self.prompts: list[str] = []
        self.messages: list[list[dict] | None] = []
        self.calls = 0

    def _next_response(self) -> str:
        if self.calls >= len(self.responses):
            if not (self.cycle and self.responses):
                raise LLMError(f"ScriptedLLM has no response left (it was given {len(self.responses)})")
            response = self.responses[self.calls % len(self.responses)]
        else:
            response = self.responses[self.calls]
        self.calls += 1
        return response

    def stream_text(self, inputs: Prompt, **gen_params) -> Iterator[str]:
        prompt = self.render(inputs)
        self.prompts.append(prompt)
        self.messages.append(None if isinstance(inputs, str) else list(inputs))
        response = self._next_response()
        clock = Stopwatch()
        for start in range(0, len(response), self.chunk_size):
            if self.delay_s:
                time.sleep(self.delay_s)
            clock.first()
            yield response[start : start + self.chunk_size]
        self.last_stats = GenerationStats(
            prompt_tokens=len(prompt), completion_tokens=len(response),
            duration_s=clock.elapsed, first_token_s=clock.first_token_s,
        )
