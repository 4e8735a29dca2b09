"""Typed data that flows through an agent: messages, tool calls, action results and events.

Everything here is a pydantic model so it can be validated, printed and written to a trace as JSON.
lagent's dataclasses (`ActionReturn`, `AgentReturn`) are produced only at the edge, for lagent users;
lagent's names (`AgentStatusCode`, `AgentReturn`, `ActionReturn`, `ActionStatusCode`, `ActionValidCode`,
`ModelStatusCode`) can be imported from here (`from inkagent.schema import AgentStatusCode`, as from
`lagent.schema`): they are lagent's own objects, and lagent is imported on the first such import.
"""

from __future__ import annotations

import enum
import functools
import itertools
import json
import os
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CallKind = Literal["plugin", "interpreter"]


_CALL_IDS = itertools.count(1)
_ID_PREFIX = f"call_{os.getpid():x}{time.time_ns() % 0xFFFFFF:06x}_"


def _new_id() -> str:
    return _ID_PREFIX + str(next(_CALL_IDS))  # unique in the process, cheap (no uuid per call)


class ToolCall(BaseModel):
    """One call the model asked for: a plugin (JSON) call or interpreter code."""

    kind: CallKind = "plugin"
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    id: str = Field(default_factory=_new_id)


class Message(BaseModel):
    """A chat message. Assistant messages may carry the tool calls the model made."""

    role: Literal["system", "user", "assistant", "environment"]
    content: str = ""
    name: str | None = None  # "plugin" / "interpreter" for tool prompts and tool results
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None  # on a tool result: the id of the call it answers (OpenAI `tool` messages)


class ActionResult(BaseModel):
    """What running one tool call produced. `error` is set when the call failed."""

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    output: str = ""
    error: str | None = None
    error_type: str | None = None  # invalid_call, unknown_tool, invalid_arguments, tool_error, timeout
    files: list[str] = Field(default_factory=list)  # images and other files the action produced
    duration_s: float = 0.0
    call_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def text(self) -> str:
        """The text the model sees as the environment's answer."""
        if self.error is not None:
            return self.error
        parts = [self.output] if self.output else []
        parts += [f"[image]({path})" for path in self.files]
        return "\n".join(parts)

    def to_lagent(self, thought: str | None = None, args: dict[str, Any] | None = None):
        """Convert to lagent's `ActionReturn` (for `chat()` and `stream_chat()` callers).

        `args` replaces the call's arguments where lagent shows others (its interpreter: `{"text": code}`).
        """
        lagent = lagent_schema()
        result = [{"type": "text", "content": self.output}] if self.output else []
        result += [{"type": "image", "content": path} for path in self.files]
        if self.error is None:
            state = lagent.ActionStatusCode.SUCCESS
        elif self.error_type in ("invalid_arguments", "invalid_call", "unknown_tool"):
            state = lagent.ActionStatusCode.ARGS_ERROR
        else:
            state = lagent.ActionStatusCode.API_ERROR
        return lagent.ActionReturn(
            args=self.arguments if args is None else args,
            type=self.name,
            result=result,
            errmsg=self.error,
            state=state,
            thought=thought,
        )

    @classmethod
    def from_lagent(cls, action_return: Any, name: str | None = None) -> ActionResult:
        """Build from a lagent `ActionReturn` (what lagent actions return)."""
        success = lagent_schema().ActionStatusCode.SUCCESS
        texts, files = [], []
        for item in action_return.result or []:
            if item.get("type") == "text":
                texts.append(str(item.get("content", "")))
            else:
                files.append(str(item.get("content", "")))
        failed = action_return.state not in (success, int(success))
        return cls(
            name=name or action_return.type or "",
            arguments=action_return.args or {},
            output="\n".join(texts),
            files=files,
            error=(action_return.errmsg or "the action failed") if failed else None,
            error_type="tool_error" if failed else None,
        )


class AgentState(str, enum.Enum):
    """How a run ended."""

    ANSWERED = "answered"
    MAX_TURN = "max_turn"  # the turn budget ran out before an answer
    REPEATED_FAILURE = "repeated_failure"  # the model repeated a call that had just failed
    LLM_ERROR = "llm_error"  # the backend failed
    EMPTY_ANSWER = "empty_answer"  # the model replied with nothing, again after being told
    CANCELLED = "cancelled"


#: What a model is told after an empty reply (once per run; a second empty reply ends the run).
EMPTY_REPLY_NOTE = "Your reply was empty. Answer the user, or call a tool."


# --- events -------------------------------------------------------------------------------------


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)
    time: float = Field(default_factory=time.time)


class UserMessage(_Event):
    """The user's message that starts a run."""

    type: Literal["user"] = "user"
    text: str


class PromptSent(_Event):
    """The messages handed to the model at the start of a turn."""

    type: Literal["prompt"] = "prompt"
    turn: int
    messages: list[dict[str, Any]]

    @classmethod
    def of(cls, turn: int, messages: list[dict[str, Any]]) -> PromptSent:
        """The event for `messages` as a protocol made them (valid message dicts), held as they are:
        validating would copy the whole history every turn. The dicts are shared: do not change them."""
        event = cls.__pydantic_validator__.validate_python({"turn": turn, "messages": []})  # as cls(...) does
        event.__dict__["messages"] = messages
        return event


