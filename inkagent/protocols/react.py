"""`ReActProtocol`: lagent 0.2.4's ReAct format, for any text model.

The system prompt is lagent's `CALL_PROTOCOL_EN` / `CALL_PROTOCOL_CN` with its field names; the model
answers in fields, one per line, and results come back as a system message `Response:{result}\n`:

    Thought: I need the weather in Paris.
    Action: Weather.current
    Action Input: {"city": "Paris"}
    (stop: the agent runs the call)
    Response:{"temperature_c": 18}
    Thought: I know it now.
    Final Answer: 18 °C in Paris.

Source: `lagent/agents/react.py` (v0.2.4), whose texts and field names (`thought`, `action`,
`action_input`, `response`, `finish` role dicts with `begin` / `end`) this keeps. Differences, each
because an agent must not lose a call: several Action / Action Input pairs in one turn are all calls
(lagent keeps the last); `Action Input` must be a JSON object of the arguments (the interpreter takes
its code as is), and anything else goes back to the model with the reason; an output with neither an
action nor a final answer is the answer (lagent asks again through its `NoAction`). The tools listed
are the callable API names (`Toolkit.api`); lagent lists toolkit names, which its executor splits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..schema import Message
from .base import (
    DEFAULT_INTERPRETER,
    CallStarted,
    HistoryCache,
    StreamItem,
    StreamParser,
    TextPiece,
    ToolProtocol,
    ToolsCache,
    tool_specs,
)
from .decoding import MarkerScanner, decode_arguments
from .prompts import describe_tool

# lagent 0.2.4's prompts, verbatim.
CALL_PROTOCOL_CN = """你是一个可以调用外部工具的助手，可以使用的工具包括：
{tool_description}
如果使用工具请遵循以下格式回复：
```
{thought}思考你当前步骤需要解决什么问题，是否需要使用工具
{action}工具名称，你的工具必须从 [{action_names}] 选择
{action_input}工具输入参数
```
工具返回按照以下格式回复：
```
{response}调用工具后的结果
```
如果你已经知道了答案，或者你不需要工具，请遵循以下格式回复
```
{thought}给出最终答案的思考过程
{finish}最终答案
```
开始!"""

FORCE_STOP_PROMPT_CN = "你需要基于历史消息返回一个最终结果"

CALL_PROTOCOL_EN = """You are a assistant who can utilize external tools.
{tool_description}
To use a tool, please use the following format:
```
{thought}Think what you need to solve, do you need to use tools?
{action}the tool name, should be one of [{action_names}]
{action_input}the input to the action
```
The response after utilizing tools should using the following format:
```
{response}the results after call the tool.
```
If you already know the answer, or you do not need to use tools,
please using the following format to reply:
```
{thought}the thought process to get the final answer
{finish}final answer
```
Begin!"""

FORCE_STOP_PROMPT_EN = """You should directly give results
 based on history information."""

INPUT_HINT = 'Write the Action Input as a JSON object of the arguments, e.g. {"city": "Paris"}.'


class ReActParser(StreamParser):
    """Fields are read as their names arrive at the start of a line (elsewhere they are plain text, e.g.
    inside a JSON value): Thought and Final Answer text streams out; a call is complete when the next
    field starts or the output ends; a `Response:` field (the model imagining the tool's answer) ends
    the turn."""

    def __init__(self, protocol: ReActProtocol, interpreter_name: str = DEFAULT_INTERPRETER) -> None:
        super().__init__(interpreter_name)
        self._fields = {
            protocol.thought["begin"]: "thought",
            protocol.action["begin"]: "action",
            protocol.action_input["begin"]: "action_input",
            protocol.finish["begin"]: "finish",
            protocol.response["begin"]: "response",
        }
        self._scanner = MarkerScanner(self._fields)
        self._state = "thought"  # text before any field counts as thought
        self._name: list[str] | None = None  # the Action being written
        self._input: list[str] | None = None  # its Action Input
        self._answer: list[str] | None = None  # the Final Answer
        self._done = False
        self._line_start = True  # fields start lines

    def _feed_text(self, text: str) -> list[StreamItem]:
        return self._handle(self._scanner.feed(text))

    def _close_text(self) -> list[StreamItem]:
        items = self._handle(self._scanner.close())
        return items + self._finish_call()

    def _thought_text(self) -> str:
        if self._answer is not None:
            return "".join(self._answer).strip()
        return super()._thought_text()

    def _handle(self, pieces: list[tuple[bool, str]]) -> list[StreamItem]:
        items: list[StreamItem] = []
        for is_marker, text in pieces:
            if self._done:
                break
            if not is_marker or not self._line_start:  # a field name inside a line is plain text
                items += self._plain(text)
                stripped = text.rstrip(" \t")
                self._line_start = stripped.endswith("\n") or (not stripped and self._line_start)
                continue
            self._line_start = False
            field = self._fields[text]
            if field == "action_input":
                if self._name is None:
                    items.append(self._reject(f"'{text}' came without an 'Action:' naming the tool."))
                    self._state = "skip"
                else:
                    self._input, self._state = [], "action_input"
                continue
            items += self._finish_call()
            if field == "response":
                self._done = True
            elif field == "action":
                self._name, self._state = [], "action"
                items.append(CallStarted("plugin"))
            elif field == "finish":
                self._answer, self._state = [], "finish"
            else:
                self._state = "thought"
                if self._thought:
                    items.append(self._text("\n"))
        return items

    def _plain(self, text: str) -> list[StreamItem]:
        if self._state == "action" and self._name is not None:
            self._name.append(text)
        elif self._state == "action_input" and self._input is not None:
            self._input.append(text)
        elif self._state == "finish" and self._answer is not None:
            self._answer.append(text)
            return [TextPiece(text)]  # streamed, but the answer, not thought
        elif self._state == "thought":
            return [self._text(text)]
        return []  # "skip": the text of a malformed field, already reported

    def _finish_call(self) -> list[StreamItem]:
        if self._name is None:
            return []
        name_text, self._name = "".join(self._name).strip(), None
        raw, self._input = ("".join(self._input) if self._input is not None else ""), None
        self._state = "skip"
        name = name_text.splitlines()[0].strip() if name_text else ""
        if not name:
            return [self._reject("The 'Action:' field names no tool.", raw)]
        command = _unfence(raw.strip())
        if name == self.interpreter_name:
            data = decode_arguments(command) if command.startswith("{") else None
            arguments = data if isinstance(data, dict) and "command" in data else {"command": command}
            return [self._accept(name, arguments)]
        arguments = decode_arguments(command, f"Action Input of {name}")
        if isinstance(arguments, str):
            return [self._reject(f"{arguments} {INPUT_HINT}", raw, name=name)]
        return [self._accept(name, arguments)]


def _unfence(text: str) -> str:
    """The inside of a ``` fence around the whole input (models often fence JSON or code)."""
    if text.startswith("```") and text.endswith("```") and len(text) >= 6:
        inner = text[3:-3]
        first_line, newline, rest = inner.partition("\n")
        return (rest if newline and first_line.strip().isidentifier() else inner).strip()
    return text


class ReActProtocol(ToolProtocol):
    """lagent's ReAct protocol (same arguments and defaults as lagent 0.2.4's `ReActProtocol`).

    `language="zh"` picks lagent's Chinese prompts. Results come back as system messages
    `{response.begin}{result}{response.end}`; the model's turn stops at `response.begin`.
    """

    name = "react"

    def __init__(
        self,
        thought: dict | None = None,
        action: dict | None = None,
        action_input: dict | None = None,
        response: dict | None = None,
        finish: dict | None = None,
        call_protocol: str | None = None,
        force_stop: str | None = None,
        language: str = "en",
    ) -> None:
        if language not in ("en", "zh"):
            raise ValueError(f"language must be 'en' or 'zh', got {language!r}")
        self.thought = thought or {"role": "THOUGHT", "begin": "Thought:", "end": "\n", "belong": "assistant"}
        self.action = action or {"role": "ACTION", "begin": "Action:", "end": "\n"}
        self.action_input = action_input or {"role": "ARGS", "begin": "Action Input:", "end": "\n"}
        self.response = response or {"role": "RESPONSE", "begin": "Response:", "end": "\n"}
        self.finish = finish or {"role": "FINISH", "begin": "Final Answer:", "end": "\n"}
        english = language == "en"
        self.call_protocol = call_protocol or (CALL_PROTOCOL_EN if english else CALL_PROTOCOL_CN)
        self.force_stop = force_stop or (FORCE_STOP_PROMPT_EN if english else FORCE_STOP_PROMPT_CN)
        self.stop_words = (self.response["begin"],)
        self._prompt = ToolsCache()
        self._history = HistoryCache()
        self._system: dict[str, Any] | None = None

    def system_prompt(self, plugin_executor: Any = None, interpreter_executor: Any = None) -> str:
        """lagent's call protocol with the tools' descriptions (lagent's dicts) and names filled in."""
        specs = tool_specs(plugin_executor) + tool_specs(interpreter_executor)[:1]
        fields = tuple(f["begin"] for f in (self.thought, self.action, self.action_input, self.response, self.finish))
        return self._prompt.get(specs, self._render_prompt, shared=("react", self.call_protocol, fields))

    def _render_prompt(self, specs: list[Any]) -> str:
        infos = _actions_info(specs)
        return self.call_protocol.format(
            tool_description=infos,
            action_names=[info["name"] for info in infos],
            thought=self.thought["begin"],
            action=self.action["begin"],
            action_input=self.action_input["begin"],
            response=self.response["begin"],
            finish=self.finish["begin"],
        )

    def format(self, history: Iterable[Message | dict], plugin_executor: Any = None,
               interpreter_executor: Any = None) -> list[dict[str, Any]]:
        text = self.system_prompt(plugin_executor, interpreter_executor)
        if self._system is None or self._system["content"] != text:  # the same dict while the text stays
            self._system = {"role": "system", "content": text}
        system = [self._system]
        fields = tuple((f["begin"], f["end"]) for f in (self.thought, self.action, self.action_input,
                                                        self.response, self.finish))
        messages = history if isinstance(history, list) else list(history)
        return system + self._history.format(messages, self._format_step, fields)

    def _format_step(self, message: Message, out: list[dict[str, Any]], state: Any) -> None:
        if message.role == "environment":
            content = self.response["begin"] + message.content + self.response["end"]
            out.append({"role": "system", "content": content})
        elif message.role == "assistant":
            out.append({"role": "assistant", "content": self.format_turn(message)})
        else:
            out.append({"role": message.role, "content": message.content})

    def format_turn(self, message: Message) -> str:
        """An assistant message in fields: its thought and calls, or its final answer. A raw output (a
        turn with a malformed call, kept as the model wrote it) is left as it is."""
        begins = [f["begin"] for f in (self.thought, self.action, self.action_input, self.finish)]
        if not message.tool_calls:
            if any(begin in message.content for begin in begins):
                return message.content
            return f"{self.finish['begin']} {message.content}{self.finish['end']}"
        text = f"{self.thought['begin']} {message.content}{self.thought['end']}" if message.content else ""
        for call in message.tool_calls:
            arguments = json.dumps(call.arguments, ensure_ascii=False)
            text += f"{self.action['begin']} {call.name}{self.action['end']}"
            text += f"{self.action_input['begin']} {arguments}{self.action_input['end']}"
        return text

    def stream_parser(self, interpreter_name: str = DEFAULT_INTERPRETER) -> ReActParser:
        return ReActParser(self, interpreter_name)


def _actions_info(specs: list[Any]) -> list[dict[str, Any]]:
    """lagent's description dicts of the tools (what its `ActionExecutor.get_actions_info()` gives)."""
    infos = []
    for spec in specs:
        if isinstance(spec, dict):  # from a lagent executor: already its description
            infos.append(spec)
            continue
        info = describe_tool(spec)
        info["description"] = spec.description
        infos.append(info)
    return infos
