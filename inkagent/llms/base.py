"""The contract every inkagent backend keeps, and lagent's model API derived from it.

Backends implement `stream_text` (text deltas, special tokens kept). Everything lagent callers use
(`generate`, `stream_generate`, `chat`, `stream_chat`, `template_parser`, `gen_params`,
`update_gen_params`) is derived from it, so a backend is one method. lagent is not imported here:
only `stream_generate` / `stream_chat` (lagent's API, which yields lagent's `ModelStatusCode`) load it.
The agent also accepts plain lagent models; see `inkagent.agents.llm_stream`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from copy import copy
from dataclasses import dataclass, field
from typing import Any

from .meta_template import INTERNLM2_META, META_TEMPLATES, MetaTemplateParser, resolve_meta_template

Prompt = str | list[dict]

__all__ = [
    "INTERNLM2_STOP_WORDS",
    "LLM",
    "META_TEMPLATES",
    "GenerationStats",
    "Prompt",
    "Stopwatch",
    "resolve_meta_template",
]

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


class LLM:
    """Base class of inkagent backends: streams deltas; offers lagent's `BaseModel` API on top.

    Args (lagent 0.2.4's `BaseModel` arguments, same meaning):
        path: the model's path or name.
        tokenizer_only: load only what tokenizing needs (backends that load weights honour it).
        template_parser: the class that renders messages with `meta_template` (called with it).
        meta_template: a lagent meta template (a list of role configs), a name in `META_TEMPLATES`
            ("INTERNLM2"), or None. inkagent's default is INTERNLM2 (lagent's is None).
        max_new_tokens, top_p, top_k, temperature, repetition_penalty: generation defaults, kept in
            `gen_params`; every call may override them.
        stop_words: where generation stops (a string or a list); default `<|im_end|>`.
    """

    is_api: bool = False

    def __init__(
        self,
        path: str = "",
        tokenizer_only: bool = False,
        template_parser: Callable[[list[dict] | None], Callable[[Prompt], str]] = MetaTemplateParser,
        meta_template: str | list[dict] | None = INTERNLM2_META,
        *,
        max_new_tokens: int = 512,
        top_p: float = 0.8,
        top_k: float | None = 40,
        temperature: float = 0.8,
        repetition_penalty: float = 1.0,
        stop_words: str | Sequence[str] | None = tuple(INTERNLM2_STOP_WORDS),
    ) -> None:
        self.path = path
        self.tokenizer_only = tokenizer_only
        self.template_parser = template_parser(resolve_meta_template(meta_template))
        self.eos_token_id = None
        if isinstance(stop_words, str):
            stop_words = [stop_words]
        self.gen_params: dict[str, Any] = dict(
            max_new_tokens=max_new_tokens,
            top_p=top_p,
            top_k=top_k,
            temperature=temperature,
            repetition_penalty=repetition_penalty,
            stop_words=None if stop_words is None else list(stop_words),
        )
        self.last_stats = GenerationStats()

    def update_gen_params(self, **kwargs: Any) -> dict[str, Any]:
        """The default generation parameters with `kwargs` on top (lagent's method)."""
        gen_params = copy(self.gen_params)
        gen_params.update(kwargs)
        return gen_params

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

    def stream_generate(self, inputs: Prompt, **gen_params) -> Iterator[tuple[Any, str, None]]:
        """lagent's streaming API: `(ModelStatusCode, text so far, None)` tuples, END last."""
        from lagent.schema import ModelStatusCode  # lagent's enum: imported only by lagent callers

        text = ""
        for delta in self.stream_text(inputs, **gen_params):
            text += delta
            yield ModelStatusCode.STREAM_ING, text, None
        yield ModelStatusCode.END, text, None

    def chat(self, inputs: list[dict] | list[list[dict]], **gen_params) -> str | list[str]:
        if inputs and isinstance(inputs[0], list):
            return [self.chat(one, **gen_params) for one in inputs]
        return "".join(self.stream_text(inputs, **gen_params))

    def stream_chat(self, inputs: list[dict], **gen_params) -> Iterator[tuple[Any, str, None]]:
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
