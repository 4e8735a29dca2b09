"""The protocol interface: how an agent's history and tools become a model request, and output becomes calls.

A protocol is the one thing that knows a tool-call format. The agent loop uses it so:

    protocol.check_backend(llm)                                                 # once: ConfigError if unfit
    request = protocol.request(history, plugin_executor, interpreter_executor)  # ModelRequest
    params = request.gen_params(backend_stop_words)          # tools / tool_choice / merged stop words
    parser = protocol.stream_parser(interpreter_name)
    stream = llm.stream_deltas(...) if protocol.native_tools else llm.stream_text(request.messages, **params)
    for chunk in stream:                                     # str text deltas, or ToolCallChunk (native calls)
        for item in parser.feed(chunk):                      # TextPiece / CallStarted / CallParsed / CallInvalid
            ...
    items = parser.close(); turn = parser.result()          # ParsedTurn: thought, calls, errors
    history.append(protocol.assistant_message(raw_text, turn, invalid_items))
    history += [protocol.format_result(call, result) for each call] + [protocol.format_invalid(bad) ...]

Every parser accepts both text and native `ToolCallChunk`s (a server that returns `tool_calls` although the
format is textual still gets its calls run), and never raises: any output, of any size, nesting or
bytes, becomes text, a call or a `CallInvalid` whose message goes back to the model (see `decoding`).
"""

from __future__ import annotations

import json
import operator
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import ConfigError
from ..schema import ActionResult, CallKind, Message, ParsedTurn, ToolCall, ToolCallChunk, ToolSpec
from .decoding import decode_arguments

DEFAULT_INTERPRETER = "IPythonInterpreter"

# What a turn makes several of, made as `Model(**fields)` makes them (the model's validator, which also
# copies lists) but called directly: `make(fields)` skips the Python-level `__init__` (a third of the cost).
_MESSAGE = Message.__pydantic_validator__.validate_python
_PARSED_TURN = ParsedTurn.__pydantic_validator__.validate_python


# -- stream items ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TextPiece:
    """Language that arrived (streamed as soon as it cannot be the start of a call marker)."""

    text: str


@dataclass(frozen=True)
class CallStarted:
    """A call is being written (its marker, or the first native delta of its index, arrived)."""

    kind: CallKind
    name: str = ""  # when already known (native calls)


@dataclass(frozen=True)
class CallText:
    """A piece of the call being written, as the model writes it (raw text after the call's marker)."""

    kind: CallKind
    text: str


@dataclass(frozen=True)
class CallParsed:
    """A complete, well-formed call."""

    call: ToolCall


@dataclass(frozen=True)
class CallInvalid:
    """A malformed call: `message` (for the model) says why; `raw` is what the model wrote.

    `call_id` / `name` are set for native calls, whose answer must carry the call's id.
    """

    message: str
    raw: str = ""
    call_id: str | None = None
    name: str = ""


StreamItem = TextPiece | CallStarted | CallText | CallParsed | CallInvalid
ModelChunk = str | ToolCallChunk


