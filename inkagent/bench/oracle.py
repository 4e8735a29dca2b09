"""Two reference backends for checking the benchmark harness itself: one always right, one never calls.

    llm:
      type: inkagent.bench.oracle:OracleLLM
      suite: bfcl            # or inkagent-tools
      mode: prompt           # the mode `inkagent bench --mode` will use

`OracleLLM` answers every request of the suite with the record's ground truth, rendered for the mode
(`render.render_output`); through `inkagent bench` it must score 100% except the records no output
can pass. `AbstainLLM` answers everything with a refusal: 0% on the call categories, 100% on
irrelevance. Both are ordinary inkagent backends (streamed text; `chat_with_tools` for native mode).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import LLMError
from ..llms.base import LLM, GenerationStats, Prompt
from .datasets import load_suite
from .prompts import build_request
from .render import NO_CALL_TEXT, render_output

REFUSAL = "I cannot help with that using the functions I was given."


@dataclass
class ToolCompletion:
    """What `chat_with_tools` returns (the shape of `OpenAICompatible`'s `Completion`)."""

    text: str
    tool_calls: list[dict] = field(default_factory=list)
    finish_reason: str | None = "stop"


def request_key(messages: Prompt, tools: list[dict] | None = None) -> str:
    """A stable key for a request: its messages (and tools) as canonical JSON."""
    return json.dumps([messages, tools], ensure_ascii=False, sort_keys=True)


class _TextBackend(LLM):
    """Streams a computed answer in chunks, like `ScriptedLLM`, and is safe to call from threads."""

    chunk_size = 64

    def __init__(self, **kwargs: Any):
        super().__init__(path=type(self).__name__, **kwargs)
        self._lock = threading.Lock()
        self.calls = 0

    def answer(self, inputs: Prompt, tools: list[dict] | None = None) -> Any:
        raise NotImplementedError

    def stream_text(self, inputs: Prompt, **gen_params: Any) -> Iterator[str]:
        answer = self.answer(inputs)
        text = answer if isinstance(answer, str) else NO_CALL_TEXT
        with self._lock:
            self.calls += 1
        for start in range(0, len(text), self.chunk_size):
            yield text[start : start + self.chunk_size]
        self.last_stats = GenerationStats(completion_tokens=len(text))

    def chat_with_tools(self, messages: Prompt, tools: list[dict], **gen_params: Any) -> ToolCompletion:
        answer = self.answer(messages, tools)
        with self._lock:
            self.calls += 1
        if isinstance(answer, list):
            return ToolCompletion("", answer, "tool_calls")
        return ToolCompletion(answer)


class OracleLLM(_TextBackend):
    """Answers each request of a suite with its ground truth (see the module docstring).

    Args: `suite` ("bfcl" / "inkagent-tools"), `mode` (prompt / internlm2 / native), `split` and
    `prompt_language` as given to `inkagent bench`, `data_dir` for a non-default data folder.
    """

    def __init__(
        self,
        suite: str = "bfcl",
        mode: str = "prompt",
        split: str = "all",
        prompt_language: str = "en",
        data_dir: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.suite_name, self.mode, self.split = suite, mode, split
        self.prompt_language, self.data_dir = prompt_language, data_dir
        self._answers: dict[str, Any] | None = None

    def _table(self) -> dict[str, Any]:
        with self._lock:
            if self._answers is None:
                suite = load_suite(self.suite_name, split=self.split, data_dir=self.data_dir)
                answers = {}
                for record in suite.records:
                    request = build_request(
                        self.mode,
                        record.category,
                        record.question,
                        prompt_language=self.prompt_language,
                        language_hints=suite.name == "bfcl",
                    )
                    # Three BFCL prompts appear twice, once wanting a call and once wanting none
                    # (see bfcl.CONTRADICTORY_PROMPTS); the first record in suite order wins.
                    key = request_key(request.messages, request.tools)
                    if key not in answers:
                        answers[key] = render_output(
                            self.mode, record.category, record.question, record.answer
                        )
                self._answers = answers
            return self._answers

    def answer(self, inputs: Prompt, tools: list[dict] | None = None) -> Any:
        try:
            return self._table()[request_key(inputs, tools)]
        except KeyError:
            raise LLMError(
                f"OracleLLM knows no {self.suite_name} record with this prompt (mode {self.mode}); "
                "are `suite`, `mode`, `split` and `prompt_language` those of the bench run?"
            ) from None


class AbstainLLM(_TextBackend):
    """Never calls a function: answers every request with a refusal."""

    def answer(self, inputs: Prompt, tools: list[dict] | None = None) -> Any:
        return REFUSAL
