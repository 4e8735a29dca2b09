"""The contract every inkagent backend keeps, on top of lagent's `BaseModel`.

Backends implement `stream_text` (text deltas, special tokens kept). Everything lagent callers use
(`generate`, `stream_generate`, `chat`, `stream_chat`) is derived from it, so a backend is one method.
The agent also accepts plain lagent models; see `inkagent.agents.internlm2_agent`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from lagent.llms.base_llm import BaseModel
from lagent.llms.meta_template import INTERNLM2_META
from lagent.schema import ModelStatusCode

Prompt = str | list[dict]

#: Meta templates a config can name as a string (`meta_template: INTERNLM2`), as lagent configs do.
META_TEMPLATES = {"INTERNLM2": INTERNLM2_META}


def resolve_meta_template(value: str | list[dict] | None) -> list[dict] | None:
    """A meta template given as a list, None (the tokenizer's chat template) or a name in `META_TEMPLATES`."""
    if isinstance(value, str):
        try:
            return META_TEMPLATES[value.upper()]
        except KeyError:
            raise ValueError(f"unknown meta_template {value!r}; known: {', '.join(META_TEMPLATES)}") from None
    return value


#: Stop words of the InternLM2 chat format (lagent's INTERNLM2 config uses the first).
INTERNLM2_STOP_WORDS = ["<|im_end|>"]


@dataclass
class GenerationStats:
    """Token counts and timings of one model call (`llm.last_stats`)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    duration_s: float = 0.0
    first_token_s: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.duration_s if self.duration_s > 0 else 0.0


class LLM(BaseModel):
    """Base class of inkagent backends: a lagent `BaseModel` that streams deltas.

    Args mirror lagent's: `path`, `meta_template` (INTERNLM2 by default), generation parameters.
    """

    def __init__(self, path: str = "", meta_template: str | list[dict] | None = INTERNLM2_META, **kwargs):
        kwargs.setdefault("stop_words", list(INTERNLM2_STOP_WORDS))
        super().__init__(path=path, meta_template=resolve_meta_template(meta_template), **kwargs)
        self.last_stats = GenerationStats()

    # -- the one method a backend implements ------------------------------------------------
    def stream_text(self, inputs: Prompt, **gen_params) -> Iterator[str]:
        """Yield the model's output for one prompt as text deltas (stop words removed).

        `inputs` is prompt text, or messages that the backend renders with `render()` (a chat API
        backend may send them as messages instead).
        """
        raise NotImplementedError

    # -- prompt rendering ----------------------------------------------------------------------
    def render(self, inputs: Prompt) -> str:
        """Turn messages into the model's prompt text with the meta template."""
        return inputs if isinstance(inputs, str) else self.template_parser(inputs)

    # -- lagent's API, derived ---------------------------------------------------------------------
    def generate(self, inputs: str | list[str], **gen_params) -> str | list[str]:
        if isinstance(inputs, list):
            return [self.generate(one, **gen_params) for one in inputs]
        return "".join(self.stream_text(inputs, **gen_params))

    def stream_generate(self, inputs: Prompt, **gen_params) -> Iterator[tuple[ModelStatusCode, str, None]]:
        text = ""
        for delta in self.stream_text(inputs, **gen_params):
            text += delta
            yield ModelStatusCode.STREAM_ING, text, None
        yield ModelStatusCode.END, text, None

    def chat(self, inputs: list[dict] | list[list[dict]], **gen_params) -> str | list[str]:
        if inputs and isinstance(inputs[0], list):
            return [self.chat(one, **gen_params) for one in inputs]
        return "".join(self.stream_text(inputs, **gen_params))

    def stream_chat(self, inputs: list[dict], **gen_params) -> Iterator[tuple[ModelStatusCode, str, None]]:
        yield from self.stream_generate(inputs, **gen_params)


class Stopwatch:
    """Times a generation: call `first()` at the first token, read the fields at the end."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.first_token_s: float | None = None

    def first(self) -> None:
        if self.first_token_s is None:
            self.first_token_s = time.perf_counter() - self.start

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start