class TextDelta(_Event):
    """A piece of the model's language (thought or answer), as it streams."""

    type: Literal["text"] = "text"
    text: str


class ModelOutput(_Event):
    """The model's whole raw output for one turn, special tokens included."""

    type: Literal["model_output"] = "model_output"
    turn: int
    text: str
    duration_s: float


class ToolCallDelta(_Event):
    """A piece of a tool call while the model writes it (before it is complete).

    `text` is the raw text the model wrote for the call (InternLM2: what follows `<|plugin|>` or
    `<|interpreter|>`); the first piece of each call has `start=True` (and may be empty). `name` is
    known up front for the interpreter; a plugin's name is inside its text. The parsed call follows as
    `ToolCallStarted`, or an `AgentError` when it is malformed. Not written to traces (the turn's
    `ModelOutput` holds the whole text).
    """

    type: Literal["tool_call_delta"] = "tool_call_delta"
    kind: CallKind
    text: str = ""
    name: str | None = None
    start: bool = False


class ToolCallStarted(_Event):
    """A complete tool call, parsed (it runs once the model's turn has ended)."""

    type: Literal["tool_call"] = "tool_call"
    call: ToolCall


class ToolResult(_Event):
    type: Literal["tool_result"] = "tool_result"
    call: ToolCall
    result: ActionResult


class AgentError(_Event):
    """Something went wrong that the model is told about (a malformed call) or that ends the run."""

    type: Literal["error"] = "error"
    kind: str  # parse_error, llm_error, max_turn, repeated_failure, empty_reply (told), empty_answer (ended)
    message: str
    raw: str | None = None


class FinalAnswer(_Event):
    type: Literal["final_answer"] = "final_answer"
    text: str
    state: AgentState = AgentState.ANSWERED


AgentEvent = Annotated[
    UserMessage
    | PromptSent
    | TextDelta
    | ToolCallDelta
    | ModelOutput
    | ToolCallStarted
    | ToolResult
    | AgentError
    | FinalAnswer,
    Field(discriminator="type"),
]


class ParsedTurn(BaseModel):
    """What the protocol made of one model output."""

    thought: str = ""  # the language before (and between) calls, or the whole answer
    calls: list[ToolCall] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)  # malformed calls, with the reason

    @property
    def is_answer(self) -> bool:
        return not self.calls and not self.errors


@dataclass(frozen=True, slots=True)
class ToolCallChunk:
    """A piece of a natively streamed tool call (an OpenAI `choices[].delta.tool_calls[]` entry).

    Chat-API backends yield these between text deltas (`str`); pieces with the same `index` belong to one
    call: `id` and `name` arrive first, `arguments` is a JSON text sent in fragments that are joined.
    Source: the OpenAI chat completions streaming format (`ChatCompletionChunk`).
    """

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""

    @classmethod
    def from_openai(cls, call: Any, index: int) -> ToolCallChunk:
        """An OpenAI `tool_calls[]` entry (a message's, or a stream delta's) as a `ToolCallChunk`; `index`
        is used when the entry has none. Never raises: arguments sent as an object are dumped to JSON, and
        a malformed entry gives a delta whose call the parser reports invalid."""
        if not isinstance(call, dict):
            return cls(index=index, arguments=json.dumps(str(call)))
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        arguments = function.get("arguments") or ""
        if not isinstance(arguments, str):  # some servers send an object rather than a JSON text
            try:
                arguments = json.dumps(arguments, ensure_ascii=False)
            except (TypeError, ValueError, RecursionError):
                arguments = repr(arguments)[:1000]
        raw_index = call.get("index", index)
        return cls(
            index=raw_index if isinstance(raw_index, int) else index,
            id=str(call.get("id") or ""),
            name=str(function.get("name") or ""),
            arguments=arguments,
        )


class ToolSpec(BaseModel):
    """A tool as the model sees it: its name (`Tool` or `Toolkit.api`), description and JSON Schema.

    `parameters` is a JSON Schema object (`{"type": "object", "properties": ..., "required": [...]}`),
    the form OpenAI tools use; the InternLM2 plugin prompt is rendered from it.
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}, "required": []})

    def openai_tool(self) -> dict[str, Any]:
        """This tool in the OpenAI `tools` format."""
        return {"type": "function", "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


_LAGENT_NAMES = frozenset(
    {"ActionReturn", "ActionStatusCode", "ActionValidCode", "AgentReturn", "AgentStatusCode", "ModelStatusCode"}
)


@functools.cache
def lagent_schema() -> Any:
    """The `lagent.schema` module, imported on first use (importing lagent costs seconds; an import
    statement in a function costs a microsecond on every call)."""
    import lagent.schema

    return lagent.schema


def __getattr__(name: str) -> Any:
    """lagent's schema names, loaded on first use (importing lagent costs seconds)."""
    if name in _LAGENT_NAMES:
        return getattr(lagent_schema(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
