"""The agent with each text protocol: the same scripted weather task gives the same tool results and
answer, and the prompt the model sees is the protocol's (Qwen's ChatML for Hermes, lagent's ReAct)."""

from __future__ import annotations

import json

import pytest

from inkagent.actions import ActionExecutor, tool
from inkagent.agents import Internlm2Agent
from inkagent.llms import ScriptedLLM
from inkagent.protocols import HermesProtocol, Internlm2Protocol, ReActProtocol
from inkagent.schema import Message


@tool
def get_current_weather(location: str, unit: str = "celsius") -> str:
    """Get the current weather in a given location.

    Args:
        location: the city, e.g. Boston
        unit: celsius or fahrenheit
    """
    return json.dumps({"location": location, "temperature": 22, "unit": unit, "forecast": "sunny"})


CALL = {"name": "get_current_weather", "arguments": {"location": "Boston"}}
SCRIPTS = {
    "internlm2": [
        "Let me check.<|action_start|><|plugin|>\n"
        + json.dumps({"name": CALL["name"], "parameters": CALL["arguments"]}) + "<|action_end|>\n<|im_end|>",
        "Sunny, 22 °C in Boston.<|im_end|>",
    ],
    "hermes": [f"Let me check.\n<tool_call>\n{json.dumps(CALL)}\n</tool_call><|im_end|>", "Sunny, 22 °C in Boston.<|im_end|>"],
    "react": [
        f"Thought: Let me check.\nAction: get_current_weather\nAction Input: {json.dumps(CALL['arguments'])}\n",
        "Thought: I know it.\nFinal Answer: Sunny, 22 °C in Boston.",
    ],
}
RESULT = '{"location": "Boston", "temperature": 22, "unit": "celsius", "forecast": "sunny"}'
RESULT_IN_PROMPT = {
    "internlm2": f"<|im_start|>environment name=<|plugin|>\n{RESULT}<|im_end|>\n",
    "hermes": f"<|im_start|>user\n<tool_response>\n{RESULT}\n</tool_response><|im_end|>\n",
    "react": f"<|im_start|>system\nResponse:{RESULT}\n<|im_end|>\n",
}


@pytest.mark.parametrize("protocol", [Internlm2Protocol(language="en"), HermesProtocol(), ReActProtocol()],
                         ids=["internlm2", "hermes", "react"])
def test_same_task_same_results_with_each_text_protocol(protocol):
    llm = ScriptedLLM(SCRIPTS[protocol.name])
    agent = Internlm2Agent(llm, plugin_executor=ActionExecutor([get_current_weather]), protocol=protocol, max_turn=3)

    result = agent.chat("What's the weather like in Boston?")

    assert result.response == "Sunny, 22 °C in Boston."
    assert [a.args for a in result.actions] == [{"location": "Boston"}]
    assert [a.result[0]["content"] for a in result.actions] == [RESULT]
    assert RESULT_IN_PROMPT[protocol.name] in llm.prompts[1]
    assert '"get_current_weather"' in llm.prompts[0] or "'get_current_weather'" in llm.prompts[0]


def test_a_hermes_call_streams_as_it_is_written():
    from inkagent.schema import ToolCallDelta

    agent = Internlm2Agent(ScriptedLLM(SCRIPTS["hermes"]), plugin_executor=ActionExecutor([get_current_weather]),
                           protocol=HermesProtocol())
    deltas = [e for e in agent.stream("What's the weather like in Boston?") if isinstance(e, ToolCallDelta)]
    assert deltas[0].start and deltas[0].kind == "plugin"
    assert json.loads("".join(d.text for d in deltas[1:])) == CALL


@pytest.mark.parametrize("protocol", ["internlm2", "react", "openai", "hermes"])
def test_the_web_page_language_switch_keeps_the_configs_protocol(tmp_path, protocol):
    from inkagent.runners.config import load_config
    from inkagent.web.session import _protocol_for

    llm = "{type: OpenAICompatible, model: m, mode: chat}" if protocol == "openai" else "{type: ScriptedLLM}"
    (tmp_path / "a.yaml").write_text(f"llm: {llm}\nagent: {{protocol: {protocol}, language: en}}\n")

    switched = _protocol_for(load_config(tmp_path / "a.yaml"), "zh")

    assert switched.name == protocol
    if protocol in ("internlm2", "react"):
        en = _protocol_for(load_config(tmp_path / "a.yaml"), "en")
        assert switched.format([Message(role="user", content="hi")]) != en.format([Message(role="user", content="hi")])