@dataclass(frozen=True)
class ModelRequest:
    """What one model call is sent: `messages` (lagent-style dicts, or OpenAI chat messages for a
    native protocol), OpenAI `tools` and `tool_choice` (native protocols only), and stop words."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    stop_words: tuple[str, ...] = ()

    def gen_params(self, backend_stop_words: Sequence[str] = ()) -> dict[str, Any]:
        """Keyword arguments for the backend call: `tools` and `tool_choice` when set, and the stop words
        (the backend's own, e.g. its chat template's end token, then the protocol's), when there are any."""
        params: dict[str, Any] = {}
        if self.tools:
            params["tools"] = self.tools
            if self.tool_choice is not None:
                params["tool_choice"] = self.tool_choice
        stop_words = list(dict.fromkeys([*backend_stop_words, *self.stop_words]))
        if stop_words:
            params["stop_words"] = stop_words
        return params


# -- tools and history -------------------------------------------------------------------------------
_LAGENT_TO_JSON = {"STRING": "string", "NUMBER": "integer", "FLOAT": "number", "BOOLEAN": "boolean",
                   "Array": "array", "ARRAY": "array", "OBJECT": "object", "NULL": "null"}  # fmt: skip


def tool_specs(tools: Any) -> list[Any]:
    """The tools of an inkagent executor (`ToolSpec`s), of a lagent one (`get_actions_info()` dicts), or a
    sequence of either; `[]` for None."""
    if tools is None:
        return []
    if hasattr(tools, "specs"):
        return list(tools.specs())
    if hasattr(tools, "get_actions_info"):
        return list(tools.get_actions_info())
    return list(tools)


def as_tool_spec(spec: Any) -> ToolSpec:
    """A `ToolSpec` (JSON Schema parameters) from a `ToolSpec`-like object or a lagent description dict."""
    if isinstance(spec, ToolSpec):
        return spec
    if not isinstance(spec, dict):
        return ToolSpec(name=spec.name, description=spec.description or "", parameters=dict(spec.parameters or {}))
    parameters = spec.get("parameters")
    if isinstance(parameters, list):  # lagent: [{"name", "type", "description"}], required names apart
        properties = {}
        for param in parameters:
            prop = {"type": _LAGENT_TO_JSON.get(str(param.get("type")), "string")}
            if param.get("description"):
                prop["description"] = param["description"]
            properties[param["name"]] = prop
        parameters = {"type": "object", "properties": properties, "required": list(spec.get("required", []))}
    return ToolSpec(name=spec["name"], description=spec.get("description", ""),
                    parameters=parameters or {"type": "object", "properties": {}, "required": []})


def as_messages(steps: Iterable[Message | dict]) -> list[Message]:
    """inkagent `Message`s, from themselves or lagent's inner steps (roles `language`, `tool`, `environment`).

    Raises:
        ValueError: a step that is not a message, or whose role is unknown (see `compat.steps`).
    """
    from ..compat.steps import messages_from_steps  # (the lagent edge imports this module's items)

    return messages_from_steps(steps)


class ToolsCache:
    """One rendering of a tool list (a prompt listing, OpenAI `tools`), redone only when the tools change.

    Tools are compared by identity first: executors hand out the same spec objects until their tools
    change (the specs are held, so their ids cannot be reused while the entry lives). With `shared`
    (what else the rendering depends on, e.g. a protocol's name and prompt fields), a rendering is also
    shared by content across the process: the fresh agents of a batch, each with its own tool objects
    but the same tools, render the list once.
    """

    def __init__(self) -> None:
        self._key: tuple[int, ...] | None = None
        self._specs: list[Any] = []
        self._value: Any = None

    def get(self, specs: list[Any], render: Callable[[list[Any]], Any], shared: Hashable = None) -> Any:
        key = tuple(map(id, specs))
        if key != self._key:
            value = _shared_rendering(specs, render, shared) if shared is not None else render(specs)
            self._value, self._key, self._specs = value, key, specs
        return self._value


_SHARED: OrderedDict[tuple[Hashable, tuple[str, ...]], Any] = OrderedDict()  # at most _SHARED_MAX, LRU
_SHARED_MAX = 32
_SHARED_LOCK = threading.Lock()


def _shared_rendering(specs: list[Any], render: Callable[[list[Any]], Any], shared: Hashable) -> Any:
    """`render(specs)`, made once per process for tools of the same content (see `ToolsCache`)."""
    key = (shared, tuple(map(_fingerprint, specs)))
    with _SHARED_LOCK:
        if key in _SHARED:
            _SHARED.move_to_end(key)
            return _SHARED[key]
    value = render(specs)
    with _SHARED_LOCK:
        _SHARED[key] = value
        while len(_SHARED) > _SHARED_MAX:
            _SHARED.popitem(last=False)
    return value


def _fingerprint(spec: Any) -> str:
    """The content of a tool's description (a `ToolSpec`-like object or a lagent dict), as JSON."""
    if not isinstance(spec, dict):
        spec = {"name": spec.name, "description": spec.description, "parameters": spec.parameters}
    return json.dumps(spec, sort_keys=True, ensure_ascii=False, default=repr)


class HistoryCache:
    """A history formatted message by message, the work for a prefix already seen reused.

    The agent's history only grows between turns; a reset (a new list), a cut (`del memory[n:]`) or a
    replaced message makes the formatting restart where the history stopped being the one seen (compared
    by identity: the seen messages are held, so their ids cannot be reused meanwhile). `Message`s are
    not changed in place. `step(message, out, state) -> state` appends the message's formatted dicts to
    `out`, or replaces `out[-1]` with a new dict (never changes a dict already in `out`); `state` is what
    the next message's formatting needs to know (None to start). `key` is what else the formatting
    depends on (prompt fields, tool names): a new key starts over.
    """

    def __init__(self) -> None:
        self._key: Any = None
        self._seen: list[Message] = []
        self._out: list[dict[str, Any]] = []
        self._marks: list[tuple[int, dict[str, Any] | None, Any]] = []  # after message i: len(out), out[-1], state

    def format(self, history: Sequence[Any], step: Callable[[Message, list[dict[str, Any]], Any], Any],
               key: Any = None) -> list[dict[str, Any]]:
        """The formatted messages of `history` (a new list; the dicts in it are shared: do not change them).
        Entries that are not `Message`s (lagent steps) are converted and formatted afresh every time."""
        if key != self._key:
            self._key, seen = key, 0
        else:
            seen = self._common_prefix(history)
        self._cut(seen)
        state = self._marks[-1][2] if self._marks else None
        for i in range(seen, len(history)):
            message = history[i]
            if not isinstance(message, Message):  # not cacheable: the rest is converted and formatted now
                out = list(self._out)
                for converted in as_messages(history[i:]):
                    state = step(converted, out, state)
                return out
            state = step(message, self._out, state)
            self._seen.append(message)
            self._marks.append((len(self._out), self._out[-1] if self._out else None, state))
        return list(self._out)

    def _common_prefix(self, history: Sequence[Any]) -> int:
        return _same_prefix(history, self._seen)

    def _cut(self, n: int) -> None:
        if n == len(self._seen):
            return
        del self._seen[n:], self._marks[n:]
        if not self._marks:
            self._out.clear()
            return
        length, last, _ = self._marks[-1]
        del self._out[length:]
        if last is not None:
            self._out[-1] = last


def _same_prefix(new: Sequence[Any], old: Sequence[Any]) -> int:
    """How many items `new` and `old` share at their start (the same objects). One C-level pass."""
    same = bytes(map(operator.is_, new, old))  # 1 where the same (map stops at the shorter one)
    first_other = same.find(0)
    return len(same) if first_other < 0 else first_other


# -- the parser base ---------------------------------------------------------------------------------
@dataclass
class _NativeCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    done: bool = False


class StreamParser(ABC):
    """Feed model output chunk by chunk (`str` text, or native `ToolCallChunk`s); read items as they
    become certain. `feed()` returns the items completed by that chunk, `close()` flushes at the end of
    the output, `result()` gives the whole turn. None of them raises.

    Subclasses parse text in `_feed_text` / `_close_text` and record calls with `_accept` / `_reject`.
    """

    def __init__(self, interpreter_name: str = DEFAULT_INTERPRETER) -> None:
        self.interpreter_name = interpreter_name
        self._thought: list[str] = []
        self._calls: list[ToolCall] = []
        self._errors: list[str] = []
        self._native: dict[int, _NativeCall] = {}
        self._closed = False

    # -- public --------------------------------------------------------------------------------
    def feed(self, chunk: ModelChunk) -> list[StreamItem]:
        if self._closed or not chunk:
            return []
        if isinstance(chunk, ToolCallChunk):
            return self._feed_native(chunk)
        return self._feed_text(chunk)

    def close(self) -> list[StreamItem]:
        if self._closed:
            return []
        items = self._close_text()
        items += [self._finish_native(index) for index in sorted(self._native) if not self._native[index].done]
        self._closed = True
        return items

    def result(self) -> ParsedTurn:
        return _PARSED_TURN({"thought": self._thought_text(), "calls": self._calls, "errors": self._errors})  # (lists copied)

    # -- for subclasses ------------------------------------------------------------------------
    @abstractmethod
    def _feed_text(self, text: str) -> list[StreamItem]: ...

    @abstractmethod
    def _close_text(self) -> list[StreamItem]: ...

    def _thought_text(self) -> str:
        return "".join(self._thought).strip()

    def _text(self, text: str) -> TextPiece:
        self._thought.append(text)
        return TextPiece(text)

    def _kind_of(self, name: str) -> CallKind:
        return "interpreter" if name == self.interpreter_name else "plugin"

    def _local_name(self, wire_name: str) -> str:
        """The tool's own name for a name as the model wrote it (overridden where names are mapped)."""
        return wire_name

    def _accept(self, name: str, arguments: dict[str, Any], call_id: str | None = None) -> CallParsed:
        extra = {"id": call_id} if call_id else {}
        call = ToolCall(kind=self._kind_of(name), name=name, arguments=arguments, **extra)
        self._calls.append(call)
        return CallParsed(call)

    def _reject(self, message: str, raw: str = "", call_id: str | None = None, name: str = "") -> CallInvalid:
        self._errors.append(message)
        return CallInvalid(message, raw, call_id, name)

    # -- native deltas -------------------------------------------------------------------------
    def _feed_native(self, delta: ToolCallChunk) -> list[StreamItem]:
        items: list[StreamItem] = []
        call = self._native.get(delta.index)
        if call is None:
            # calls stream in index order: a new index means the earlier ones are complete
            items += [self._finish_native(i) for i in sorted(self._native) if not self._native[i].done]
            call = self._native[delta.index] = _NativeCall()
            items.append(CallStarted(self._kind_of(self._local_name(delta.name)), self._local_name(delta.name)))
        if call.done:
            return items  # a late fragment of a call already reported: it cannot change what ran
        if delta.id:
            call.id = delta.id
        # Some servers repeat the whole name in every delta: a repeat of the name gathered so far is not
        # a new fragment (`get_weather` + `get_weather` stays `get_weather`); split names are joined.
        if delta.name and delta.name != call.name:
            call.name += delta.name
        if delta.arguments:
            call.arguments.append(delta.arguments)
        return items

    def _finish_native(self, index: int) -> StreamItem:
        native = self._native[index]
        native.done = True
        raw = "".join(native.arguments)
        name = self._local_name(native.name.strip())
        if not name:
            return self._reject("The tool call has no function name.", raw, native.id or None)
        arguments = decode_arguments(raw, f"arguments of the call to {name}")
        if isinstance(arguments, str):
            return self._reject(f"{arguments} Call {name} again with a JSON object.", raw, native.id or None, name)
        return self._accept(name, arguments, native.id or None)


# -- the protocol interface --------------------------------------------------------------------------
class ToolProtocol(ABC):
    """How an agent talks to a model about tools. Implementations: `Internlm2Protocol`,
    `OpenAIToolsProtocol`, `HermesProtocol`, `ReActProtocol` (one module each).

    `name` is the config / `inkagent bench --mode` name; `native_tools` says the backend must send OpenAI
    `tools` and return `tool_calls` (a chat-API backend); `stop_words` end the model's turn.
    """

    name: ClassVar[str]
    native_tools: ClassVar[bool] = False
    stop_words: tuple[str, ...] = ()

    def check_backend(self, llm: Any) -> None:
        """Raise `ConfigError` when `llm` cannot serve this protocol (before any request is sent)."""
        if self.native_tools and not (callable(getattr(llm, "stream_deltas", None)) and getattr(llm, "mode", "chat") == "chat"):
            raise ConfigError(
                f"protocol {self.name!r} needs a backend that sends tools and returns tool_calls: "
                f"OpenAICompatible with `mode: chat` ({type(llm).__name__}"
                + (f" has mode {llm.mode!r})" if hasattr(llm, "mode") else " has no stream_deltas)")
            )

    @abstractmethod
    def format(
        self, history: Iterable[Message | dict], plugin_executor: Any = None, interpreter_executor: Any = None
    ) -> list[dict[str, Any]]:
        """The messages for the model: the protocol's system prompt (listing the tools, for text formats),
        then the history with calls and results written in the protocol's form.

        `plugin_executor` / `interpreter_executor`: inkagent or lagent executors, or sequences of `ToolSpec`.
        """

    def request(
        self, history: Iterable[Message | dict], plugin_executor: Any = None, interpreter_executor: Any = None
    ) -> ModelRequest:
        """The whole model request: `format()`'s messages, and for native protocols the `tools`."""
        return ModelRequest(self.format(history, plugin_executor, interpreter_executor), stop_words=self.stop_words)

    @abstractmethod
    def stream_parser(self, interpreter_name: str = DEFAULT_INTERPRETER) -> StreamParser:
        """A fresh incremental parser for one model output; calls of `interpreter_name` are interpreter calls."""

    def parse(
        self, text: str = "", interpreter_name: str = DEFAULT_INTERPRETER, *, tool_calls: Sequence[dict[str, Any]] = ()
    ) -> ParsedTurn:
        """Parse one whole output: its text, and native `tool_calls` (OpenAI message format). Never raises."""
        parser = self.stream_parser(interpreter_name)
        parser.feed(text)
        for index, call in enumerate(tool_calls):
            parser.feed(openai_delta(call, index))
        parser.close()
        return parser.result()

    def assistant_message(self, raw: str, turn: ParsedTurn, invalid: Sequence[CallInvalid] = ()) -> Message:
        """The model's turn as it goes into the history. With a malformed call the model sees what it
        wrote (then why it is wrong); otherwise its language and its calls."""
        if invalid:
            return Message(role="assistant", content=raw)
        return _MESSAGE({"role": "assistant", "content": turn.thought, "tool_calls": turn.calls})  # (list copied)

    def format_result(self, call: ToolCall, result: ActionResult) -> Message:
        """The environment message that answers `call` (the call's id kept for protocols that need it)."""
        return _MESSAGE({"role": "environment", "content": result.text(), "name": call.kind, "tool_call_id": call.id})

    def format_invalid(self, invalid: CallInvalid) -> Message:
        """The environment message telling the model why its call could not run."""
        return Message(role="environment", content=invalid.message, name="plugin", tool_call_id=invalid.call_id)


def openai_delta(call: Any, index: int) -> ToolCallChunk:
    """`ToolCallChunk.from_openai` (kept under this name for the parsers' callers)."""
    return ToolCallChunk.from_openai(call, index)
