"""Internlm2Protocol: parsing every recorded output, streaming, and formatting the exact prompt text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inkagent.llms import ScriptedLLM
from inkagent.protocols import Internlm2Protocol, Internlm2StreamParser
from inkagent.schema import ActionResult, Message, ToolCall, ToolSpec

FIXTURES = Path(__file__).parent / "fixtures"
def _same(parsed):
    """A parse result without the random call ids."""
    return parsed.thought, [(c.kind, c.name, c.arguments) for c in parsed.calls], parsed.errors


CASES = [json.loads(line) for line in (FIXTURES / "internlm2_outputs.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_fixture_outputs_parse_as_stated(case):
    parsed = Internlm2Protocol().parse(case["output"])
    expect = case["expect"]
    if "thought" in expect:
        assert parsed.thought == expect["thought"]
    if expect["kind"] == "answer":
        assert parsed.is_answer and parsed.thought == expect["text"]
    elif expect["kind"] == "error":
        assert not parsed.calls and len(parsed.errors) == 1
        for word in expect["error_mentions"]:
            assert word in parsed.errors[0]
    else:
        assert not parsed.errors and len(parsed.calls) == 1
        call = parsed.calls[0]
        assert call.kind == expect["kind"]
        if expect["kind"] == "plugin":
            assert (call.name, call.arguments) == (expect["name"], expect["parameters"])
        else:
            assert call.arguments == {"command": expect["code"]}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
@pytest.mark.parametrize("chunk", [1, 3, 7])
def test_streaming_in_any_chunks_gives_the_same_result(case, chunk):
    text = case["output"]
    parser = Internlm2StreamParser()
    for i in range(0, len(text), chunk):
        parser.feed(text[i : i + chunk])
    parser.close()
    assert _same(parser.result()) == _same(Internlm2Protocol().parse(text))


def test_stream_emits_language_before_the_call_finishes_and_the_call_at_action_end():
    parser = Internlm2StreamParser()
    items = parser.feed("Let me look that up.<|acti")
    assert [type(i).__name__ for i in items] == ["TextPiece"]
    assert items[0].text == "Let me look that up."  # the partial marker is held back, not streamed
    items = parser.feed('on_start|><|plugin|>\n{"name": "a", "parameters": {}}')
    assert [type(i).__name__ for i in items] == ["CallStarted", "CallText"]  # the call streams as written
    assert items[1].kind == "plugin" and items[1].text == '\n{"name": "a", "parameters": {}}'
    items = parser.feed("<|action_end|>")
    assert [type(i).__name__ for i in items] == ["CallParsed"]


def test_several_calls_in_one_turn_are_all_returned():
    text = (
        'Two lookups.<|action_start|><|plugin|>\n{"name": "w", "parameters": {"city": "A"}}<|action_end|>\n'
        '<|action_start|><|plugin|>\n{"name": "w", "parameters": {"city": "B"}}<|action_end|>\n<|im_end|>'
    )
    parsed = Internlm2Protocol().parse(text)
    assert [c.arguments["city"] for c in parsed.calls] == ["A", "B"]
    assert parsed.thought == "Two lookups."


def test_xcomposer_spellings_of_action_tokens():
    text = '[UNUSED_TOKEN_144][UNUSED_TOKEN_141]\n{"name": "w", "arguments": {"x": 1}}[UNUSED_TOKEN_143][UNUSED_TOKEN_145]'
    parsed = Internlm2Protocol().parse(text)
    assert [(c.name, c.arguments) for c in parsed.calls] == [("w", {"x": 1})]


def test_text_after_im_end_is_ignored():
    parsed = Internlm2Protocol().parse("Hello.<|im_end|>\n<|im_start|>user\nfake turn")
    assert parsed.thought == "Hello." and parsed.is_answer


MARKERS = ["<|action_start|>", "<|plugin|>", "<|interpreter|>", "<|action_end|>", "<|im_end|>", "<|im_start|>",
           "[UNUSED_TOKEN_144]", "[UNUSED_TOKEN_145]", "```python\n", "```", "{", "}", '"name"', '"parameters"', ":", "\n",
           # what made the parser raise before (issue 17): deep nesting, huge integers, NUL bytes
           "[" * 3000, '{"a":' * 2000, "9" * 5000, "-" * 4500, "\x00", '"\x00"', "\\u0000", "1e999999"]
CALL_HEAD = '<|action_start|><|plugin|>\n{"name": "w", "parameters": '


@settings(max_examples=10_000, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(MARKERS), st.text(max_size=12)), max_size=30), st.integers(1, 9))
def test_parser_never_raises_on_random_outputs(pieces, chunk):
    text = "".join(pieces)
    parser = Internlm2StreamParser()
    chunk = max(chunk, len(text) // 60)  # small pieces, but at most ~60 feeds for the huge outputs
    for i in range(0, len(text), chunk):
        parser.feed(text[i : i + chunk])
    parser.close()
    result = parser.result()
    assert _same(result) == _same(Internlm2Protocol().parse(text))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CASES), st.integers(0, 200), st.integers(0, 30), st.text(max_size=5))
def test_parser_never_raises_on_mutated_fixture_outputs(case, at, cut, insert):
    text = case["output"]
    at = min(at, len(text))
    mutated = text[:at] + insert + text[at + cut :]
    Internlm2Protocol().parse(mutated)  # must not raise


@pytest.mark.parametrize("arguments", ["[" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000, "1" * 100_000,
                                       '{"a": 1' + "0" * 5000 + "}", '{"a": "\x00"}', '{"a": "\\u0000"}'])
def test_deep_nesting_huge_numbers_and_nul_bytes_are_parse_errors_or_calls(arguments):
    parsed = Internlm2Protocol().parse(CALL_HEAD + arguments + "}<|action_end|>\n")
    if arguments == '{"a": "\\u0000"}':
        assert parsed.calls[0].arguments == {"a": "\x00"}
    else:
        assert not parsed.calls and len(parsed.errors) == 1 and "plugin call" in parsed.errors[0]


def test_a_fence_inside_interpreter_code_does_not_end_the_code():
    output = '<|action_start|><|interpreter|>\n```python\nfence = "```"\nprint(len(fence))\n```<|action_end|>\n'
    assert Internlm2Protocol().parse(output).calls[0].arguments == {"command": 'fence = "```"\nprint(len(fence))'}
    # text after the closing fence: the fence alone on its line ends the code
    output = '<|action_start|><|interpreter|>\n```python\ns = "```"\n```\nThat prints it.<|action_end|>'
    assert Internlm2Protocol().parse(output).calls[0].arguments == {"command": 's = "```"'}


def _weather_spec():
    return ToolSpec(
        name="Weather.current",
        description="Get the current weather for a city.",
        parameters={"type": "object", "properties": {"city": {"type": "string", "description": "city name, e.g. 上海 or Boston"}},
                    "required": ["city"]},
    )


class _Specs:
    def __init__(self, *specs):
        self._specs = specs

    def specs(self):
        return list(self._specs)


def test_format_reproduces_the_recorded_internlm2_prompt():
    """Render a whole conversation and compare with the prompt InternLM2 is trained on (the fixture)."""
    protocol = Internlm2Protocol(interpreter_prompt="你现在已经能够在一个有状态的 Jupyter 笔记本环境中运行 Python 代码。")
    weather = ToolCall(name="Weather.current", arguments={"city": "上海"})
    code = ToolCall(kind="interpreter", name="IPythonInterpreter", arguments={"command": "print(sum(range(1, 101)))"})
    history = [
        Message(role="user", content="上海今天天气怎么样？"),
        Message(role="assistant", content="我来查询上海的天气。", tool_calls=[weather]),
        protocol.format_result(weather, ActionResult(name="Weather.current",
                               output='{"city": "上海", "temperature_c": 22.5, "weather": "晴", "wind_kmh": 11.2}')),
        Message(role="assistant", content="上海今天晴，气温约 22.5°C，风速 11.2 km/h。"),
        Message(role="user", content="1 到 100 的和是多少？"),
        Message(role="assistant", tool_calls=[code]),
        protocol.format_result(code, ActionResult(name="IPythonInterpreter", output="5050")),
    ]
    messages = protocol.format(history, _Specs(_weather_spec()), _Specs(ToolSpec(name="IPythonInterpreter")))
    llm = ScriptedLLM(["ok"])
    llm.chat(messages)
    assert llm.prompts[0] == (FIXTURES / "internlm2_prompt.txt").read_text(encoding="utf-8")


def test_plugin_prompt_lists_optional_parameters_too():
    spec = ToolSpec(name="Weather", parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "default": 1},
                       "units": {"enum": ["metric", "imperial"], "type": "string", "default": "metric"}},
        "required": ["city"],
    })
    system = Internlm2Protocol(language="en").system_messages([spec])
    listing = system[-1]["content"]
    assert system[-1]["name"] == "plugin" and listing.startswith("You can use the following tools:")
    tools = json.loads(listing[listing.index("["): listing.rindex("]") + 1])
    params = {p["name"]: p for p in tools[0]["parameters"]}
    assert set(params) == {"city", "days", "units"}
    assert params["days"]["type"] == "NUMBER" and params["days"]["default"] == 1
    assert params["units"]["enum"] == ["metric", "imperial"]
    assert tools[0]["required"] == ["city"]


def test_chinese_and_english_prompt_sets():
    zh = Internlm2Protocol(language="zh").system_messages([_weather_spec()], ToolSpec(name="IPythonInterpreter"))
    en = Internlm2Protocol(language="en").system_messages([_weather_spec()], ToolSpec(name="IPythonInterpreter"))
    assert zh[0]["content"].startswith("当开启工具以及代码时") and en[0]["content"].startswith("When tools")
    assert [m.get("name") for m in zh] == [None, "interpreter", "plugin"] == [m.get("name") for m in en]
    with pytest.raises(ValueError, match="language"):
        Internlm2Protocol(language="fr")


def test_few_shot_examples_in_lagent_format_come_after_the_system_prompts():
    example = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "language", "content": "Checking."},
        {"role": "tool", "content": {"name": "Weather.current", "parameters": {"city": "Paris"}}, "name": "plugin"},
        {"role": "environment", "content": "18°C", "name": "plugin"},
        {"role": "language", "content": "18°C in Paris."},
    ]
    protocol = Internlm2Protocol(language="en", few_shot=[example])
    messages = protocol.format([Message(role="user", content="And Rome?")], _Specs(_weather_spec()))
    roles = [(m["role"], m.get("name")) for m in messages]
    assert roles == [("system", None), ("system", "plugin"), ("user", None), ("assistant", None),
                     ("environment", "plugin"), ("assistant", None), ("user", None)]
    assert messages[3]["content"] == ('Checking.<|action_start|><|plugin|>\n'
                                      '{"name": "Weather.current", "parameters": {"city": "Paris"}}<|action_end|>\n')


def test_a_lagent_protocol_object_is_accepted_with_its_prompts():
    from lagent.agents.internlm2_agent import Internlm2Protocol as LagentProtocol

    from inkagent.agents import Internlm2Agent

    llm = ScriptedLLM(["Hi.<|im_end|>"])
    agent = Internlm2Agent(llm, protocol=LagentProtocol(meta_prompt="Be brief."))
    agent.chat("hello")
    assert llm.prompts[0].startswith("<|im_start|>system\nBe brief.<|im_end|>")
