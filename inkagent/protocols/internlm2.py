"""`Internlm2Protocol`: how an agent's history becomes InternLM2 messages, and model output becomes calls.

`format()` returns lagent-style message dicts (`role`, `content`, optional `name`) that a backend renders
with the INTERNLM2 meta template:

    <|im_start|>system\n{meta prompt}<|im_end|>
    <|im_start|>system name=<|interpreter|>\n{interpreter prompt}<|im_end|>
    <|im_start|>system name=<|plugin|>\n{plugin prompt listing the tools}<|im_end|>
    <|im_start|>user\n...<|im_end|>
    <|im_start|>assistant\n{thought}<|action_start|><|plugin|>\n{call JSON}<|action_end|>\n<|im_end|>
    <|im_start|>environment name=<|plugin|>\n{result}<|im_end|>

`parse()` / `stream_parser()` turn output back into a `ParsedTurn` (see `internlm2_parser`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from ..schema import Message, ParsedTurn, ToolCall
from .base import CallInvalid, HistoryCache, ToolProtocol, ToolsCache, as_messages, tool_specs
from .internlm2_parser import IM_END, Internlm2StreamParser, normalize_special_tokens
from .prompts import PROMPTS, ToolSpecLike, describe_tools

_JSON = json.JSONEncoder(ensure_ascii=False)  # json.dumps(..., ensure_ascii=False) without a new encoder a call

_LAGENT_LANGUAGE = {"begin": "", "end": "", "belong": "assistant"}
_LAGENT_TOOL = {
    "begin": "{start_token}{name}\n",
    "start_token": "<|action_start|>",
    "name_map": {"plugin": "<|plugin|>", "interpreter": "<|interpreter|>"},
    "belong": "assistant",
    "end": "<|action_end|>\n",
}
_LAGENT_EXECUTE = {"role": "execute", "begin": "", "end": "", "fallback_role": "environment"}


class Internlm2Protocol(ToolProtocol):
    """The InternLM2 chat protocol with plugin (JSON) and interpreter (code) calls.

    Takes lagent's arguments. `language` is either a prompt set, "zh" (lagent's default prompts) or "en",
    or lagent's dict for the language role (then the prompts are Chinese unless given). `meta_prompt`,
    `interpreter_prompt` and `plugin_prompt` override the set's texts; `plugin_prompt` must contain
    `{prompt}` where the tool list goes. `few_shot` is a list of example conversations (lists of
    messages) placed after the system prompts. `tool` and `execute` are lagent's role configs; only the
    token spellings in `tool` are used (`start_token`, `name_map`, `end`).
    """

    name = "internlm2"
    stop_words = (IM_END,)

    def __init__(
        self,
        meta_prompt: str | None = None,
        interpreter_prompt: str | None = None,
        plugin_prompt: str | None = None,
        few_shot: list[list[dict]] | None = None,
        language: str | dict | None = "zh",
        tool: dict | None = None,
        execute: dict | None = None,
    ) -> None:
        prompt_set = language if isinstance(language, str) else "zh"
        if prompt_set not in PROMPTS:
            raise ValueError(f"language must be one of {sorted(PROMPTS)}, got {language!r}")
        defaults = PROMPTS[prompt_set]
        self.prompt_language = prompt_set
        self.meta_prompt = defaults["meta"] if meta_prompt is None else meta_prompt
        self.interpreter_prompt = defaults["interpreter"] if interpreter_prompt is None else interpreter_prompt
        self.plugin_prompt = defaults["plugin"] if plugin_prompt is None else plugin_prompt
        self.few_shot = few_shot
        # lagent's role configs, as lagent keeps them (only the token spellings of `tool` are used)
        self.language = dict(language) if isinstance(language, dict) else dict(_LAGENT_LANGUAGE)
        self.tool = {**_LAGENT_TOOL, **(tool or {})}
        self.execute = {**_LAGENT_EXECUTE, **(execute or {})}
        self.roles_cfg = {"tool": self.tool, "language": self.language}
        self.start_token = self.tool["start_token"]
        name_map = self.tool.get("name_map", {})
        self.plugin_token = name_map.get("plugin", "<|plugin|>")
        self.interpreter_token = name_map.get("interpreter", "<|interpreter|>")
        self.end_token = self.tool["end"]
        self._system_cache: tuple[tuple, list[Any], list[dict]] | None = None
        self._history = HistoryCache()  # the history's formatted messages, reused while it grows
        self._listing = ToolsCache()  # the plugin prompt's tool listing (shared by agents with the same tools)
        self._shots_cache: tuple[tuple, list, list[dict]] | None = None

    @property
    def _meta_template(self) -> str:
        """The meta prompt, under the name lagent's web demo sets (lagent 0.2.4 ignores it there)."""
        return self.meta_prompt

    @_meta_template.setter
    def _meta_template(self, value: str) -> None:
        self.meta_prompt = value

    @classmethod
    def from_lagent(cls, protocol: Any) -> Internlm2Protocol:
        """The same prompts and tokens as a lagent 0.2.4 `Internlm2Protocol` object."""
        return cls(
            meta_prompt=protocol.meta_prompt,
            interpreter_prompt=protocol.interpreter_prompt,
            plugin_prompt=protocol.plugin_prompt,
            few_shot=protocol.few_shot,
            language=getattr(protocol, "language", None),
            tool=getattr(protocol, "tool", None),
            execute=getattr(protocol, "execute", None),
        )

    # -- format --------------------------------------------------------------------------------
    def system_messages(self, tools: Sequence[ToolSpecLike] = (), interpreter: ToolSpecLike | None = None) -> list[dict]:
        """The system prompts: meta, interpreter (when there is one) and the plugin tool list."""
        messages: list[dict] = []
        if self.meta_prompt:
            messages.append({"role": "system", "content": self.meta_prompt})
        if interpreter is not None and self.interpreter_prompt:
            code_prompt = getattr(interpreter, "description", "") or ""
            content = self.interpreter_prompt.replace("{code_prompt}", code_prompt)
            messages.append({"role": "system", "content": content, "name": "interpreter"})
        if tools and self.plugin_prompt:
            listing = self._listing.get(list(tools), _listing, shared="internlm2")
            messages.append({"role": "system", "content": self.plugin_prompt.replace("{prompt}", listing), "name": "plugin"})
        return messages

    def format(
        self,
        history: Iterable[Message | dict],
        plugin_executor: Any = None,
        interpreter_executor: Any = None,
        **kwargs: Any,
    ) -> list[dict]:
        """Messages for the model: system prompts, few-shot examples, then the history.

        `history` holds `Message`s or lagent-style dicts (lagent's `inner_step`, roles `language`/`tool`
        included). `plugin_executor` / `interpreter_executor` are inkagent or lagent `ActionExecutor`s.
        """
        tools = tool_specs(plugin_executor)
        interpreter_specs = tool_specs(interpreter_executor)[:1]
        # The tool listing is the same every turn: render it once per set of tools and prompt texts
        # (the prompts may be edited between calls). The specs are compared as a list (in C: the same
        # objects at once, else equal content, which renders the same).
        key = (self.meta_prompt, self.interpreter_prompt, self.plugin_prompt, len(interpreter_specs))
        specs = tools + interpreter_specs
        cached = self._system_cache
        if cached is None or cached[0] != key or cached[1] != specs:
            system = self.system_messages(tools, interpreter_specs[0] if interpreter_specs else None)
            cached = self._system_cache = (key, specs, system)
        tokens = (self.start_token, self.plugin_token, self.interpreter_token, self.end_token)
        if self.few_shot:  # the examples are formatted once (for these tokens and this list of examples)
            shots_key = (id(self.few_shot), tokens)
            if self._shots_cache is None or self._shots_cache[0] != shots_key:
                shots = [self.format_message(m) for example in self.few_shot for m in as_messages(example)]
                self._shots_cache = (shots_key, self.few_shot, shots)
            formatted = cached[2] + self._shots_cache[2]
        else:
            formatted = cached[2]
        return formatted + self._history.format(history if isinstance(history, list) else list(history),
                                                self._format_step, tokens)

    def _format_step(self, message: Message, out: list[dict], state: Any) -> None:
        out.append(self.format_message(message))

    def format_message(self, message: Message) -> dict:
        if message.role == "assistant":
            content = message.content + "".join(self.format_call(call) for call in message.tool_calls)
            return {"role": "assistant", "content": content}
        out: dict = {"role": message.role, "content": message.content}
        if message.name:
            out["name"] = message.name
        return out

    def format_call(self, call: ToolCall) -> str:
        """The text of one call as the model writes it."""
        if call.kind == "interpreter":
            body = "```python\n" + str(call.arguments.get("command", "")) + "\n```"
            return f"{self.start_token}{self.interpreter_token}\n{body}{self.end_token}"
        body = _JSON.encode({"name": call.name, "parameters": call.arguments})
        return f"{self.start_token}{self.plugin_token}\n{body}{self.end_token}"

    def assistant_message(self, raw: str, turn: ParsedTurn, invalid: Sequence[CallInvalid] = ()) -> Message:
        """As `ToolProtocol.assistant_message`; the raw text has its special tokens normalised and is cut
        at <|im_end|>."""
        if invalid:
            return Message(role="assistant", content=normalize_special_tokens(raw).partition(IM_END)[0])
        return super().assistant_message(raw, turn)

    # -- parse ---------------------------------------------------------------------------------
    def stream_parser(self, interpreter_name: str = "IPythonInterpreter") -> Internlm2StreamParser:
        """A fresh incremental parser for one model output."""
        return Internlm2StreamParser(interpreter_name=interpreter_name)


def _listing(tools: list[ToolSpecLike]) -> str:
    """The tools as the plugin prompt lists them (lagent's JSON, indented by 4)."""
    return json.dumps(describe_tools(tools), ensure_ascii=False, indent=4)
