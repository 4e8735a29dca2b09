"""The four protocols on one interface: format -> scripted model output -> parse round-trips (normal,
parallel and malformed calls), results rendered back, exact prompt texts, and parsers that never raise."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inkagent.actions import ActionExecutor, tool
from inkagent.protocols import (
    CallInvalid,
    CallParsed,
    HermesProtocol,
    Internlm2Protocol,
    OpenAIToolsProtocol,
    ReActProtocol,
    TextPiece,
    ToolNames,
    ToolProtocol,
    get_protocol,
)
from inkagent.protocols.hermes import QWEN25_SYSTEM_PROMPT
from inkagent.protocols.openai_tools import OPENAI_NAME
from inkagent.schema import ActionResult, Message, ToolCall, ToolCallChunk, ToolSpec

WEATHER = ToolSpec(
    name="Weather.current",
    description="Get the current weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
INTERPRETER = ToolSpec(
    name="IPythonInterpreter",
    description="Run Python code.",
    parameters={"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
)
PROTOCOLS = [Internlm2Protocol(language="en"), OpenAIToolsProtocol(), HermesProtocol(), ReActProtocol()]
IDS = [p.name for p in PROTOCOLS]


def _calls(turn):
    return [(c.kind, c.name, c.arguments) for c in turn.calls]


def model_output(protocol: ToolProtocol, thought: str, calls: list[ToolCall]) -> tuple[str, list[dict]]:
    """What a model following `protocol` writes for `thought` and `calls`: text, and native tool_calls.

    Rendered through the protocol's own `format()` of an assistant message, so the round trip checks that
    what the protocol shows the model as its past turns is what its parser reads."""
    history = [Message(role="user", content="q"), Message(role="assistant", content=thought, tool_calls=calls)]
    request = protocol.request(history, [WEATHER], [INTERPRETER])
    assistant = request.messages[-1]
    return assistant["content"] or "", assistant.get("tool_calls", [])


def parse_streamed(protocol: ToolProtocol, text: str, tool_calls: list[dict], chunk: int):
    """Feed the output in chunks of `chunk` characters, native calls as streamed deltas; items and turn."""
    parser = protocol.stream_parser("IPythonInterpreter")
    chunk = max(chunk, len(text) // 200)  # at most ~200 feeds for huge outputs
    items = []
    for i in range(0, len(text), chunk):
        items += parser.feed(text[i : i + chunk])
    for index, call in enumerate(tool_calls):  # as a server streams them: id and name, then the arguments
        function = call["function"]
        items += parser.feed(ToolCallChunk(index=index, id=call["id"], name=function["name"]))
        arguments = function["arguments"]
        for i in range(0, len(arguments), chunk):
            items += parser.feed(ToolCallChunk(index=index, arguments=arguments[i : i + chunk]))
    items += parser.close()
    return items, parser.result()


# -- round trips ------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS, ids=IDS)
@pytest.mark.parametrize("chunk", [1, 5, 1000])
def test_a_call_round_trips(protocol, chunk):
    call = ToolCall(name="Weather.current", arguments={"city": "上海"})
    text, native = model_output(protocol, "I will look it up.", [call])
    items, turn = parse_streamed(protocol, text, native, chunk)
    assert _calls(turn) == [("plugin", "Weather.current", {"city": "上海"})]
    assert turn.thought == "I will look it up." and not turn.errors
    assert sum(isinstance(i, CallParsed) for i in items) == 1
    assert "".join(i.text for i in items if isinstance(i, TextPiece)).strip() == "I will look it up."


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=IDS)
def test_parallel_calls_and_an_interpreter_call_round_trip(protocol):
    calls = [
        ToolCall(name="Weather.current", arguments={"city": "Paris"}),
        ToolCall(name="Weather.current", arguments={"city": "Rome", "nested": {"a": [1, 2.5, None, True]}}),
        ToolCall(kind="interpreter", name="IPythonInterpreter", arguments={"command": 'print("```")\nprint(2)'}),
    ]
    text, native = model_output(protocol, "", calls)
    _, turn = parse_streamed(protocol, text, native, 3)
    assert _calls(turn) == [(c.kind, c.name, c.arguments) for c in calls]
    assert not turn.errors


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=IDS)
def test_results_go_back_in_the_protocols_form(protocol):
    call = ToolCall(name="Weather.current", arguments={"city": "Paris"}, id="call_7")
    result = ActionResult(name="Weather.current", output='{"temperature_c": 18}', call_id="call_7")
    history = [Message(role="user", content="Weather in Paris?"),
               Message(role="assistant", tool_calls=[call]), protocol.format_result(call, result)]
    last = protocol.request(history, [WEATHER]).messages[-1]
    expected = {
        "internlm2": {"role": "environment", "content": '{"temperature_c": 18}', "name": "plugin"},
        "openai": {"role": "tool", "tool_call_id": "call_7", "content": '{"temperature_c": 18}'},
        "hermes": {"role": "user", "content": '<tool_response>\n{"temperature_c": 18}\n</tool_response>'},
        "react": {"role": "system", "content": 'Response:{"temperature_c": 18}\n'},
    }
    assert last == expected[protocol.name]


MALFORMED = {
    "internlm2": '<|action_start|><|plugin|>\n{"name": "Weather.current", "parameters": {"city": }<|action_end|>\n',
    "hermes": '<tool_call>\n{"name": "Weather.current", "arguments": {"city": }\n</tool_call>',
    "react": 'Thought: look it up\nAction: Weather.current\nAction Input: {"city": }\n',
}


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=IDS)
def test_a_malformed_call_is_a_call_invalid_with_the_reason_that_goes_back(protocol):
    if protocol.name == "openai":
        text, native = "", [{"id": "call_9", "function": {"name": "Weather_current", "arguments": '{"city": '}}]
    else:
        text, native = MALFORMED[protocol.name], []
    protocol.request([], [WEATHER])  # the names the model was shown
    items, turn = parse_streamed(protocol, text, native, 4)
    bad = [i for i in items if isinstance(i, CallInvalid)]
    assert len(bad) == 1 and not turn.calls and turn.errors == [bad[0].message]
    assert "not valid JSON" in bad[0].message
    back = protocol.format_invalid(bad[0])
    assert back.role == "environment" and bad[0].message in back.content
    history = [Message(role="user", content="q"), protocol.assistant_message(text, turn, bad), back]
    messages = protocol.request(history, [WEATHER]).messages
    if protocol.name == "openai":  # the API wants the failed call's id answered by a tool message
        assert messages[-2]["tool_calls"][0]["id"] == "call_9"
        assert messages[-1] == {"role": "tool", "tool_call_id": "call_9", "content": back.content}
        assert '{"city": ' in back.content  # the model sees what it sent
    else:  # the model sees what it wrote, then why it is wrong
        assert '{"city": }' in messages[-2]["content"] and bad[0].message in messages[-1]["content"]


def test_several_mistakes_each_get_a_reason():
    hermes = HermesProtocol().parse('<tool_call>\n[1, 2]\n</tool_call><tool_call>{"arguments": {}}</tool_call>')
    assert ["JSON object" in hermes.errors[0], '"name"' in hermes.errors[1]] == [True, True]
    react = ReActProtocol().parse('Action Input: {"a": 1}\nAction: \nAction Input: {}\nAction: W\nAction Input: "Paris"')
    assert len(react.errors) == 3 and "without an 'Action:'" in react.errors[0]
    assert "names no tool" in react.errors[1] and "JSON object" in react.errors[2]
    native = OpenAIToolsProtocol().parse(tool_calls=[{"id": "a", "function": {"arguments": "{}"}},
                                                     {"id": "b", "function": {"name": "w", "arguments": "[1]"}}])
    assert "no function name" in native.errors[0] and "must be a JSON object" in native.errors[1]


# -- protocol specifics -----------------------------------------------------------------------------
def test_openai_names_are_mapped_reversibly():
    names = ToolNames(["Weather.current", "Weather_current", "files.read_file", "ok-name", "x" * 70, "中文工具"])
    wires = [names.wire(n) for n in ["Weather.current", "Weather_current", "files.read_file", "ok-name", "x" * 70]]
    assert wires == ["Weather_current_2", "Weather_current", "files_read_file", "ok-name", "x" * 64]
    assert all(OPENAI_NAME.fullmatch(names.wire(n)) for n in ["中文工具", "Weather.current", "x" * 70])
    for name in ["Weather.current", "Weather_current", "files.read_file", "x" * 70, "中文工具"]:
        assert names.local(names.wire(name)) == name
    assert names.local("not_a_tool") == "not_a_tool"


def test_openai_request_carries_tools_tool_choice_and_the_call_ids():
    protocol = OpenAIToolsProtocol(system_prompt="Be brief.", tool_choice="Weather.current")
    call = ToolCall(name="Weather.current", arguments={"city": "Boston"}, id="call_1")
    history = [Message(role="user", content="Weather?"), Message(role="assistant", tool_calls=[call]),
               protocol.format_result(call, ActionResult(name="Weather.current", output="sunny"))]
    request = protocol.request(history, [WEATHER])
    assert request.tools == [{"type": "function", "function": {
        "name": "Weather_current", "description": WEATHER.description, "parameters": WEATHER.parameters}}]
    assert request.tool_choice == {"type": "function", "function": {"name": "Weather_current"}}
    assert request.gen_params() == {"tools": request.tools, "tool_choice": request.tool_choice}
    assert request.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "Weather_current", "arguments": '{"city": "Boston"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    assert OpenAIToolsProtocol(tool_choice="required").request([], [WEATHER]).tool_choice == "required"
    assert OpenAIToolsProtocol().request([Message(role="user", content="hi")]).gen_params() == {}
    react = ReActProtocol().request([Message(role="user", content="hi")], [WEATHER])
    assert react.gen_params(["<|im_end|>"]) == {"stop_words": ["<|im_end|>", "Response:"]}


def test_openai_name_repeated_in_every_delta_is_kept_once_and_split_names_are_joined():
    parser = OpenAIToolsProtocol().stream_parser(tools=[ToolSpec(name="get_weather")])
    for delta in [ToolCallChunk(0, "c1", "get_weather"), ToolCallChunk(0, "", "get_weather", '{"city"'),
                  ToolCallChunk(0, "", "get_weather", ': "Paris"}'), ToolCallChunk(1, "c2", "get_"),
                  ToolCallChunk(1, "", "weather", "{}")]:
        parser.feed(delta)
    parser.close()
    assert [(c.id, c.name, c.arguments) for c in parser.result().calls] == [
        ("c1", "get_weather", {"city": "Paris"}), ("c2", "get_weather", {})]


def test_hermes_prompt_is_the_qwen_chat_template_text():
    protocol = HermesProtocol(system_prompt=QWEN25_SYSTEM_PROMPT)
    call = ToolCall(name="Weather.current", arguments={"city": "Paris"})
    history = [Message(role="user", content="Weather in Paris and Rome?"),
               Message(role="assistant", content="Checking.", tool_calls=[call, call.model_copy(update={"id": "2"})]),
               Message(role="environment", content="18", name="plugin"),
               Message(role="environment", content="21", name="plugin")]
    chatml = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in protocol.format(history, [WEATHER]))
    tool_json = json.dumps({"type": "function", "function": WEATHER.model_dump()}, ensure_ascii=False)
    assert chatml == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\n"
        "You may call one or more functions to assist with the user query.\n\n"
        f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{tool_json}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within <tool_call></tool_call> "
        'XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\nWeather in Paris and Rome?<|im_end|>\n"
        '<|im_start|>assistant\nChecking.\n<tool_call>\n{"name": "Weather.current", "arguments": {"city": "Paris"}}\n'
        '</tool_call>\n<tool_call>\n{"name": "Weather.current", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<tool_response>\n18\n</tool_response>\n<tool_response>\n21\n</tool_response><|im_end|>\n"
    )
    # a system message of the conversation replaces the default, and the tools follow it (Qwen3's form)
    first = HermesProtocol().format([Message(role="system", content="Be brief.")], [WEATHER])[0]["content"]
    assert first.startswith("Be brief.\n\n# Tools\n\n")


def test_hermes_output_after_the_end_of_the_turn_is_ignored():
    turn = HermesProtocol().parse('Done.<|im_end|>\n<tool_call>\n{"name": "w", "arguments": {}}\n</tool_call>')
    assert turn.is_answer and turn.thought == "Done."


def test_react_prompt_is_lagents():
    from lagent.actions import ActionExecutor as LagentExecutor
    from lagent.actions import BaseAction, tool_api
    from lagent.agents.react import ReActProtocol as LagentReAct

    class Calc(BaseAction):
        """A calculator."""

        @tool_api
        def run(self, expression: str) -> str:
            """Evaluate an arithmetic expression.

            Args:
                expression (str): the expression, e.g. 1+2
            """
            return expression

    ours = ReActProtocol().format([{"role": "user", "content": "1+2?"}], ActionExecutor([Calc()]))
    theirs = LagentReAct().format([], [{"role": "user", "content": "1+2?"}], LagentExecutor([Calc()]))
    assert ours == theirs
    from lagent.agents.react import CALL_PROTOCOL_CN

    assert ReActProtocol(language="zh").call_protocol == CALL_PROTOCOL_CN


def test_react_answers_and_the_interpreter_and_a_made_up_response():
    protocol = ReActProtocol()
    answer = protocol.parse("Thought: I know this.\nFinal Answer: 42\n")
    assert answer.is_answer and answer.thought == "42"
    assert protocol.parse("Just 42.").thought == "Just 42."  # no fields at all: the answer
    code = protocol.parse("Action: IPythonInterpreter\nAction Input: ```python\nprint(1)\n```\nResponse: 1\nFinal Answer: 1")
    assert _calls(code) == [("interpreter", "IPythonInterpreter", {"command": "print(1)"})]
    fenced = protocol.parse('Action: Weather.current\nAction Input: ```json\n{"city": "Paris"}\n```')
    assert _calls(fenced) == [("plugin", "Weather.current", {"city": "Paris"})]
    inside = protocol.parse('Action: W\nAction Input: {"note": "Action: x Response: y", "n": 1}\n')
    assert _calls(inside) == [("plugin", "W", {"note": "Action: x Response: y", "n": 1})]


def test_native_function_calling_needs_a_chat_api_backend():
    from inkagent.errors import ConfigError
    from inkagent.llms import OpenAICompatible, ScriptedLLM

    OpenAIToolsProtocol().check_backend(OpenAICompatible(model="m", mode="chat"))
    with pytest.raises(ConfigError, match="mode: chat.*'completions'"):
        OpenAIToolsProtocol().check_backend(OpenAICompatible(model="m"))
    with pytest.raises(ConfigError, match="ScriptedLLM has no stream_deltas"):
        OpenAIToolsProtocol().check_backend(ScriptedLLM(["hi"]))
    for text_protocol in (Internlm2Protocol(), HermesProtocol(), ReActProtocol()):
        text_protocol.check_backend(ScriptedLLM(["hi"]))


def test_protocols_by_name():
    assert isinstance(get_protocol("native"), OpenAIToolsProtocol)
    assert [get_protocol(n).name for n in ("internlm2", "openai", "hermes", "react")] == [
        "internlm2", "openai", "hermes", "react"]
    with pytest.raises(ValueError, match="hermes"):
        get_protocol("xml")


# -- one scripted task through the interface, four protocols ------------------------------------------
@tool
def get_current_weather(location: str, unit: str = "celsius") -> str:
    """Get the current weather in a given location.

    Args:
        location: the city, e.g. Boston
        unit: celsius or fahrenheit
    """
    return json.dumps({"location": location, "temperature": 22, "unit": unit, "forecast": "sunny"})


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=IDS)
def test_same_task_same_results_in_every_protocol(protocol):
    """The turn sequence an agent runs on the interface (request, parse, run, render back) gives the same
    tool results and answer whatever the protocol."""
    executor = ActionExecutor([get_current_weather])
    calls = [ToolCall(name="get_current_weather", arguments={"location": "Boston"}),
             ToolCall(name="get_current_weather", arguments={"location": "Paris", "unit": "fahrenheit"})]
    history = [Message(role="user", content="Weather in Boston and Paris?")]
    script = [model_output(protocol, "Looking.", calls), _answer(protocol, "Sunny in both.")]
    outputs = []
    for text, native in script:
        protocol.request(history, executor)
        _, turn = parse_streamed(protocol, text, native, 7)
        if turn.is_answer:
            break
        results = executor.run_all(turn.calls)
        history.append(protocol.assistant_message(text, turn))
        history += [protocol.format_result(c, r) for c, r in zip(turn.calls, results, strict=True)]
        outputs += [r.output for r in results]
    assert turn.thought == "Sunny in both."
    assert [json.loads(o)["unit"] for o in outputs] == ["celsius", "fahrenheit"]


def _answer(protocol: ToolProtocol, text: str) -> tuple[str, list]:
    return (f"Thought: done\nFinal Answer: {text}", []) if protocol.name == "react" else (text, [])


# -- parsers never raise -----------------------------------------------------------------------------
DEEP = "[" * 5000 + "]" * 5000
HOSTILE = [DEEP, '{"a":' * 3000, "9" * 5000, "\x00", '"\x00"', "\\u0000", "1e99999", "-" * 3, "\ud800"]
PIECES = {
    "internlm2": ["<|action_start|>", "<|plugin|>", "<|interpreter|>", "<|action_end|>", "<|im_end|>", "```python\n"],
    "openai": [],
    "hermes": ["<tool_call>", "</tool_call>", "<|im_end|>", "<tool_call>\n", "\n</tool_call>"],
    "react": ["Thought:", "Action:", "Action Input:", "Final Answer:", "Response:", "\n", "IPythonInterpreter"],
}
COMMON = ["{", "}", '"name"', '"arguments"', '"parameters"', ":", ",", '"x"', "[", "]", "\n", *HOSTILE]


def _text_strategy(name: str):
    pieces = st.sampled_from(PIECES[name] + COMMON)
    return st.lists(st.one_of(pieces, st.text(max_size=8)), max_size=25).map("".join)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=IDS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), chunk=st.integers(1, 9))
def test_every_parser_survives_random_output(protocol, data, chunk):
    text = data.draw(_text_strategy(protocol.name))
    native = data.draw(st.lists(st.fixed_dictionaries({
        "id": st.text(max_size=3), "function": st.fixed_dictionaries({
            "name": st.sampled_from(["Weather_current", "", "x.y", "\x00"]),
            "arguments": st.one_of(st.sampled_from(COMMON), st.text(max_size=10)),
        })}), max_size=3))
    items, turn = parse_streamed(protocol, text, native, chunk)  # must not raise
    whole = protocol.parse(text, tool_calls=native)
    assert _calls(turn) == _calls(whole) and turn.errors == whole.errors
    assert len(turn.errors) == sum(isinstance(i, CallInvalid) for i in items)
    assert len(turn.calls) == sum(isinstance(i, CallParsed) for i in items)
